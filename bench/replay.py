"""Benchmark: the replay engine (``flows.backtest``: replay cursor, incremental memory, the live decision stages and
paper execution) on generated hourly bars, on a throwaway database of the server in force.

Prints, each on its own line with its unit, goal and ``met`` or ``MISSED``:
- the team (no LLM, full audit): symbol-steps per second (goal >= 5,000) and the ratio of the last tenth's mean step
  time to the first tenth's (goal <= 1.3: a step must not get slower as history grows; with three chunks or more,
  the tenths of the steps after the first chunk, which alone runs with no chunk's rows written beside it);
- the SMA(10/20) rule with the full audit, in bars per second, against backtesting.py on the same bars measured in the
  same run (goal >= 0.25 of its speed; the ``bench`` extra installs it);
- the same with ``--audit none`` (goals >= 20,000 symbol-steps/s and >= 1.0 of backtesting.py), and the team's
  full-audit speed against the audit rows written one step at a time (no buffer: the engine before bulk writing);
- the team's CPU time per symbol-step, full audit and ``--audit none`` (this process's, the database server's not
  counted; goals <= 200 and <= 50 CPU-us: the speed goals on one core), steadier than seconds on a shared machine.
Steps are timed around ``flows.backtest._step`` (one connection per chunk, as ``replay_chunk``); each chunk's audit
flush (``flush_audit``, COPY, by the replay's background writer while the next chunk's steps run, as ``replay_run``)
is in the run's seconds but not in the step times the tenths compare (Prefect runs a chunk of steps as one task; its
cost is per chunk); the CPU time counts the writer thread's too (this process's). ``--repeat N`` runs the team N times per audit mode, interleaved, then the SMA rule and backtesting.py N times each, and keeps the best of each (a shared machine).
Usage: python bench/replay.py [--symbols 10] [--steps 8760] [--repeat 1] [--profile [--audit none] [--team-only]]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from _throwaway import create_throwaway_database, drop_throwaway_database

EXCHANGE = "benchr"
WARMUP_BARS = 60
END = datetime(2026, 1, 1, tzinfo=UTC)


def _line(name: str, value: float, unit: str, goal: str, met: bool | None) -> None:
    verdict = "not measured" if met is None else "met" if met else "MISSED"
    shown = "n/a" if value != value else f"{value:,.2f}"  # NaN: not measured
    print(f"{name}: {shown} {unit} (goal {goal}) {verdict}")


def make_bars(symbols: int, bars: int, seed: int = 17) -> dict[str, pd.DataFrame]:
    """Hourly OHLCV random walks ending at END (bar open times), one frame per symbol."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(end=END - timedelta(hours=1), periods=bars, freq="h", tz="UTC")
    frames = {}
    for k in range(symbols):
        returns = rng.normal(0, 0.01, bars) + 0.002 * np.sin(np.arange(bars) / (40 + 7 * k))
        close = 100 * (1 + k / 10) * np.exp(np.cumsum(returns))
        open_ = np.concatenate([[close[0]], close[:-1]])
        spread = np.abs(rng.normal(0, 0.004, bars)) * close
        frames[f"S{k:02d}/USDT"] = pd.DataFrame(
            {"Open": open_, "High": np.maximum(open_, close) + spread, "Low": np.minimum(open_, close) - spread,
             "Close": close, "Volume": rng.uniform(100, 1000, bars)},
            index=index,
        )  # fmt: skip
    return frames


def _load(engine, frames: dict[str, pd.DataFrame], run_id: str) -> None:
    from sqlalchemy import text

    buffer = io.StringIO()
    for symbol, f in frames.items():
        for ts, row in zip(f.index, f.itertuples(index=False), strict=True):
            buffer.write(f"{EXCHANGE}\t{symbol}\t1h\t{ts.isoformat()}\t{row.Open:.6f}\t{row.High:.6f}\t"
                         f"{row.Low:.6f}\t{row.Close:.6f}\t{row.Volume:.4f}\t{run_id}\n")  # fmt: skip
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'bench')"), {"r": run_id})
        dbapi = conn.connection.driver_connection
        with (
            dbapi.cursor() as cur,
            cur.copy(
                "copy raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id) from stdin"
            ) as copy,
        ):
            copy.write(buffer.getvalue())


class Timed(NamedTuple):
    """One backtest's seconds (loading the window and the audit flushes included), its per-step times and this
    process's CPU seconds over the same span (steadier than seconds on a shared machine; the database server's CPU
    is not in them)."""

    seconds: float
    per_step: list[float]
    cpu_s: float


def replay(
    symbols: list[str], steps: int, strategy, settings, run_id: str, tag: str, scorer, audit: str | None
) -> Timed:
    """One backtest on a fresh account, timed (``Timed``); ``audit``: the mode of the audit buffer (None: no
    buffer, each step writes its rows)."""
    from agents.audit_buffer import AuditBuffer
    from agents.snapshot import REPLAY_MAX_AGE_S, KnownKillSwitch
    from agents.team import Team
    from alphaloom.db.background import BackgroundWriter
    from alphaloom.db.engine import get_engine
    from alphaloom.garbage import collected_between_chunks
    from execution.accounts.registry import ensure_account
    from flows.backtest import CHUNK_STEPS, Replay, ReplayWindow, _step, flush_audit
    from flows.decide import decision_times

    engine = get_engine()
    account = f"bench-replay-{tag}"
    with engine.begin() as conn:
        ensure_account(conn, account, "paper", settings.base_currency, "paper", settings.starting_cash, run_id)
    times = decision_times(END, steps, settings.timeframe)
    started, cpu_started = time.perf_counter(), time.process_time()
    per_step = []
    # as flows.backtest.replay_run: the collector run after the window's load and between chunks
    with collected_between_chunks() as settle:
        window = ReplayWindow.load(engine, account=account, symbols=symbols, times=times, run_id=run_id,
                                   settings=settings, strategy=strategy, scorer=scorer)  # fmt: skip
        settle()
        # as flows.backtest.replay_run: the writer waited for at the end
        with BackgroundWriter(name="bench-replay-writer") as writer:
            run = Replay(account, symbols, run_id, settings, Team(scorer, None), strategy, "close", times[-1], {},
                         window, None if audit is None else AuditBuffer(audit), writer)  # fmt: skip
            for first in range(0, len(times), CHUNK_STEPS):  # as flows.backtest.replay_chunk: one connection per chunk
                writer.check()
                with engine.connect() as conn:
                    with conn.begin():
                        kill_switch = KnownKillSwitch.read(conn, 0.0 if run.order_store is None else REPLAY_MAX_AGE_S)
                    for as_of in times[first : first + CHUNK_STEPS]:
                        t0 = time.perf_counter()
                        counts = _step(run, as_of, conn, kill_switch)
                        per_step.append(time.perf_counter() - t0)
                        assert counts["decisions"] == len(symbols), counts
                    # in the run's seconds, not in a step's (the last tenth would hold one more flush); written by
                    # the writer while the next chunk's steps run
                    flush_audit(run, conn)
                settle()
    return Timed(time.perf_counter() - started, per_step, time.process_time() - cpu_started)


def with_backtesting_py(frames: dict[str, pd.DataFrame], steps: int, fast: int, slow: int) -> float | None:
    """Seconds backtesting.py takes for SMA(fast/slow) over the same bars (the last ``steps`` of each symbol, after a
    warm-up it also gets); None when it is not installed."""
    os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bars, read when tqdm loads
    try:
        from backtesting import Backtest, Strategy
        from backtesting.lib import crossover
    except ModuleNotFoundError:
        return None

    def sma(values, n):
        return pd.Series(values).rolling(n).mean().to_numpy()

    class SmaCross(Strategy):
        def init(self):
            self.fast = self.I(sma, self.data.Close, fast)
            self.slow = self.I(sma, self.data.Close, slow)

        def next(self):
            if crossover(self.fast, self.slow):
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()

    import warnings

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for frame in frames.values():
            Backtest(frame.iloc[-(steps + WARMUP_BARS) :], SmaCross, cash=1_000_000, commission=0.001).run()
    return time.perf_counter() - started


def main(
    symbols: int,
    steps: int,
    profile: bool = False,
    repeat: int = 1,
    team_only: bool = False,
    audit: str = "full",
    rule: str = "team",
) -> None:
    from agents.params import StrategyParams
    from agents.sentiment import LexiconScorer
    from agents.strategies.sma_cross import SmaCrossParams
    from alphaloom.db.engine import dispose_engines, get_engine, libpq_url
    from alphaloom.features.dbt_runner import run_dbt
    from alphaloom.settings import get_settings
    from flows.backtest import CHUNK_STEPS  # imported (Prefect, the agents) before anything is timed

    frames = make_bars(symbols, steps + WARMUP_BARS)
    chosen = list(frames)
    url = create_throwaway_database()
    saved = {k: os.environ.get(k) for k in ("ALPHALOOM_DATABASE_URL", "ALPHALOOM_EXCHANGE", "ALPHALOOM_LLM_BASE_URL")}
    os.environ.update({"ALPHALOOM_DATABASE_URL": libpq_url(url), "ALPHALOOM_EXCHANGE": EXCHANGE})
    os.environ.pop("ALPHALOOM_LLM_BASE_URL", None)
    get_settings.cache_clear()
    try:
        settings = get_settings().model_copy(update={"risk.max_orders_per_run": 10 * symbols * steps})
        engine = get_engine()  # migrates the throwaway database
        _load(engine, frames, "bench-replay")
        with tempfile.TemporaryDirectory() as tmp:
            run_dbt(["run"], settings=settings, target_path=Path(tmp) / "target",
                    dbt_vars={"benchmark_symbol": chosen[0]})  # fmt: skip
        scorer = LexiconScorer()
        if profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
        profiled = audit if profile else "full"
        params = StrategyParams(rule="sma_cross", sma_cross=SmaCrossParams(10, 20)) if rule == "sma_cross" else None
        team = replay(chosen, steps, params or StrategyParams(), settings, "bench-replay", "team", scorer, profiled)
        if profile:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(70)
            if os.environ.get("BENCH_CALLERS"):
                pstats.Stats(profiler).print_callers(os.environ["BENCH_CALLERS"])
            if team_only:
                print(f"{rule}, {audit} audit (profiled): {symbols * steps / team.seconds:,.1f} symbol-steps/s")
                return
            if audit != "full":  # the figures below time the full audit first
                team = replay(chosen, steps, StrategyParams(), settings, "bench-replay", "team-full", scorer, "full")
        per_step = team.per_step
        team_s, team_cpu = team.seconds, team.cpu_s
        none = replay(chosen, steps, StrategyParams(), settings, "bench-replay", "team-none", scorer, "none")
        none_s, none_cpu = none.seconds, none.cpu_s
        unbuffered_s = replay(chosen, steps, StrategyParams(), settings, "bench-replay", "team-unbuffered", scorer,
                              None).seconds  # fmt: skip
        for k in range(1, repeat):  # interleaved, the best of each: a shared machine's load comes and goes
            team = replay(chosen, steps, StrategyParams(), settings, "bench-replay", f"team{k}", scorer, "full")
            team_s, team_cpu = min(team_s, team.seconds), min(team_cpu, team.cpu_s)
            none = replay(chosen, steps, StrategyParams(), settings, "bench-replay", f"team-none{k}", scorer, "none")
            none_s, none_cpu = min(none_s, none.seconds), min(none_cpu, none.cpu_s)
            unbuffered_s = min(unbuffered_s, replay(chosen, steps, StrategyParams(), settings, "bench-replay",
                                                    f"team-unbuffered{k}", scorer, None).seconds)  # fmt: skip
        sma_rule = StrategyParams(rule="sma_cross", sma_cross=SmaCrossParams(10, 20))
        sma_s = sma_none_s = float("inf")
        for k in range(repeat):  # the best of each, as the team's
            sma_s = min(sma_s, replay(chosen, steps, sma_rule, settings, "bench-replay", f"sma{k}", scorer,
                                      "full").seconds)  # fmt: skip
            sma_none_s = min(sma_none_s, replay(chosen, steps, sma_rule, settings, "bench-replay", f"sma-none{k}",
                                                scorer, "none").seconds)  # fmt: skip
    finally:
        dispose_engines()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        drop_throwaway_database(url)

    work = symbols * steps
    # from the second chunk on when there are a few: the first chunk's steps run with no write beside them, every
    # later chunk's beside the chunk before's (flows.backtest.flush_audit), which would bias the ratio upwards
    steady = per_step[CHUNK_STEPS:] if len(per_step) >= 3 * CHUNK_STEPS else per_step
    tenth = max(1, len(steady) // 10)
    ratio = float(np.mean(steady[-tenth:]) / np.mean(steady[:tenth]))
    print(f"bars: {symbols} symbols x {steps:,} hourly steps = {work:,} symbol-steps (team without LLM)")
    _line("team, full audit", work / team_s, "symbol-steps/s", ">= 5,000", work / team_s >= 5000)
    _line("team, full audit, last tenth / first tenth step time", ratio, "ratio", "<= 1.3", ratio <= 1.3)
    _line("team, --audit none", work / none_s, "symbol-steps/s", ">= 20,000", work / none_s >= 20000)
    # The same goals in this process's CPU time (one core: a step can go no faster than its CPU time allows)
    _line("team, full audit, CPU time", 1e6 * team_cpu / work, "CPU-us per symbol-step", "<= 200",
          1e6 * team_cpu / work <= 200)  # fmt: skip
    _line("team, --audit none, CPU time", 1e6 * none_cpu / work, "CPU-us per symbol-step", "<= 50",
          1e6 * none_cpu / work <= 50)  # fmt: skip
    print(
        f"team, audit rows written step by step (no buffer): {work / unbuffered_s:,.2f} symbol-steps/s; "
        f"full audit in bulk / step by step: {unbuffered_s / team_s:.2f}x, --audit none / step by step: "
        f"{unbuffered_s / none_s:.2f}x"
    )
    theirs = with_backtesting_py(frames, steps, 10, 20)
    for _ in range(1, repeat):  # the best of as many runs as ours had
        again = with_backtesting_py(frames, steps, 10, 20)
        theirs = None if theirs is None or again is None else min(theirs, again)
    ours, ours_none = work / sma_s, work / sma_none_s
    print(f"SMA(10/20) rule, full audit: {ours:,.1f} bars/s; --audit none: {ours_none:,.1f} bars/s")
    if theirs is None:
        print("backtesting.py: not installed (pip install -e '.[bench]'): ratio not measured")
        return
    print(f"backtesting.py SMA(10/20): {work / theirs:,.1f} bars/s")
    _line("SMA(10/20) full audit / backtesting.py", ours / (work / theirs), "ratio", ">= 0.25",
          ours / (work / theirs) >= 0.25)  # fmt: skip
    _line("SMA(10/20) --audit none / backtesting.py", ours_none / (work / theirs), "ratio", ">= 1.0",
          ours_none / (work / theirs) >= 1.0)  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--steps", type=int, default=8760)
    parser.add_argument("--profile", action="store_true", help="print a profile of the team replay (full audit)")
    parser.add_argument("--repeat", type=int, default=1, help="team runs per audit mode, interleaved; the best counts")
    parser.add_argument("--team-only", action="store_true", help="with --profile: only the profiled team replay")
    parser.add_argument("--audit", choices=("full", "decisions", "none"), default="full",
                        help="with --profile: the audit mode of the profiled team replay")  # fmt: skip
    parser.add_argument("--rule", choices=("team", "sma_cross"), default="team",
                        help="with --profile: the profiled replay's rule (sma_cross: SMA(10/20))")  # fmt: skip
    args = parser.parse_args()
    main(args.symbols, args.steps, args.profile, args.repeat, args.team_only, args.audit, args.rule)
