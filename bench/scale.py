"""Benchmark: a walk-forward sweep on Dask worker processes, 1 worker against 2 (issue 18).

The sweep: 8 windows x 9 (fast, slow) pairs of the SMA crossover on generated hourly bars, on the vectorized path with no
audit rows (``--audit none``: no result is recorded). The bars are stored in ``raw.ohlcv`` of a throwaway database made
here on the server of ``ALPHALOOM_DATABASE_URL`` (dropped at the end). Each window (its 9 in-sample simulations and its
out-of-sample one) is one task of the walk-forward flow (``flows.walk_forward.walk_window``): the task is sent the
window's specification (``WindowSpec``: symbols, time bounds, grid, costs), reads the window's bars on its own engine and
returns the window's outcome. The tasks run on the flow's task runner (``alphaloom.task_runner.SettingsTaskRunner``),
pointed by ``ALPHALOOM_DASK_ADDRESS`` at a ``LocalCluster`` of 1, then 2, worker processes started here (one thread
each; warmed up first, so imports and engines are not timed). The same task bodies (read, then run) run in this
process, without Prefect or Dask, as the baseline; every run must give the same windows as the baseline.

Prints, each with its unit, goal and ``met`` or ``MISSED``:
- the speed-up of 2 workers over 1 (goal >= 1.6 on a 2-core machine);
- Dask's per-task overhead: (1 worker's time - the in-process time) / tasks, in ms, against a window's in-process time
  (goal <= 10% of it), and where it goes: an empty Prefect task on Dask, an empty plain Dask task (ms per task).
Also the machine's load average before and after, since a shared machine's load moves the speed-up.
Usage: python bench/scale.py [--symbols 20] [--in-sample 3000] [--out-sample 750]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

WINDOWS = 8
FASTS, SLOWS = [5, 10, 20], [30, 50, 100]  # 9 pairs


def _line(name: str, value: float, unit: str, goal: str, met: bool) -> None:
    print(f"{name}: {value:,.2f} {unit} (goal {goal}) {'met' if met else 'MISSED'}")


def make_frames(symbols: int, bars: int, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hourly open and close random walks whose drift flips every 300 bars."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2020-01-01", periods=bars, freq="h", tz="UTC")
    drift = np.where((np.arange(bars) // 300) % 2 == 0, 0.0004, -0.0003)[:, None]
    close = pd.DataFrame(100 * np.exp(np.cumsum(drift + rng.normal(0, 0.006, (bars, symbols)), axis=0)), index=index,
                         columns=[f"S{k:02d}/USDT" for k in range(symbols)])  # fmt: skip
    return close.shift(1).fillna(close.iloc[0]), close


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--in-sample", type=int, default=3000)
    parser.add_argument("--out-sample", type=int, default=750)
    parser.add_argument("--audit", choices=["none"], default="none", help="only `none`: the sweep records nothing")
    args = parser.parse_args()
    os.environ.setdefault("ALPHALOOM_HOME", tempfile.mkdtemp(prefix="alphaloom-bench-scale-"))
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")  # one core per worker process, as in-process

    from alphaloom.db.engine import dispose_engines, get_engine
    from alphaloom.settings import get_settings

    open_, close = make_frames(args.symbols, args.in_sample + WINDOWS * args.out_sample)
    server = os.environ.get("ALPHALOOM_DATABASE_URL")
    if not server:
        raise SystemExit("error: ALPHALOOM_DATABASE_URL must name a PostgreSQL server (a throwaway database is made)")
    database = f"alphaloom_bench_scale_{os.getpid()}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'create database "{database}"')
    try:
        os.environ["ALPHALOOM_DATABASE_URL"] = str(make_url(server).set(database=database).render_as_string(False))
        os.environ["ALPHALOOM_EXCHANGE"], os.environ["ALPHALOOM_TIMEFRAME"] = "benchscale", "1h"
        get_settings.cache_clear()
        _store_bars(get_engine(), open_, close)
        _run(args, list(close.columns))
    finally:
        dispose_engines()
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{database}" with (force)')


def _store_bars(engine: Engine, open_: pd.DataFrame, close: pd.DataFrame) -> None:
    from alphaloom.db.copy import copy_rows

    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values ('bench-scale', 'bench')"))
        copy_rows(conn, "raw.ohlcv", ("exchange", "symbol", "timeframe", "ts", "open", "high", "low", "close", "volume",
                                      "run_id"),
                  (("benchscale", s, "1h", ts.to_pydatetime(), f"{open_.at[ts, s]:.6f}",
                    f"{max(open_.at[ts, s], close.at[ts, s]):.6f}", f"{min(open_.at[ts, s], close.at[ts, s]):.6f}",
                    f"{close.at[ts, s]:.6f}", 1, "bench-scale") for ts in close.index for s in close.columns))  # fmt: skip
    with engine.connect() as conn:
        conn.execute(
            text("analyze raw.ohlcv")
        )  # the planner's statistics of the table just filled, as autovacuum would


def _open_engine() -> None:
    from alphaloom.db.engine import get_engine

    with get_engine().connect():
        pass


def _run(args: argparse.Namespace, symbols: list[str]) -> None:
    """The sweep in this process, then on 1 and 2 Dask worker processes (see the module docstring)."""
    from distributed import Client, LocalCluster
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.testing.utilities import prefect_test_harness

    from alphaloom.backtest.walkforward import run_window
    from alphaloom.backtest.walkforward_run import WalkForwardSpec, load_window, window_specs
    from alphaloom.db.engine import get_engine
    from alphaloom.settings import get_settings
    from alphaloom.task_runner import SettingsTaskRunner
    from flows.walk_forward import walk_window

    spec = WalkForwardSpec(symbols, FASTS, SLOWS, in_sample=args.in_sample, out_sample=args.out_sample)
    with get_engine().connect() as conn:
        windows = window_specs(conn, get_settings(), spec)
    assert len(windows) == WINDOWS

    @task(cache_policy=NO_CACHE)
    def empty(n: int) -> int:
        return n

    @flow(name="bench_scale_empty", task_runner=SettingsTaskRunner())
    def empty_tasks(count: int) -> list:
        """``count`` tasks with nothing to do: Prefect's own cost per task run on Dask."""
        return empty.map(list(range(count))).result()

    @flow(name="bench_scale_sweep", task_runner=SettingsTaskRunner())
    def sweep(count: int) -> list:
        """The first ``count`` windows as tasks (the windows are not flow parameters: those go to the API as JSON)."""
        return walk_window.map(windows[:count]).result()

    load_before = os.getloadavg()
    print(f"sweep: {WINDOWS} windows x {len(FASTS) * len(SLOWS)} parameter sets, {args.symbols} symbols, "
          f"{args.in_sample} + {args.out_sample} bars per window, audit none")  # fmt: skip
    started = time.perf_counter()
    with get_engine().connect() as conn:
        inputs = [load_window(conn, w) for w in windows]
    loading = time.perf_counter() - started
    started = time.perf_counter()
    baseline = [run_window(w) for w in inputs]
    in_process = loading + time.perf_counter() - started
    print(f"in process (no Prefect, no Dask): {in_process:.2f} s ({in_process / WINDOWS * 1000:.0f} ms per window, of "
          f"which reading its bars {loading / WINDOWS * 1000:.0f} ms)")  # fmt: skip

    timings: dict[int, float] = {}
    with prefect_test_harness(server_startup_timeout=120):
        for workers in (1, 2):
            with (
                LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as local,
                Client(local) as client,
            ):
                client.wait_for_workers(workers)
                client.run(_open_engine)  # each worker's own engine, opened before the timing
                os.environ["ALPHALOOM_DASK_ADDRESS"] = local.scheduler_address
                get_settings.cache_clear()
                sweep(workers)  # warm-up: every worker imports the flow and its libraries
                started = time.perf_counter()
                outcomes = sweep(WINDOWS)
                timings[workers] = time.perf_counter() - started
                if workers == 1:
                    started = time.perf_counter()
                    empty_tasks(WINDOWS)
                    empty_ms = (time.perf_counter() - started) / WINDOWS * 1000
                    started = time.perf_counter()
                    client.gather(client.map(lambda n: n, range(WINDOWS), pure=False))
                    raw_ms = (time.perf_counter() - started) / WINDOWS * 1000
                del os.environ["ALPHALOOM_DASK_ADDRESS"]
                get_settings.cache_clear()
            assert [o.row for o in outcomes] == [b.row for b in baseline], "the sweep on Dask differs from in-process"
            print(f"{workers} worker process{'es' if workers > 1 else ''}: {timings[workers]:.2f} s")
    load_after = os.getloadavg()
    print(f"load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f} on {os.cpu_count()} CPUs")
    speed_up = timings[1] / timings[2]
    _line("speed-up, 2 workers over 1", speed_up, "x", ">= 1.6 on 2 cores", speed_up >= 1.6)
    window_ms = in_process / WINDOWS * 1000
    overhead_ms = (timings[1] - in_process) / WINDOWS * 1000
    print(
        f"where it goes, 1 worker: an empty Prefect task on Dask {empty_ms:.0f} ms per task, an empty plain Dask "
        f"task {raw_ms:.1f} ms per task (the rest: a window's specification and outcome passing through Prefect and "
        "Dask)"
    )
    _line(f"Dask + Prefect per-task overhead vs in-process (a window: {window_ms:.0f} ms)", overhead_ms,
          "ms per task", f"<= {window_ms * 0.1:.0f} ms (10% of a window)", overhead_ms <= window_ms * 0.1)  # fmt: skip


if __name__ == "__main__":
    main()
