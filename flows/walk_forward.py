"""Flow: walk-forward of the SMA crossover over stored bars (parameters chosen in sample, traded out of sample), its
results recorded under the run and shown on an HTML page."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from alphaloom.backtest.walkforward import WalkForwardResult, WindowOutcome, combine_windows, run_window
from alphaloom.backtest.walkforward_run import (
    WalkForwardSpec,
    WindowSpec,
    load_window,
    record_walk_forward,
    window_specs,
    write_page,
)
from alphaloom.db.engine import get_engine
from alphaloom.settings import Settings, get_settings
from alphaloom.task_runner import SettingsTaskRunner, flow_dask_client
from flows._alerts import alert_on_failure
from flows._audit import audited_run


@task(cache_policy=NO_CACHE)
def plan(spec: WalkForwardSpec, settings: Settings) -> list[WindowSpec]:
    """The windows to run, as specifications (``window_specs``: the times of the stored bars, not the bars)."""
    with get_engine().connect() as conn:
        return window_specs(conn, settings, spec)


WINDOW_RETRIES = 1  # a window whose run raised (a dropped connection, say) is run once more, by Dask


def walk_window(window: WindowSpec) -> WindowOutcome:
    """One window: read its bars (``load_window``, on this process's engine: only those this process has not read yet
    for the window's run, ``alphaloom.backtest.walkforward_bars``), choose in sample, trade out of sample.
    Independent of the others: any process may run it; what travels is the specification and the window's outcome
    (its row, out-of-sample returns and fills), never the bars."""
    with get_engine().connect() as conn:
        window_input = load_window(conn, window)
    return run_window(window_input)


@task(cache_policy=NO_CACHE, persist_result=False)
def walk_windows(windows: list[WindowSpec]) -> list[WindowOutcome]:
    """Every window (``walk_window``), outcomes in window order. One Prefect task in the flow's process: on Dask
    (``ALPHALOOM_DASK_ADDRESS``) each window is a plain Dask future on the flow's cluster (Dask's cost per window,
    milliseconds, instead of a Prefect task run's hundreds; retried by Dask: ``WINDOW_RETRIES``, and run again
    elsewhere when its worker dies), else the windows run here on a thread each (at most one per core)."""
    client = flow_dask_client()
    if client is not None:
        return client.gather(client.map(walk_window, windows, pure=False, retries=WINDOW_RETRIES))
    with ThreadPoolExecutor(max_workers=max(1, min(len(windows), os.cpu_count() or 1))) as pool:
        return list(pool.map(walk_window, windows))


def walk(spec: WalkForwardSpec, settings: Settings) -> WalkForwardResult:
    """Choose in sample, trade out of sample, window after window: the windows spread over the flow's Dask cluster
    when there is one (``walk_windows``), the results gathered in window order."""
    windows = plan(spec, settings)
    return combine_windows(windows, walk_windows(windows))


@task(cache_policy=NO_CACHE)
def record(run_id: str, spec: WalkForwardSpec, settings: Settings, result: WalkForwardResult) -> Path:
    """Write the page, then the results (with the page's path) under the run."""
    page = write_page(result, spec, settings, run_id)
    with get_engine().begin() as conn:
        record_walk_forward(conn, run_id, spec, settings, result, page)
    return page


@flow(name="walk_forward", on_failure=[alert_on_failure], task_runner=SettingsTaskRunner())
def walk_forward_flow(
    symbols: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    fast: list[int] | None = None,
    slow: list[int] | None = None,
    in_sample: int = 720,
    out_sample: int = 168,
    objective: str = "total_return",
) -> dict[str, object]:
    """Walk-forward of the SMA crossover on the vectorized path over the bars ``start <= ts < end`` (default: all
    stored) of ``symbols`` (default: the settings'): fast/slow chosen on ``in_sample`` bars from ``fast`` x ``slow``
    (default 5,10,20 x 30,50,100), traded on the next ``out_sample``; returns the run id, the page path, the windows
    and the out-of-sample metrics."""
    settings = get_settings()
    spec = WalkForwardSpec(symbols or settings.symbols, fast or [5, 10, 20], slow or [30, 50, 100], in_sample,
                           out_sample, objective, start, end)  # fmt: skip
    with audited_run("walk_forward", spec.parameters()) as (_, run_id):
        result = walk(spec, settings)
        page = record(run_id, spec, settings, result)
        return {"run_id": run_id, "page": str(page), "windows": len(result.windows),
                **result.out_of_sample.as_dict()}  # fmt: skip
