"""Benchmark: a walk-forward sweep on Dask worker processes, 1 worker against 2 (issue 18).

The sweep: 8 windows x 9 (fast, slow) pairs of the SMA crossover on generated hourly bars, on the vectorized path with no
audit rows (``--audit none``: no result is recorded). The bars are stored in ``raw.ohlcv`` of a throwaway database made
here on the server of ``ALPHALOOM_DATABASE_URL`` (dropped at the end). The windows run as the walk-forward flow runs
them (``flows.walk_forward.walk_windows``, one Prefect task): the sweep's bars cut at window starts into one piece per
worker (``piece_specs``: about 5,000 bar times each at the default size), each piece read in one query by a plain Dask
future on its worker's engine; the windows cut into one block of consecutive windows per worker, each block a plain
Dask future that depends on the pieces its windows span (Dask hands a piece to the other worker: ~4 MB) and runs its
windows one after the other from them. Each bar time is read once in all, the pieces in parallel (every timed run is a
new run: ``alphaloom.backtest.walkforward_bars``, its bars read afresh). The default size is a user's: 50 symbols, 4,000
in-sample and 8 x 750 out-of-sample hourly bars (10,000 bar times). The flow's task runner
(``alphaloom.task_runner.SettingsTaskRunner``) is pointed by ``ALPHALOOM_DASK_ADDRESS`` at a ``LocalCluster`` of 1 or one
of 2 worker processes, both started here (one thread each; warmed up first, so imports and engines are not timed).
For comparison, in the same run: one block per worker reading the bars its windows span (the flow's way before the
pieces: the blocks' overlapping in-sample bars read twice), and the sweep's bars read here in one query and sent to
every worker (``client.scatter(..., broadcast=True)``), each block cutting its windows from them. The same window
bodies (read, then run) run in this process, without Prefect or Dask, as the baseline; every run must give the same
windows as the baseline.

Prefect 3.9's flow-run heartbeat thread sleeps in 1-second steps and is joined when the flow run ends, which holds the end
of every flow run by up to a second whatever runs in it (an empty flow run: about 1 s with it, tens of ms without;
printed). The flows here are timed without it (``--prefect-heartbeat``: with it), so that the figures measure Dask.

Prints, each with its unit, goal and ``met`` or ``MISSED``:
- the speed-up of 2 workers over 1, the flow's way (pieces) (goal >= 1.6 on a 2-core machine);
- Dask's per-window overhead: (1 worker's time - the in-process time) / windows, in ms, against a window's in-process
  time (goal <= 10% of it), and, for scale, what a window would cost as a Prefect task run of its own on Dask (an empty
  Prefect task) and as a plain Dask future (an empty one), in ms per task.
Where the time goes, per way and worker count: the tasks' span and work seconds (Dask's task stream), what lies outside
them (the Prefect flow run and its task, connecting, gathering); and figures that a loaded machine moves little: the CPU
seconds of each worker process (also net of an idle worker's upkeep, measured here; the system seconds among them and
the worker's minor page faults: a worker whose freed memory went back to the system faults every new array in page by
page, ``alphaloom.dask_runner``), of this process (the flow, the client and the clusters' schedulers) and of the
database's server sessions (read from ``/proc``: a server on this machine), and the bar times read by each worker and by this process (the flow's own reads: the scattered way). The
load average is printed beside each figure, and before and after.
``--repeat N`` times each configuration N times, interleaved (in process, then each way on 1 worker and on 2, again),
and keeps the best of each: on a shared machine the load comes and goes.
Usage: python bench/scale.py [--symbols 50] [--in-sample 4000] [--out-sample 750] [--repeat 1] [--prefect-heartbeat]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
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
    parser.add_argument("--prefect-heartbeat", action="store_true",
                        help="time the flow runs with Prefect's flow-run heartbeat thread (off by default: see above)")  # fmt: skip
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


def _cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU seconds of these processes so far (``/proc``: the server must run on this machine); None when
    one cannot be read."""
    try:
        total = 0
        for pid in pids:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    except OSError:
        return None
    return total / os.sysconf("SC_CLK_TCK")


def _usage() -> tuple[int, float]:
    """Run on a worker: its minor page faults and system CPU seconds so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_minflt, usage.ru_stime


def _backends(engine: Engine) -> list[int]:
    """The process ids of the database's server sessions (the pooled connections of this process and the workers)."""
    with engine.connect() as conn:
        return list(conn.execute(text("select pid from pg_stat_activity where datname = current_database()")).scalars())


def _bars_read(sweep: str) -> int:
    from alphaloom.backtest.walkforward_bars import SWEEP_BARS

    return SWEEP_BARS.bars_read(sweep)


def _block_reading_its_span(windows: list) -> list:
    """Consecutive windows run here after reading, in one query, the bars they span (the flow's way before the
    pieces)."""
    from alphaloom.backtest.walkforward_run import read_block
    from alphaloom.db.engine import get_engine
    from flows.walk_forward import walk_window

    with get_engine().connect() as conn:
        read_block(conn, windows)
    return [walk_window(window) for window in windows]


def _open_engine() -> None:
    from alphaloom.db.engine import get_engine

    with get_engine().connect():
        pass


def _run(args: argparse.Namespace, symbols: list[str]) -> None:
    """The sweep in this process and on 1 and 2 Dask worker processes, interleaved (see the module docstring)."""
    from distributed import Client, LocalCluster, get_task_stream
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from alphaloom.backtest.walkforward import WindowOutcome, contiguous_blocks, run_window
    from alphaloom.backtest.walkforward_run import (
        WalkForwardSpec,
        WindowSpec,
        load_window,
        piece_specs,
        read_piece,
        window_specs,
    )
    from alphaloom.db.engine import get_engine
    from alphaloom.settings import get_settings
    from alphaloom.task_runner import SettingsTaskRunner, flow_dask_client
    from flows.walk_forward import walk_block, walk_windows

    spec = WalkForwardSpec(symbols, FASTS, SLOWS, in_sample=args.in_sample, out_sample=args.out_sample)
    with get_engine().connect() as conn:
        windows = window_specs(conn, get_settings(), spec)
        stored = len(conn.execute(text("select distinct ts from raw.ohlcv")).all())
    assert len(windows) == WINDOWS
    sweeps: list[str] = []  # the sweep of each run, the newest last

    def fresh(count: int) -> list[WindowSpec]:
        """The first ``count`` windows as a new run plans them: a sweep of their own, so the bars are read afresh
        (a process reads a sweep's bars once: ``alphaloom.backtest.walkforward_bars``)."""
        sweeps.append(uuid.uuid4().hex)
        return [dataclasses.replace(window, sweep=sweeps[-1]) for window in windows[:count]]

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

    def slots_of(client: Client) -> list[str]:
        return [address for address, count in sorted(client.nthreads().items()) for _ in range(count)]

    @task(cache_policy=NO_CACHE, persist_result=False)
    def span_blocks(windows: list[WindowSpec]) -> list[WindowOutcome]:
        client = flow_dask_client()
        assert client is not None
        slots = slots_of(client)
        blocks = [windows[run.start : run.stop] for run in contiguous_blocks(len(windows), len(slots))]
        futures = [client.submit(_block_reading_its_span, block, pure=False, workers=[slots[n]],
                                 allow_other_workers=True) for n, block in enumerate(blocks)]  # fmt: skip
        return [outcome for outcomes in client.gather(futures) for outcome in outcomes]

    @flow(name="bench_scale_sweep_spans", task_runner=SettingsTaskRunner())
    def sweep_spans(count: int) -> list:
        """The first ``count`` windows in one block per worker, each block reading the bars it spans (the flow's way
        before the pieces: the blocks' overlap read twice)."""
        return span_blocks(fresh(count))

    @task(cache_policy=NO_CACHE, persist_result=False)
    def scattered_blocks(windows: list[WindowSpec]) -> list[WindowOutcome]:
        client = flow_dask_client()
        assert client is not None
        slots = slots_of(client)
        with get_engine().connect() as conn:
            bars = read_piece(conn, piece_specs(windows, 1)[0])
        [every] = client.scatter([bars], broadcast=True, hash=False)
        blocks = [windows[run.start : run.stop] for run in contiguous_blocks(len(windows), len(slots))]
        futures = [client.submit(walk_block, block, every, pure=False, workers=[slots[n]], allow_other_workers=True)
                   for n, block in enumerate(blocks)]  # fmt: skip
        return [outcome for outcomes in client.gather(futures) for outcome in outcomes]

    @flow(name="bench_scale_sweep_scattered", task_runner=SettingsTaskRunner())
    def sweep_scattered(count: int) -> list:
        """The first ``count`` windows' bars read here in one query and sent to every worker (``client.scatter``,
        ``broadcast=True``), then one block of windows per worker cut from them."""
        return scattered_blocks(fresh(count))

    def in_process() -> Measured:
        """The windows read and run here one after the other."""
        backends = _backends(get_engine())
        pg_before, cpu_before, started = _cpu_seconds(backends), time.process_time(), time.perf_counter()
        with get_engine().connect() as conn:
            inputs = [load_window(conn, w) for w in fresh(WINDOWS)]
        loading = time.perf_counter() - started
        outcomes = [run_window(w) for w in inputs]
        seconds, pg_after = time.perf_counter() - started, _cpu_seconds(backends)
        return Measured(seconds, outcomes, client_cpu=time.process_time() - cpu_before, reading=loading,
                        pg_cpu=None if pg_before is None or pg_after is None else pg_after - pg_before,
                        bars_read=[_bars_read(sweeps[-1])])  # fmt: skip

    def on_workers(run: Callable[[int], list], address: str, client: Client) -> Measured:
        """One sweep on the cluster of ``client``, with its CPU seconds, bars read and task stream."""
        backends = _backends(get_engine())
        cpu_before, pg_before, mine_before = client.run(time.process_time), _cpu_seconds(backends), time.process_time()
        usage_before = client.run(_usage)
        with _on_dask(address), get_task_stream(client=client) as stream:
            started = time.perf_counter()
            outcomes = run(WINDOWS)
            seconds = time.perf_counter() - started
        cpu = [spent - cpu_before[worker] for worker, spent in client.run(time.process_time).items()]
        usage = [(faults - usage_before[worker][0], system - usage_before[worker][1])
                 for worker, (faults, system) in client.run(_usage).items()]  # fmt: skip
        pg_after, sweep_id = _cpu_seconds(backends), sweeps[-1]
        return Measured(seconds, outcomes, client_cpu=time.process_time() - mine_before, worker_cpu=cpu,
                        pg_cpu=None if pg_before is None or pg_after is None else pg_after - pg_before,
                        bars_read=list(client.run(_bars_read, sweep_id).values()), span=_window_span(stream.data),
                        read_here=_bars_read(sweep_id), tasks=_task_seconds(stream.data), worker_usage=usage)  # fmt: skip

    @flow(name="bench_scale_nothing")
    def nothing() -> None:
        """A flow run with nothing to do: what Prefect costs per flow run."""

    def flow_run_ms(heartbeat: int | None) -> float:
        """The fastest of 3 empty flow runs in ms, with Prefect's flow-run heartbeat every ``heartbeat`` s (None: off)."""
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: heartbeat}):
            runs = []
            for _ in range(3):
                started = time.perf_counter()
                nothing()
                runs.append(time.perf_counter() - started)
        return min(runs) * 1000

    ways: dict[str, Callable[[int], list]] = {"pieces": sweep, "blocks reading their span": sweep_spans,
                                              "one read here, scattered": sweep_scattered}  # fmt: skip
    load_before = os.getloadavg()
    print(f"sweep: {WINDOWS} windows x {len(FASTS) * len(SLOWS)} parameter sets, {args.symbols} symbols, "
          f"{args.in_sample} + {args.out_sample} bars per window ({stored:,} bar times stored), audit none, best of "
          f"{args.repeat}")  # fmt: skip
    best: dict[tuple[str, int], Measured] = {}  # ("in process", 0), (way, workers): the fastest run of each
    loads: dict[tuple[str, int], float] = {}  # the 1-minute load average at that run's end
    idle_rate: dict[int, float] = {}  # CPU seconds an idle worker process spends per second (Dask's own upkeep)

    def keep(key: tuple[str, int], measured: Measured, baseline: Measured) -> None:
        assert [o.row for o in measured.outcomes] == [b.row for b in baseline.outcomes], f"{key} differs"
        if key not in best or measured.seconds < best[key].seconds:
            best[key], loads[key] = measured, os.getloadavg()[0]

    heartbeat = PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() if args.prefect_heartbeat else None
    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: heartbeat}),
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
                for run in ways.values():
                    run(workers)  # warm-up: every worker imports the flow and its libraries
            idle_before, started = client.run(time.process_time), time.perf_counter()
            time.sleep(2)
            idle_rate[workers] = sum(spent - idle_before[worker] for worker, spent in client.run(time.process_time).items()
                                     ) / (time.perf_counter() - started) / workers  # fmt: skip
        for _ in range(args.repeat):  # interleaved, the best of each: a shared machine's load comes and goes
            baseline = in_process()
            keep(("in process", 0), baseline, baseline)
            for workers, (address, client) in clusters.items():
                for way, run in ways.items():
                    keep((way, workers), on_workers(run, address, client), baseline)
        with _on_dask(clusters[1][0]):
            started = time.perf_counter()
            empty_tasks(WINDOWS)
            empty_ms = (time.perf_counter() - started) / WINDOWS * 1000
        started = time.perf_counter()
        client_one.gather(client_one.map(lambda n: n, range(WINDOWS), pure=False))
        raw_ms = (time.perf_counter() - started) / WINDOWS * 1000
        flow_on, flow_off = flow_run_ms(PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() or 180), flow_run_ms(None)
    here = best[("in process", 0)]
    print(f"in process (no Prefect, no Dask): {here.seconds:.2f} s ({here.seconds / WINDOWS * 1000:.0f} ms per window, "
          f"of which reading its bars and computing its targets {here.reading / WINDOWS * 1000:.0f} ms); "
          f"{here.cpu_line()} (load {loads[('in process', 0)]:.2f})")  # fmt: skip
    print(f"an empty Prefect flow run: {flow_on:.0f} ms with Prefect's flow-run heartbeat thread, {flow_off:.0f} ms "
          f"without (the flow runs here are timed {'with' if args.prefect_heartbeat else 'without'} it); an idle "
          f"worker process spends {idle_rate[1]:.3f} (1 worker) / {idle_rate[2]:.3f} (2 workers) CPU seconds a second "
          "(Dask's upkeep, subtracted below as 'net')")  # fmt: skip
    for way in ways:
        for workers in (1, 2):
            got = best[(way, workers)]
            got.idle_cpu = idle_rate[workers] * got.seconds
            span, busy = got.span
            print(f"{way}, {workers} worker process{'es' if workers > 1 else ''}: {got.seconds:.2f} s: the windows ran "
                  f"for {span:.2f} s from the first task's start to the last's end, {busy:.2f} s of work on the "
                  f"workers; outside them (the Prefect flow run and its task, the connection to the scheduler, "
                  f"gathering) {got.seconds - span:.2f} s; {got.cpu_line()}; each task's compute seconds, in start "
                  f"order: {', '.join(f'{name} {sec:.2f}' for name, sec in got.tasks)} "
                  f"(load {loads[(way, workers)]:.2f})")  # fmt: skip
        print(f"{way}: speed-up {best[(way, 1)].seconds / best[(way, 2)].seconds:.2f} x, per-window overhead "
              f"{(best[(way, 1)].seconds - here.seconds) / WINDOWS * 1000:.0f} ms; net CPU seconds of the workers, 2 over 1: "
              f"{best[(way, 2)].cpu_ratio(best[(way, 1)])}")  # fmt: skip
    load_after = os.getloadavg()
    print(f"load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f} on {os.cpu_count()} CPUs "
          "(work seconds above CPU seconds are waits for a core or the database)")  # fmt: skip
    speed_up = best[("pieces", 1)].seconds / best[("pieces", 2)].seconds
    _line("speed-up, 2 workers over 1", speed_up, "x", ">= 1.6 on 2 cores", speed_up >= 1.6)
    window_ms = here.seconds / WINDOWS * 1000
    overhead_ms = (best[("pieces", 1)].seconds - here.seconds) / WINDOWS * 1000
    print(
        f"for scale, 1 worker: an empty Prefect task on Dask {empty_ms:.0f} ms per task, an empty plain Dask "
        f"future {raw_ms:.1f} ms per task (a block of windows is a plain Dask future inside one Prefect task)"
    )
    _line(f"Dask per-window overhead vs in-process (a window: {window_ms:.0f} ms)", overhead_ms,
          "ms per window", f"<= {window_ms * 0.1:.0f} ms (10% of a window)", overhead_ms <= window_ms * 0.1)  # fmt: skip


@dataclasses.dataclass
class Measured:
    """One timed sweep: seconds, outcomes, CPU seconds of this process (the flow, the client and, for a
    ``LocalCluster``, its scheduler), of each worker process and of the database's server sessions (None when they
    cannot be read), the bar times each process read, and on workers the tasks' span and work seconds."""

    seconds: float
    outcomes: list
    client_cpu: float
    pg_cpu: float | None
    bars_read: list[int]
    worker_cpu: list[float] = dataclasses.field(default_factory=list)
    span: tuple[float, float] = (0.0, 0.0)
    tasks: list[tuple[str, float]] = dataclasses.field(default_factory=list)  # each task's name and compute seconds
    reading: float = 0.0
    idle_cpu: float = 0.0  # of each worker: its idle upkeep over the run's seconds
    read_here: int = 0  # bar times this process read (on workers: the flow's own reads)
    worker_usage: list[tuple[int, float]] = dataclasses.field(default_factory=list)  # minor faults, system CPU seconds

    def cpu_line(self) -> str:
        workers = (f"workers {' + '.join(f'{c:.2f}' for c in self.worker_cpu)} (net "
                   f"{' + '.join(f'{c - self.idle_cpu:.2f}' for c in self.worker_cpu)}; of which system "
                   f"{' + '.join(f'{s:.2f}' for _, s in self.worker_usage)}, minor page faults "
                   f"{' + '.join(f'{f:,}' for f, _ in self.worker_usage)}), " if self.worker_cpu else "")  # fmt: skip
        pg = f"{self.pg_cpu:.2f}" if self.pg_cpu is not None else "n/a"
        return (f"CPU seconds: {workers}this process {self.client_cpu:.2f}, PostgreSQL sessions {pg}; bar times "
                f"read per {'worker' if self.worker_cpu else 'process'}: {', '.join(f'{b:,}' for b in self.bars_read)}"
                f"{f', this process {self.read_here:,}' if self.worker_cpu else ''} "
                f"({sum(self.bars_read) + (self.read_here if self.worker_cpu else 0):,} in all)")  # fmt: skip

    def cpu_ratio(self, one: Measured) -> str:
        """The workers' net CPU seconds of this 2-worker run over those of the 1-worker ``one``, and the speed-up the
        busier worker allows on 2 idle cores (the 1-worker net CPU over the larger 2-worker net CPU)."""
        mine = [c - self.idle_cpu for c in self.worker_cpu]
        theirs = sum(c - one.idle_cpu for c in one.worker_cpu)
        return (f"{sum(mine):.2f} / {theirs:.2f} = {sum(mine) / theirs:.2f} (1.00: no work added by the second worker); "
                f"1 worker's net CPU over the busier of 2: {theirs / max(mine):.2f} x")  # fmt: skip


def _window_span(stream: list[dict]) -> tuple[float, float]:
    """Of the tasks in a Dask task stream (a sweep's blocks or windows): seconds from the first start to the last end,
    and seconds of work."""
    phases = [phase for entry in stream for phase in entry["startstops"] if phase["action"] == "compute"]
    if not phases:
        return 0.0, 0.0
    return (max(p["stop"] for p in phases) - min(p["start"] for p in phases),
            sum(p["stop"] - p["start"] for p in phases))  # fmt: skip


def _task_seconds(stream: list[dict]) -> list[tuple[str, float]]:
    """Of the tasks in a Dask task stream, in order of start: the function's name (a piece's read, a block) and its
    compute seconds."""
    phases = sorted((phase["start"], entry["key"].split("-", 1)[0], phase["stop"] - phase["start"])
                    for entry in stream for phase in entry["startstops"] if phase["action"] == "compute")  # fmt: skip
    return [(name, seconds) for _, name, seconds in phases]


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
