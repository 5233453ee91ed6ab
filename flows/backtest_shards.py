"""Flow: a backtest sharded by symbol groups, each shard the ``backtest`` flow on its own paper account, the shards
independent tasks on the flow's task runner (``ALPHALOOM_DASK_ADDRESS``: Dask workers, or threads in this process).

A shard is a whole backtest of its symbols (its own run id, account, audit rows and report), so shards never share cash
or positions: the portfolio-level limits hold per shard, not across them. That is the price of running them apart;
a strategy whose symbols must share one account's cash is backtested unsharded (``flows.backtest``). The results are
gathered in shard order; what each shard records is what the same backtest records run alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE

from alphaloom.reporting.run_report import AUDIT_MODES
from alphaloom.settings import get_settings
from alphaloom.task_runner import SettingsTaskRunner
from flows._alerts import alert_on_failure
from flows._audit import audited_run
from flows.backtest import backtest_flow


def symbol_groups(symbols: list[str], shards: int) -> list[list[str]]:
    """``symbols`` dealt into at most ``shards`` groups of near-equal size, in order (the first groups one larger);
    never an empty group."""
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    if not symbols:
        raise ValueError("no symbols to shard")
    count = min(shards, len(symbols))
    size, extra = divmod(len(symbols), count)
    groups, start = [], 0
    for n in range(count):
        stop = start + size + (1 if n < extra else 0)
        groups.append(symbols[start:stop])
        start = stop
    return groups


@task(cache_policy=NO_CACHE)
def backtest_shard(symbols: list[str], arguments: dict[str, Any]) -> dict[str, object]:
    """One shard: the ``backtest`` flow over ``symbols`` (a flow run of its own, in whichever process runs the task).
    Its arguments are already typed and passed as they are: Prefect's validation of a flow's parameters, which builds
    a pydantic model of its signature, failed here for the backtest flow called from task threads ("``Backtest_FlowModel``
    is not fully defined")."""
    return backtest_flow.with_options(validate_parameters=False)(symbols=symbols, **arguments)


@flow(name="backtest_shards", on_failure=[alert_on_failure], task_runner=SettingsTaskRunner())
def backtest_shards_flow(
    symbols: list[str] | None = None,
    shards: int = 2,
    end: datetime | None = None,
    steps: int = 168,
    strategy: str = "team",
    sma_fast: int = 10,
    sma_slow: int = 30,
    fill_at: str | None = None,
    audit: str = "full",
) -> dict[str, object]:
    """The backtest of ``symbols`` (default: the settings') in ``shards`` symbol groups (``symbol_groups``), each a
    ``backtest`` flow run on its own account with the other arguments unchanged (cache-only LLM, as that flow's
    default; ``audit``: full, decisions or none, as that flow's); returns this run's id and each shard's symbols and result, in shard order, and the shards' trades."""
    if audit not in AUDIT_MODES:
        raise ValueError(f"audit must be one of {', '.join(AUDIT_MODES)}, got {audit!r}")
    groups = symbol_groups(symbols or get_settings().symbols, shards)
    arguments = {"end": end, "steps": steps, "strategy": strategy, "sma_fast": sma_fast, "sma_slow": sma_slow,
                 "fill_at": fill_at, "audit": audit}  # fmt: skip
    parameters = {"symbols": [s for g in groups for s in g], "shards": len(groups), "steps": steps,
                  "end": end.isoformat() if end else None, "strategy": strategy, "sma_fast": sma_fast,
                  "sma_slow": sma_slow, "fill_at": fill_at, "audit": audit}  # fmt: skip
    with audited_run("backtest_shards", parameters) as (_, run_id):
        results: list[dict[str, Any]] = backtest_shard.map(groups, unmapped(arguments)).result()
        return {"run_id": run_id, "shards": [{"symbols": g, **r} for g, r in zip(groups, results, strict=True)],
                "trades": sum(int(r["trades"]) for r in results)}  # fmt: skip
