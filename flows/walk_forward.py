"""Flow: walk-forward of the SMA crossover over stored bars (parameters chosen in sample, traded out of sample), its
results recorded under the run and shown on an HTML page."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from alphaloom.backtest.walkforward import (
    WalkForwardResult,
    WindowOutcome,
    combine_windows,
    contiguous_blocks,
    run_window,
)
from alphaloom.backtest.walkforward_run import (
    PieceSpec,
    WalkForwardSpec,
    WindowSpec,
    block_pieces,
    join_pieces,
    load_window,
    piece_specs,
    read_piece,
    record_walk_forward,
    window_from_bars,
    window_specs,
    write_page,
)
from alphaloom.db.engine import get_engine
from alphaloom.settings import Settings, get_settings
from alphaloom.task_runner import SettingsTaskRunner, flow_dask_client
from flows._alerts import alert_on_failure
from flows._audit import audited_run

if TYPE_CHECKING:
    from distributed import Client


@task(cache_policy=NO_CACHE)
def plan(spec: WalkForwardSpec, settings: Settings) -> list[WindowSpec]:
    """The windows to run, as specifications (``window_specs``: the times of the stored bars, not the bars)."""
    with get_engine().connect() as conn:
        return window_specs(conn, settings, spec)


WINDOW_RETRIES = 1  # a block of windows whose run raised (a dropped connection, say) is run once more, by Dask


def walk_window(window: WindowSpec) -> WindowOutcome:
    """One window: read its bars (``load_window``, on this process's engine: only those this process has not read yet
    for the window's run, ``alphaloom.backtest.walkforward_bars``), choose in sample, trade out of sample.
    Independent of the others: any process may run it; what travels is the specification and the window's outcome
    (its row, out-of-sample returns and fills), never the bars."""
    with get_engine().connect() as conn:
        window_input = load_window(conn, window)
    return run_window(window_input)


def walk_piece(piece: PieceSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One piece of a sweep's bars, read in one query on this process's engine (``read_piece``); Dask hands it to the
    blocks that need it, on whichever worker they run."""
    with get_engine().connect() as conn:
        return read_piece(conn, piece)


def walk_block(windows: list[WindowSpec], *pieces: tuple[pd.DataFrame, pd.DataFrame]) -> list[WindowOutcome]:
    """Consecutive windows of one run, one after the other in this process, cut from the pieces of the sweep's bars
    that hold their span (``walk_piece``, in order; this reads nothing). Outcomes in the windows' order."""
    open_, close = join_pieces(pieces)
    return [run_window(window_from_bars(window, open_, close)) for window in windows]


def _pinned(slots: Sequence[str], n: int) -> dict[str, object]:
    """Where the ``n``-th piece or block goes: the ``n``-th worker thread's worker while the cluster has one, else
    anywhere; elsewhere when that worker is gone."""
    return {"workers": [slots[n]] if n < len(slots) else None, "allow_other_workers": True}


def _dask_blocks(client: Client, windows: list[WindowSpec]) -> list[WindowOutcome]:
    """The sweep's bars cut into one piece per worker thread of the cluster (``piece_specs``), each read by a Dask
    future of its own; the windows cut into one block of consecutive windows per worker thread
    (``contiguous_blocks``), each block a Dask future that depends on the pieces its windows span (Dask hands them
    over between workers). Each bar is read once in all, the pieces in parallel. Outcomes in window order."""
    threads = client.nthreads()
    slots = [address for address, count in sorted(threads.items()) for _ in range(count)]
    parts = max(1, len(slots))
    blocks = [windows[run.start : run.stop] for run in contiguous_blocks(len(windows), parts)]
    pieces = piece_specs(windows, parts)
    read = [client.submit(walk_piece, piece, pure=False, retries=WINDOW_RETRIES, **_pinned(slots, n))
            for n, piece in enumerate(pieces)]  # fmt: skip
    futures = [client.submit(walk_block, block, *(read[k] for k in block_pieces(pieces, block)), pure=False,
                             retries=WINDOW_RETRIES, **_pinned(slots, n))
               for n, block in enumerate(blocks)]  # fmt: skip
    return [outcome for outcomes in client.gather(futures) for outcome in outcomes]


@task(cache_policy=NO_CACHE, persist_result=False)
def walk_windows(windows: list[WindowSpec]) -> list[WindowOutcome]:
    """Every window, outcomes in window order. One Prefect task in the flow's process: on Dask
    (``ALPHALOOM_DASK_ADDRESS``) the sweep's bars are read in one piece per worker thread and the windows run in one
    block of consecutive windows per worker thread, each piece and each block a plain Dask future on the flow's
    cluster (``_dask_blocks``: each bar read once in all, Dask's cost, milliseconds, paid once per piece and block;
    retried by Dask: ``WINDOW_RETRIES``, and run again elsewhere when its worker dies), else the windows run here on a
    thread each (at most one per core)."""
    client = flow_dask_client()
    if client is not None:
        return _dask_blocks(client, windows)
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
