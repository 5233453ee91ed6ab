"""Benchmark: what a team walk-forward costs (``flows.team_walk_forward``: every in-sample trial and every
out-of-sample stretch a replay on ``flows.backtest.replay_run``) on the demo's generated data (its six symbols and
seed, fewer days), on a throwaway database of the server in force, under a temporary Prefect API.

Prints, each on its own line with its unit, goal and ``met`` or ``MISSED``:
- the walk-forward's replay throughput in symbol-steps per second (goal >= 5,000, the replay engine's own goal) and
  its wall time for the whole run (windows x (candidates x in-sample + out-of-sample) steps);
- the ratio of its time per replayed step to a plain backtest's over the same number of steps measured in the same
  run (goal <= 1.25: splitting a walk-forward into many short replays must not cost much more than one long one).
Usage: python bench/team_walkforward.py [--days 30] [--windows 4] [--in-sample 48] [--out-sample 24]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from _throwaway import create_throwaway_database, drop_throwaway_database

EXCHANGE = "benchtwf"
GRID = {"thresholds": "0.2,0.3", "weights": "default", "sizing": "fixed", "exits": "none,2:4"}  # 4 candidates


def _line(name: str, value: float, unit: str, goal: str, met: bool) -> None:
    print(f"{name}: {value:,.2f} {unit} (goal {goal}) {'met' if met else 'MISSED'}")


def main(days: int, windows: int, in_sample: int, out_sample: int) -> None:
    from prefect.testing.utilities import prefect_test_harness

    import flows.team_walk_forward  # noqa: F401 - imported (Prefect, the agents) before anything is timed
    from alphaloom.db.engine import dispose_engines, get_engine, libpq_url
    from alphaloom.ingest.sampledata import generate
    from alphaloom.settings import get_settings
    from flows.backtest import backtest_flow
    from flows.build_features import build_features
    from flows.ingest_news import ingest_news
    from flows.ingest_prices import ingest_prices
    from flows.team_walk_forward import team_walk_forward_flow

    url = create_throwaway_database()
    keys = ("ALPHALOOM_DATABASE_URL", "ALPHALOOM_EXCHANGE", "ALPHALOOM_LLM_BASE_URL", "ALPHALOOM_HOME")
    saved = {k: os.environ.get(k) for k in keys}
    home = tempfile.TemporaryDirectory()
    os.environ.update({"ALPHALOOM_DATABASE_URL": libpq_url(url), "ALPHALOOM_EXCHANGE": EXCHANGE,
                       "ALPHALOOM_HOME": home.name})  # fmt: skip
    os.environ.pop("ALPHALOOM_LLM_BASE_URL", None)
    get_settings.cache_clear()
    try:
        settings = get_settings()
        get_engine()  # migrates the throwaway database
        with prefect_test_harness(server_startup_timeout=120):
            data = generate(Path(home.name) / "data", seed=settings.data_seed, days=days, exchange=EXCHANGE)
            for state in (ingest_prices([str(p) for p in data.price_files], quality=False, return_state=True),
                          ingest_news([str(p) for p in data.news_files], quality=False, return_state=True),
                          build_features(return_state=True)):  # fmt: skip
                assert state.is_completed(), state
            symbols = list(data.symbols)
            bars = in_sample + windows * out_sample
            started = time.perf_counter()
            result = team_walk_forward_flow(symbols=symbols, start=data.end - timedelta(hours=bars), end=data.end,
                                            in_sample=in_sample, out_sample=out_sample, **GRID)  # fmt: skip
            walk_s = time.perf_counter() - started
            candidates = 4
            steps = windows * (candidates * in_sample + out_sample)
            assert len(result["windows"]) == windows, result["windows"]  # type: ignore[arg-type]
            started = time.perf_counter()
            backtest_flow(symbols=symbols, end=data.end, steps=steps)
            plain_s = time.perf_counter() - started
    finally:
        dispose_engines()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        drop_throwaway_database(url)
        home.cleanup()

    work = steps * len(symbols)
    print(f"team walk-forward: {len(symbols)} symbols, {windows} windows x ({candidates} candidates x {in_sample} "
          f"in-sample + {out_sample} out-of-sample steps) = {steps:,} replayed steps = {work:,} symbol-steps "
          f"(team without LLM; in-sample trials with audit none, out-of-sample stretches with the full audit)")  # fmt: skip
    print(f"team walk-forward wall time: {walk_s:,.1f} s ({steps / walk_s:,.1f} steps/s); plain backtest of "
          f"{steps:,} steps: {plain_s:,.1f} s ({steps / plain_s:,.1f} steps/s)")  # fmt: skip
    _line("team walk-forward replay throughput", work / walk_s, "symbol-steps/s", ">= 5,000", work / walk_s >= 5000)
    ratio = walk_s / plain_s
    _line("team walk-forward / plain backtest time per step", ratio, "ratio", "<= 1.25", ratio <= 1.25)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--in-sample", type=int, default=48)
    parser.add_argument("--out-sample", type=int, default=24)
    args = parser.parse_args()
    main(args.days, args.windows, args.in_sample, args.out_sample)
