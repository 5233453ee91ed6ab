"""Flow: replay the live decision code step by step over history on a fresh paper account, then report."""

from __future__ import annotations

from datetime import datetime

from prefect import flow
from sqlalchemy import text

from agents.team import Team, build_team
from alphaloom.backtest.reporting import build_run_report
from alphaloom.domain import timeframe_delta
from alphaloom.errors import DataUnavailableError
from alphaloom.settings import get_settings
from flows._alerts import alert_on_failure
from flows._audit import audited_run
from flows.decide import _ensure_paper_account, decide_symbols, decision_times


@flow(name="backtest", on_failure=[alert_on_failure])
def backtest_flow(
    symbols: list[str] | None = None, end: datetime | None = None, steps: int = 168, llm_live: bool = False
) -> dict[str, object]:
    """Decide at each of the ``steps`` bar closes up to ``end`` (default: the newest stored bar close) with the same
    ``decide`` and paper execution as the live flow, on an account of its own; returns metrics and the report path.

    Decisions read only what was known at each step (bars closed by then, news first seen by then). Fills go through
    the paper broker at the decision bar's close plus slippage, with fees. The LLM analyst is consulted only with
    ``llm_live`` (a cache-only replay is not implemented yet); the report says which."""
    settings = get_settings()
    symbols = symbols or settings.symbols
    with audited_run("backtest", {"symbols": symbols, "end": end, "steps": steps, "llm_live": llm_live}) as (
        engine,
        run_id,
    ):
        if end is None:
            with engine.connect() as conn:
                newest = conn.execute(
                    text("select max(ts) from raw.ohlcv where exchange = :e and timeframe = :tf and symbol = any(:s)"),
                    {"e": settings.exchange, "tf": settings.timeframe, "s": symbols},
                ).scalar()
            if newest is None:
                raise DataUnavailableError(f"no bars stored for {symbols} on {settings.exchange}")
            end = newest + timeframe_delta(settings.timeframe)
        account = f"backtest-{run_id[:8]}"
        _ensure_paper_account(settings, account, run_id)
        team = build_team(settings)
        if not llm_live:
            team = Team(scorer=team.scorer, llm_agent=None)
        for as_of in decision_times(end, steps, settings.timeframe):
            decide_symbols(account, symbols, as_of, run_id, False, team)
        notes = [
            "fills: paper broker at the decision bar's close plus slippage, with fees",
            "LLM analyst: live calls allowed (--llm-live)"
            if llm_live
            else "LLM analyst: not consulted (no --llm-live)",
        ]
        with engine.connect() as conn:
            report = build_run_report(conn, run_id, exchange=settings.exchange, timeframe=settings.timeframe,
                                      out_dir=settings.home / "reports", notes=notes)  # fmt: skip
        return {"run_id": run_id, "account": account, "report": str(report.path), "trades": report.trades,
                **report.metrics.as_dict()}  # fmt: skip
