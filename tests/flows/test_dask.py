"""Past one machine (issue 18): flows on a Dask ``LocalCluster`` of 2 worker processes started here record exactly
what the single-process run records, and a worker killed mid-task costs a retry on a worker, not a duplicate.

The workers are separate processes: they inherit this session's ``ALPHALOOM_DATABASE_URL``, temporary
``ALPHALOOM_HOME`` and this module's exchange from the environment, which is set before the cluster starts. The data
(hand-made features of 6 symbols, 600 hourly bars of two others) lives on an exchange and accounts of this module.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from distributed import Client, LocalCluster
from prefect import flow
from pydantic import ValidationError
from sqlalchemy import Engine, text
from support.features import write_alternating_bars
from support.prices import prices
from typer.testing import CliRunner

from alphaloom.backtest.walkforward import WindowOutcome
from alphaloom.backtest.walkforward_run import WalkForwardSpec, WindowSpec, piece_specs, window_specs
from alphaloom.cli import app
from alphaloom.db.engine import get_engine
from alphaloom.settings import OpsSettings, Settings, get_settings
from alphaloom.task_runner import SettingsTaskRunner, configured_task_runner, flow_dask_client
from flows.backtest_shards import backtest_shards_flow, symbol_groups
from flows.decide import decide_flow
from flows.walk_forward import walk_forward_flow, walk_window, walk_windows

TAG = uuid.uuid4().hex[:6]
EXCHANGE = f"dask{TAG}"
SYMBOLS = [f"DK{n}{TAG.upper()}/USDT" for n in range(6)]
WF_SYMBOLS = [f"DWA{TAG.upper()}/USDT", f"DWB{TAG.upper()}/USDT"]
T0 = datetime(2023, 5, 1, tzinfo=UTC)  # a stretch of time of this module
HOUR = timedelta(hours=1)
STEPS = 4
runner = CliRunner()


@dataclass
class Cluster:
    address: str
    client: Client


def _features(engine: Engine) -> None:
    """Per symbol and step a bullish or bearish bar (known an hour after it closes): buys, holds and sells."""
    write_alternating_bars(engine, exchange=EXCHANGE, symbols=SYMBOLS, steps=STEPS, start=T0, invocation="dask-test")


def _bars(engine: Engine) -> None:
    """600 hourly bars of two symbols: 8 walk-forward windows of 120 + 60 bars."""
    open_, close = (frame.round(6) for frame in prices(600))
    open_.columns = close.columns = WF_SYMBOLS
    rows = [{"e": EXCHANGE, "s": s, "t": ts.to_pydatetime(), "o": f"{open_.at[ts, s]:.6f}", "c": f"{close.at[ts, s]:.6f}",
             "h": f"{max(open_.at[ts, s], close.at[ts, s]):.6f}", "l": f"{min(open_.at[ts, s], close.at[ts, s]):.6f}"}
            for ts in close.index for s in WF_SYMBOLS]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": f"bars-{EXCHANGE}"})
        conn.execute(
            text(f"""insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id)
                     values (:e, :s, '1h', :t, :o, :h, :l, :c, 1, 'bars-{EXCHANGE}')"""),
            rows,
        )


@pytest.fixture(scope="module")
def cluster(engine: Engine, prefect_harness) -> Iterator[Cluster]:
    """This module's data, then a LocalCluster of 2 worker processes (one thread each) in this module's environment."""
    _features(engine)
    _bars(engine)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHALOOM_EXCHANGE", EXCHANGE)
        mp.setenv("ALPHALOOM_TIMEFRAME", "1h")
        mp.delenv("ALPHALOOM_DASK_ADDRESS", raising=False)
        mp.setenv("ALPHALOOM_DB_POOL_SIZE", "2")  # the workers' pools (as docker-compose.yml's dask-worker)
        mp.setenv("ALPHALOOM_DB_MAX_OVERFLOW", "1")
        get_settings.cache_clear()
        with (
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as local,
            Client(local) as client,
        ):
            client.wait_for_workers(2)
            yield Cluster(local.scheduler_address, client)
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _settings_read_again_after_each_test() -> Iterator[None]:
    """A test that points ``ALPHALOOM_DASK_ADDRESS`` at the cluster (``monkeypatch``, undone after it) leaves no
    cached settings behind: the next test's single-process reference run must not run on Dask."""
    yield
    get_settings.cache_clear()


@pytest.fixture()
def on_dask(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    monkeypatch.setenv("ALPHALOOM_DASK_ADDRESS", cluster.address)
    get_settings.cache_clear()
    yield cluster
    monkeypatch.delenv("ALPHALOOM_DASK_ADDRESS")
    get_settings.cache_clear()


def _decide(account: str, *, fan_out: bool = True) -> dict[str, int]:
    state = decide_flow(symbols=SYMBOLS, as_of=T0 + STEPS * HOUR, steps=STEPS, account=account, fan_out=fan_out,
                        return_state=True)  # fmt: skip
    assert state.is_completed(), state
    return state.result()


def _decision_records(engine: Engine, account: str) -> dict[str, list[tuple]]:
    """What a decision run recorded for ``account``, without run ids, times of recording or generated ids."""
    with engine.connect() as conn:
        return {
            "decisions": conn.execute(
                text("""select symbol, as_of, action, score, config_version from audit.decisions
                        where account = :a order by symbol, as_of"""),
                {"a": account},
            ).all(),
            "orders": conn.execute(
                text("""select symbol, side, quantity, status from audit.orders where account = :a
                        order by symbol, created_at"""),
                {"a": account},
            ).all(),
            "fills": conn.execute(
                text("select symbol, side, quantity, price, fee, ts from audit.fills where account = :a order by 1, 6"),
                {"a": account},
            ).all(),
            "positions": conn.execute(
                text("select symbol, quantity, avg_price from audit.positions where account = :a order by 1"),
                {"a": account},
            ).all(),
        }


@pytest.fixture(scope="module")
def single_process(cluster: Cluster) -> dict[str, int]:
    """The decision run without fan-out, in the flow's process (no Dask), on its own account: the reference."""
    return _decide(f"dask-one-{TAG}", fan_out=False)


def test_decision_fan_out_on_two_workers_records_what_one_process_records(
    engine: Engine, cluster: Cluster, single_process: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    local = single_process
    monkeypatch.setenv("ALPHALOOM_DASK_ADDRESS", cluster.address)
    get_settings.cache_clear()
    remote = _decide(f"dask-two-{TAG}")
    assert remote == local
    assert local["decisions"] == len(SYMBOLS) * STEPS and local["submitted"] > 0
    one, two = _decision_records(engine, f"dask-one-{TAG}"), _decision_records(engine, f"dask-two-{TAG}")
    assert two == one and one["fills"] and one["positions"]
    # the analysts ran on both worker processes (each imported the decision flow there, and opened its own engine)
    ran = cluster.client.run(lambda: "flows.decide" in __import__("sys").modules)
    assert len(ran) == 2 and all(ran.values()), ran


def _walk_forward_records(engine: Engine, run_id: str) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {
            "runs": conn.execute(
                text("""select exchange, timeframe, symbols, objective, in_sample_bars, out_sample_bars, grid, metrics
                        from audit.walk_forward_runs where run_id = :r"""),
                {"r": run_id},
            ).all(),
            "windows": conn.execute(
                text("""select window_no, in_sample_start, in_sample_end, out_of_sample_start, out_of_sample_end,
                               fast, slow, in_sample_score, out_of_sample_score, out_of_sample_return,
                               out_of_sample_fills
                        from audit.walk_forward_windows where run_id = :r order by window_no"""),
                {"r": run_id},
            ).all(),
        }


def test_walk_forward_of_eight_windows_on_two_workers_records_what_one_process_records(
    engine: Engine, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run() -> str:
        state = walk_forward_flow(symbols=WF_SYMBOLS, fast=[3, 5, 10], slow=[10, 20, 40], in_sample=120,
                                  out_sample=60, return_state=True)  # fmt: skip
        assert state.is_completed(), state
        result = state.result()
        assert result["windows"] == 8
        return result["run_id"]

    local = _walk_forward_records(engine, run())
    monkeypatch.setenv("ALPHALOOM_DASK_ADDRESS", cluster.address)
    get_settings.cache_clear()
    remote = _walk_forward_records(engine, run())
    assert len(local["windows"]) == 8 and local["runs"]
    assert remote == local
    ran = cluster.client.run(lambda: "flows.walk_forward" in __import__("sys").modules)
    assert all(ran.values()), ran


@flow(task_runner=SettingsTaskRunner())
def _walk_windows_flow(spec: WalkForwardSpec) -> tuple[list[WindowSpec], list[WindowOutcome]]:
    """The windows of ``spec`` planned here (a sweep of their own) and run as the walk-forward flow runs them."""
    with get_engine().connect() as conn:
        windows = window_specs(conn, get_settings(), spec)
    return windows, walk_windows(windows)


def _bars_read(sweep: str) -> int:
    from alphaloom.backtest.walkforward_bars import SWEEP_BARS

    return SWEEP_BARS.bars_read(sweep)


def _bar_times(engine: Engine, start: datetime, end: datetime | None) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("""select count(distinct ts) from raw.ohlcv where exchange = :e and symbol = any(:s)
                    and ts >= :start and (cast(:end as timestamptz) is null or ts < :end)"""),
            {"e": EXCHANGE, "s": WF_SYMBOLS, "start": start, "end": end},
        ).scalar_one()


def test_on_two_workers_each_reads_one_piece_of_the_bars_and_the_sweep_reads_each_bar_once(
    engine: Engine, on_dask: Cluster
) -> None:
    """8 windows on 2 workers: the sweep's bars cut at a window start into 2 pieces, each read by one worker (no bar
    read twice, though the two blocks of windows 1-4 and 5-8 both span bars of both pieces); the outcomes, in window
    order, are those of the windows run here."""
    spec = WalkForwardSpec(WF_SYMBOLS, [3, 5, 10], [10, 20, 40], in_sample=120, out_sample=60)
    with engine.connect() as conn:
        here = [walk_window(w) for w in window_specs(conn, get_settings(), spec)]
    windows, remote = _walk_windows_flow(spec)
    assert len(windows) == 8
    assert [o.row for o in remote] == [o.row for o in here]
    for got, expected in zip(remote, here, strict=True):
        pd.testing.assert_series_equal(got.returns, expected.returns, check_exact=True)
    read = sorted(on_dask.client.run(_bars_read, windows[0].sweep).values())
    pieces = piece_specs(windows, 2)
    assert len(pieces) == 2 and pieces[1].start in {w.start for w in windows}
    expected = sorted(_bar_times(engine, piece.start, piece.end) for piece in pieces)
    assert read == expected and sum(read) == _bar_times(engine, windows[0].start, None), (read, expected)
    assert min(read) > 0


ARRAY_PAGES = 256  # a 1 MiB array of doubles: 256 pages of 4 KiB, below numpy's 4 MiB threshold for huge pages


def _faults_making_arrays() -> int:
    """Run on a worker: the minor page faults of this thread while 100 arrays of 1 MiB are made (written) and freed in
    turn, as a window's frames are."""
    import resource

    import numpy as np

    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    for _ in range(100):
        np.ones(ARRAY_PAGES * 512)
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before


@flow(task_runner=SettingsTaskRunner())
def _faults_on_the_flows_workers() -> dict[str, int]:
    client = flow_dask_client()
    assert client is not None
    workers = sorted(client.nthreads())
    futures = [client.submit(_faults_making_arrays, pure=False, workers=[worker]) for worker in workers]
    return dict(zip(workers, client.gather(futures), strict=True))


def test_a_flows_workers_reuse_the_memory_of_freed_arrays_without_page_faults(on_dask: Cluster) -> None:
    """Dask starts worker processes with ``MALLOC_TRIM_THRESHOLD_=65536``, which also fixes glibc's mmap threshold at
    128 KiB: a larger array was then mapped afresh and faulted in page by page (a walk-forward window: some 110,000
    faults in a worker, up to 40% of its CPU seconds in the kernel). On a flow's cluster a freed array's memory is
    kept for the next one (``alphaloom.dask_runner.KeepFreedMemory``): 100 arrays of 1 MiB fault in about one array's
    pages, not 100 arrays'."""
    faults = _faults_on_the_flows_workers()
    assert len(faults) == 2
    assert all(count < 10 * ARRAY_PAGES for count in faults.values()), faults


@flow(task_runner=SettingsTaskRunner())
def _client_of_the_flow() -> str | None:
    client = flow_dask_client()
    return None if client is None else client.scheduler.address


def test_a_flow_knows_its_dask_client_only_when_it_runs_on_dask(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``walk_windows`` sends its windows to: the flow's cluster on Dask, none in the flow's process."""
    monkeypatch.delenv("ALPHALOOM_DASK_ADDRESS", raising=False)
    get_settings.cache_clear()
    assert flow_dask_client() is None  # outside a flow run
    assert _client_of_the_flow() is None
    monkeypatch.setenv("ALPHALOOM_DASK_ADDRESS", cluster.address)
    get_settings.cache_clear()
    try:
        assert _client_of_the_flow() == cluster.address
    finally:
        monkeypatch.delenv("ALPHALOOM_DASK_ADDRESS")
        get_settings.cache_clear()


def test_a_flow_runs_on_the_configured_scheduler_though_this_process_holds_another_client(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that made a Dask client of another cluster (the newest is Dask's default client) still runs its flows
    on the scheduler ``ALPHALOOM_DASK_ADDRESS`` names, not on that client's cluster."""
    with (
        LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as other,
        Client(other) as newest,
    ):
        assert newest.scheduler.address != cluster.address
        monkeypatch.setenv("ALPHALOOM_DASK_ADDRESS", cluster.address)
        get_settings.cache_clear()
        try:
            assert _client_of_the_flow() == cluster.address
        finally:
            monkeypatch.delenv("ALPHALOOM_DASK_ADDRESS")
            get_settings.cache_clear()


WORKER_SESSION = "dask-test-worker-"  # + the worker's pid: the application_name of its database sessions


def _name_worker_sessions() -> None:
    """Run on a worker: its database sessions opened from now on carry its pid in their ``application_name`` (libpq's
    ``PGAPPNAME``), so the test can tell whose session waits, on a TCP server as on the embedded one (a Unix socket:
    no client port to match)."""
    from alphaloom.db.engine import get_engine

    os.environ["PGAPPNAME"] = f"{WORKER_SESSION}{os.getpid()}"
    get_engine().dispose()  # its pooled connections were opened without the name


def _worker_waiting_on(engine: Engine, blocker_pid: int, workers: dict[str, int], run: threading.Thread) -> int:
    """The pid of the worker process whose database session waits for ``blocker_pid``'s lock (its sessions named by
    ``_name_worker_sessions``), polled while the decision ``run`` goes on, 180 s at most."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and run.is_alive():
        with engine.connect() as conn:
            names = conn.execute(
                text("select application_name from pg_stat_activity where :b = any(pg_blocking_pids(pid))"),
                {"b": blocker_pid},
            ).scalars()
            waiting = {int(name.removeprefix(WORKER_SESSION)) for name in names if name.startswith(WORKER_SESSION)}
        if waiting & set(workers.values()):
            return min(waiting & set(workers.values()))
        time.sleep(0.1)
    ended = "" if run.is_alive() else " (the decision run ended)"
    raise AssertionError(f"no worker's analyst task reached the locked table{ended}")


def test_a_worker_killed_mid_task_costs_a_retry_on_a_worker_and_nothing_twice(
    engine: Engine, single_process: dict[str, int], on_dask: Cluster
) -> None:
    """The fan-out's analyst tasks of the first step wait on a lock this test holds on ``audit.equity_marks`` (each
    reads the step's snapshot, which marks the account's equity); the worker whose task waits is killed (SIGKILL: its
    open transaction never commits), then the lock is released. Dask runs the task again on a worker; the run records
    each decision once, exactly as the run without fan-out did."""
    account = f"dask-kill-{TAG}"
    workers = on_dask.client.run(os.getpid)
    on_dask.client.run(_name_worker_sessions)
    outcome: dict[str, object] = {}
    with engine.connect() as lock:
        lock.execute(text("lock table audit.equity_marks in share mode"))
        blocker = lock.execute(text("select pg_backend_pid()")).scalar_one()
        run = threading.Thread(target=lambda: outcome.update(totals=_decide(account)), daemon=True)
        run.start()
        victim = _worker_waiting_on(engine, blocker, workers, run)
        os.kill(victim, signal.SIGKILL)
        lock.rollback()  # releases the lock
    run.join(timeout=300)
    assert not run.is_alive()
    assert outcome["totals"]["decisions"] == len(SYMBOLS) * STEPS  # type: ignore[index]
    recorded = _decision_records(engine, account)
    assert (
        len(recorded["decisions"]) == len({(d.symbol, d.as_of) for d in recorded["decisions"]}) == len(SYMBOLS) * STEPS
    )
    assert recorded == _decision_records(engine, f"dask-one-{TAG}")
    on_dask.client.wait_for_workers(2)  # the nanny started a new worker process in the killed one's place
    assert victim not in on_dask.client.run(os.getpid).values()


def _shard_records(engine: Engine, account: str) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {
            "decisions": conn.execute(
                text("select symbol, as_of, action, score from audit.decisions where account = :a order by 1, 2"),
                {"a": account},
            ).all(),
            "fills": conn.execute(
                text("select symbol, side, quantity, price, fee, ts from audit.fills where account = :a order by 1, 6"),
                {"a": account},
            ).all(),
        }


def test_a_backtest_sharded_by_symbol_groups_on_two_workers_records_what_one_process_records(
    engine: Engine, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run() -> list[dict[str, list[tuple]]]:
        state = backtest_shards_flow(symbols=SYMBOLS, shards=2, end=T0 + STEPS * HOUR, steps=STEPS, fill_at="close",
                                     return_state=True)  # fmt: skip
        assert state.is_completed(), state
        shards = state.result()["shards"]
        assert [s["symbols"] for s in shards] == [SYMBOLS[:3], SYMBOLS[3:]]
        assert len({s["account"] for s in shards}) == 2  # an independent account per shard
        return [_shard_records(engine, str(s["account"])) for s in shards]

    local = run()
    assert all(len(shard["decisions"]) == 3 * STEPS for shard in local) and any(shard["fills"] for shard in local)
    monkeypatch.setenv("ALPHALOOM_DASK_ADDRESS", cluster.address)
    get_settings.cache_clear()
    assert run() == local
    ran = cluster.client.run(lambda: "flows.backtest_shards" in __import__("sys").modules)
    assert all(ran.values()), ran


def test_backtest_with_shards_runs_a_backtest_per_symbol_group_with_the_audit_mode(
    engine: Engine, cluster: Cluster
) -> None:
    """``alphaloom backtest --shards 2`` (in the flow's process): the ``backtest_shards`` run and a ``backtest`` run per
    symbol group, each with the ``--audit`` mode in its recorded parameters. The command checks that bars are stored:
    a flat bar per decision time is added for this module's decision symbols (after the tests that compare runs)."""
    with engine.begin() as conn:
        conn.execute(
            text(f"""insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id)
                     values (:e, :s, '1h', :t, 100, 100, 100, 100, 1, 'bars-{EXCHANGE}')"""),
            [{"e": EXCHANGE, "s": s, "t": T0 + step * HOUR} for s in SYMBOLS for step in range(STEPS + 1)],
        )
    with engine.connect() as conn:
        before = conn.execute(text("select clock_timestamp()")).scalar_one()
    result = runner.invoke(app, ["backtest", "--shards", "2", "--symbols", ",".join(SYMBOLS), "--end",
                                 (T0 + STEPS * HOUR).isoformat(), "--steps", str(STEPS), "--fill-at", "close",
                                 "--audit", "decisions"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "backtest_shards" in result.output and all(s in result.output for s in SYMBOLS)
    with engine.connect() as conn:
        runs = conn.execute(
            text("""select flow, parameters from audit.runs where flow in ('backtest', 'backtest_shards')
                      and started_at >= :t order by started_at"""),
            {"t": before},
        ).all()  # fmt: skip
    assert [r.flow for r in runs].count("backtest_shards") == 1 and len(runs) == 3, runs
    sharded = next(r for r in runs if r.flow == "backtest_shards").parameters
    assert sharded["shards"] == 2 and sharded["audit"] == "decisions"
    shards = [r.parameters for r in runs if r.flow == "backtest"]
    assert sorted(tuple(p["symbols"]) for p in shards) == [tuple(SYMBOLS[:3]), tuple(SYMBOLS[3:])]
    assert {p["audit"] for p in shards} == {"decisions"}


def test_symbols_are_dealt_into_near_equal_groups_in_order() -> None:
    assert symbol_groups(["a", "b", "c", "d", "e"], 2) == [["a", "b", "c"], ["d", "e"]]
    assert symbol_groups(["a", "b"], 5) == [["a"], ["b"]]
    with pytest.raises(ValueError, match="shards must be >= 1"):
        symbol_groups(["a"], 0)


def _worker_engine() -> tuple[int, int, int]:
    from alphaloom.db.engine import get_engine

    engine = get_engine()
    return os.getpid(), engine.pool.size(), engine.pool._max_overflow  # type: ignore[attr-defined]


def test_each_worker_has_its_own_engine_with_the_bounded_pool_of_its_environment(cluster: Cluster) -> None:
    engines = cluster.client.run(_worker_engine)
    assert len(engines) == 2 and len({pid for pid, _, _ in engines.values()}) == 2
    assert {(size, overflow) for _, size, overflow in engines.values()} == {(2, 1)}
    assert os.getpid() not in {pid for pid, _, _ in engines.values()}


@pytest.mark.parametrize("address", ["http://host:8786", "tcp://", "somewhere"])
def test_a_bad_dask_address_is_one_clear_line(address: str) -> None:
    with pytest.raises(ValidationError, match="ALPHALOOM_DASK_ADDRESS must be unset, 'local' or a scheduler address"):
        Settings(ops=OpsSettings(dask_address=address))


def test_the_dask_address_chooses_the_task_runner() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner

    from alphaloom.dask_runner import DaskTaskRunner

    assert isinstance(configured_task_runner(Settings(ops=OpsSettings(dask_address=None))), ThreadPoolTaskRunner)
    assert isinstance(configured_task_runner(Settings(ops=OpsSettings(dask_address="  "))), ThreadPoolTaskRunner)
    local = configured_task_runner(Settings(ops=OpsSettings(dask_address="local", dask_workers=3)))
    assert isinstance(local, DaskTaskRunner) and local.cluster_kwargs["n_workers"] == 3
    assert local.cluster_kwargs["threads_per_worker"] == 1 and local.cluster_kwargs["processes"] is True
    remote = configured_task_runner(Settings(ops=OpsSettings(dask_address="tcp://scheduler:8786")))
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://scheduler:8786"
