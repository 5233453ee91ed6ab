"""Benchmark: a walk-forward sweep on Dask worker processes, 1 worker against 2 (issue 18).

The sweep: 8 windows x 9 (fast, slow) pairs of the SMA crossover on generated hourly bars, on the vectorized path with no
audit rows (``--audit none``: no result is recorded). The bars are stored in ``raw.ohlcv`` of a throwaway database made
here on the server of ``ALPHALOOM_DATABASE_URL`` (dropped at the end). The windows run as the walk-forward flow runs
them (``flows.walk_forward.walk_windows``, one Prefect task): each window (its 9 in-sample simulations and its
out-of-sample one) is a plain Dask future on the flow's cluster, sent the window's specification (``WindowSpec``:
symbols, time bounds, grid, costs), reading the window's bars on its worker's engine (each worker reads a run's bars
once: ``alphaloom.backtest.walkforward_bars``; every timed run is a new run, its bars read afresh) and returning the
window's outcome. The default size is a user's: 50 symbols, 4,000 in-sample and 8 x 750 out-of-sample hourly bars. The flow's task runner (``alphaloom.task_runner.SettingsTaskRunner``) is pointed by ``ALPHALOOM_DASK_ADDRESS``
at a ``LocalCluster`` of 1 or one of 2 worker processes, both started here (one thread each; warmed up first, so imports and
engines are not timed). The same window bodies (read, then run) run in this process, without Prefect or Dask, as the
baseline; every run must give the same windows as the baseline.

Prints, each with its unit, goal and ``met`` or ``MISSED``:
- the speed-up of 2 workers over 1 (goal >= 1.6 on a 2-core machine);
- Dask's per-task overhead: (1 worker's time - the in-process time) / tasks, in ms, against a window's in-process time
  (goal <= 10% of it), and, for scale, what a window would cost as a Prefect task run of its own on Dask (an empty
  Prefect task) and as a plain Dask future (an empty one), in ms per task.
Where the time goes, per worker count: the windows' span and work seconds (Dask's task stream), what lies outside
them (the Prefect flow run and its task, connecting, gathering) and the worker processes' CPU seconds.
Also the machine's load average before and after, since a shared machine's load moves the speed-up.
``--repeat N`` times each configuration N times, interleaved (in process, 1 worker, 2 workers, again), and keeps the
best of each: on a shared machine the load comes and goes.
Usage: python bench/scale.py [--symbols 50] [--in-sample 4000] [--out-sample 750] [--repeat 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

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
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--in-sample", type=int, default=4000)
    parser.add_argument("--out-sample", type=int, default=750)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each configuration, interleaved; the best counts"
    )
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
    """The bars into ``raw.ohlcv`` (COPY), prices to 6 decimals as text (formatted with numpy, column by column)."""
    from alphaloom.db.copy import copy_rows

    def text_of(frame: pd.DataFrame) -> np.ndarray:
        return np.char.mod("%.6f", frame.to_numpy().ravel())  # row-major: time after time, the symbols of each

    opens, closes = text_of(open_), text_of(close)
    highs, lows = text_of(np.maximum(open_, close)), text_of(np.minimum(open_, close))
    times = np.repeat(close.index.to_pydatetime(), len(close.columns))
    symbols = np.tile(np.array(close.columns), len(close.index))
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values ('bench-scale', 'bench')"))
        copy_rows(conn, "raw.ohlcv", ("exchange", "symbol", "timeframe", "ts", "open", "high", "low", "close", "volume",
                                      "run_id"),
                  (("benchscale", s, "1h", t, o, h, lo, c, 1, "bench-scale")
                   for s, t, o, h, lo, c in zip(symbols, times, opens, highs, lows, closes, strict=True)))  # fmt: skip
    with engine.connect() as conn:
        conn.execute(
            text("analyze raw.ohlcv")
        )  # the planner's statistics of the table just filled, as autovacuum would


def _open_engine() -> None:
    from alphaloom.db.engine import get_engine

    with get_engine().connect():
        pass


def _run(args: argparse.Namespace, symbols: list[str]) -> None:
    """The sweep in this process and on 1 and 2 Dask worker processes, interleaved (see the module docstring)."""
    from distributed import Client, LocalCluster, get_task_stream
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.testing.utilities import prefect_test_harness

    from alphaloom.backtest.walkforward import WindowOutcome, run_window
    from alphaloom.backtest.walkforward_run import WalkForwardSpec, WindowSpec, load_window, window_specs
    from alphaloom.db.engine import get_engine
    from alphaloom.settings import get_settings
    from alphaloom.task_runner import SettingsTaskRunner
    from flows.walk_forward import walk_window, walk_windows

    spec = WalkForwardSpec(symbols, FASTS, SLOWS, in_sample=args.in_sample, out_sample=args.out_sample)
    with get_engine().connect() as conn:
        windows = window_specs(conn, get_settings(), spec)
    assert len(windows) == WINDOWS

    def fresh(count: int) -> list[WindowSpec]:
        """The first ``count`` windows as a new run plans them: a sweep of their own, so the bars are read afresh
        (a process reads a sweep's bars once: ``alphaloom.backtest.walkforward_bars``)."""
        sweep = uuid.uuid4().hex
        return [dataclasses.replace(window, sweep=sweep) for window in windows[:count]]

    @task(cache_policy=NO_CACHE)
    def empty(n: int) -> int:
        return n

    @flow(name="bench_scale_empty", task_runner=SettingsTaskRunner())
    def empty_tasks(count: int) -> list:
        """``count`` tasks with nothing to do: Prefect's own cost per task run on Dask."""
        return empty.map(list(range(count))).result()

    @flow(name="bench_scale_sweep", task_runner=SettingsTaskRunner())
    def sweep(count: int) -> list:
        """The first ``count`` windows as the walk-forward flow runs them (the windows are not flow parameters: those
        go to the API as JSON)."""
        return walk_windows(fresh(count))

    @task(cache_policy=NO_CACHE, persist_result=False)
    def window_task(window: WindowSpec) -> WindowOutcome:
        return walk_window(window)

    @flow(name="bench_scale_sweep_tasks", task_runner=SettingsTaskRunner())
    def sweep_tasks(count: int) -> list:
        """The first ``count`` windows each a Prefect task run of its own on Dask (the flow's way before the futures)."""
        return window_task.map(fresh(count)).result()

    def in_process() -> tuple[float, float, list]:
        """The windows read and run here one after the other: seconds in all, seconds reading, outcomes."""
        started = time.perf_counter()
        with get_engine().connect() as conn:
            inputs = [load_window(conn, w) for w in fresh(WINDOWS)]
        loading = time.perf_counter() - started
        outcomes = [run_window(w) for w in inputs]
        return time.perf_counter() - started, loading, outcomes

    load_before = os.getloadavg()
    print(f"sweep: {WINDOWS} windows x {len(FASTS) * len(SLOWS)} parameter sets, {args.symbols} symbols, "
          f"{args.in_sample} + {args.out_sample} bars per window, audit none, best of {args.repeat}")  # fmt: skip
    best: dict[int, float] = {0: math.inf, 1: math.inf, 2: math.inf}  # 0: in process
    best_tasks: dict[int, float] = {1: math.inf, 2: math.inf}  # a Prefect task per window
    spans: dict[int, tuple[float, float]] = {}  # of the best run: the windows' span and busy seconds on the workers
    cpus: dict[int, list[float]] = {}  # of the best run: CPU seconds of each worker process
    with (
        prefect_test_harness(server_startup_timeout=120),
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as one,
        Client(one) as client_one,
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as two,
        Client(two) as client_two,
    ):
        clusters = {1: (one.scheduler_address, client_one), 2: (two.scheduler_address, client_two)}
        for workers, (address, client) in clusters.items():
            client.wait_for_workers(workers)
            client.run(_open_engine)  # each worker's own engine, opened before the timing
            with _on_dask(address):
                sweep(workers)  # warm-up: every worker imports the flow and its libraries
                sweep_tasks(workers)
        for _ in range(args.repeat):  # interleaved, the best of each: a shared machine's load comes and goes
            seconds, loading, baseline = in_process()
            if seconds < best[0]:
                best[0], reading = seconds, loading
            for workers, (address, client) in clusters.items():
                cpu_before = client.run(time.process_time)
                with _on_dask(address), get_task_stream(client=client) as stream:
                    started = time.perf_counter()
                    outcomes = sweep(WINDOWS)
                    seconds = time.perf_counter() - started
                cpu = [spent - cpu_before[worker] for worker, spent in client.run(time.process_time).items()]
                if seconds < best[workers]:
                    best[workers], spans[workers], cpus[workers] = seconds, _window_span(stream.data), cpu
                with _on_dask(address):
                    started = time.perf_counter()
                    as_tasks = sweep_tasks(WINDOWS)
                    best_tasks[workers] = min(best_tasks[workers], time.perf_counter() - started)
                for result in (outcomes, as_tasks):
                    assert [o.row for o in result] == [b.row for b in baseline], "the sweep on Dask differs"
        with _on_dask(clusters[1][0]):
            started = time.perf_counter()
            empty_tasks(WINDOWS)
            empty_ms = (time.perf_counter() - started) / WINDOWS * 1000
        started = time.perf_counter()
        client_one.gather(client_one.map(lambda n: n, range(WINDOWS), pure=False))
        raw_ms = (time.perf_counter() - started) / WINDOWS * 1000
    print(f"in process (no Prefect, no Dask): {best[0]:.2f} s ({best[0] / WINDOWS * 1000:.0f} ms per window, of "
          f"which reading its bars {reading / WINDOWS * 1000:.0f} ms)")  # fmt: skip
    for workers in (1, 2):
        span, busy = spans[workers]
        print(f"{workers} worker process{'es' if workers > 1 else ''}: {best[workers]:.2f} s: the windows ran for "
              f"{span:.2f} s from the first's start to the last's end, {busy:.2f} s of work on the workers "
              f"({busy / WINDOWS * 1000:.0f} ms per window); outside them (the Prefect flow run and its task, the "
              f"connection to the scheduler, gathering) {best[workers] - span:.2f} s; CPU seconds of the worker "
              f"processes {' + '.join(f'{c:.2f}' for c in cpus[workers])} (a loaded machine's cores: work seconds "
              f"above CPU seconds are waits for a core or the database)")  # fmt: skip
    print(f"for comparison, a Prefect task per window: 1 worker {best_tasks[1]:.2f} s, 2 workers {best_tasks[2]:.2f} s "
          f"(speed-up {best_tasks[1] / best_tasks[2]:.2f} x, per-window overhead "
          f"{(best_tasks[1] - best[0]) / WINDOWS * 1000:.0f} ms)")  # fmt: skip
    load_after = os.getloadavg()
    print(f"load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f} on {os.cpu_count()} CPUs")
    speed_up = best[1] / best[2]
    _line("speed-up, 2 workers over 1", speed_up, "x", ">= 1.6 on 2 cores", speed_up >= 1.6)
    window_ms = best[0] / WINDOWS * 1000
    overhead_ms = (best[1] - best[0]) / WINDOWS * 1000
    print(
        f"for scale, 1 worker: an empty Prefect task on Dask {empty_ms:.0f} ms per task, an empty plain Dask "
        f"future {raw_ms:.1f} ms per task (a window is a plain Dask future inside one Prefect task)"
    )
    _line(f"Dask per-window overhead vs in-process (a window: {window_ms:.0f} ms)", overhead_ms,
          "ms per task", f"<= {window_ms * 0.1:.0f} ms (10% of a window)", overhead_ms <= window_ms * 0.1)  # fmt: skip


def _window_span(stream: list[dict]) -> tuple[float, float]:
    """Of the windows in a Dask task stream: seconds from the first start to the last end, and seconds of work."""
    phases = [phase for entry in stream if str(entry["key"]).startswith("walk_window")
              for phase in entry["startstops"] if phase["action"] == "compute"]  # fmt: skip
    if not phases:
        return 0.0, 0.0
    return (max(p["stop"] for p in phases) - min(p["start"] for p in phases),
            sum(p["stop"] - p["start"] for p in phases))  # fmt: skip


@contextmanager
def _on_dask(address: str) -> Iterator[None]:
    """The flows run in this block use the Dask scheduler at ``address`` (``ALPHALOOM_DASK_ADDRESS``)."""
    from alphaloom.settings import get_settings

    os.environ["ALPHALOOM_DASK_ADDRESS"] = address
    get_settings.cache_clear()
    try:
        yield
    finally:
        del os.environ["ALPHALOOM_DASK_ADDRESS"]
        get_settings.cache_clear()


if __name__ == "__main__":
    main()
