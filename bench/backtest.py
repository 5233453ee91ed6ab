"""Benchmark: the vectorized fast path vs vectorbt on a moving-average crossover, same data, same run.

End to end for both: signals (two SMAs and their cross) + simulation (fills at the next open with fees and slippage)
+ the portfolio's bar returns. vectorbt (numba) is warmed up on a small input first so its compile time is not counted.
Prints both timings and the ratio vectorbt/ours (goal >= 1.0: ours at least as fast).
vectorbt is in the `bench` extra (`pip install -e '.[bench]'`), outside `make test`; without it the ratio is skipped.

Then the step path, in the same run: the live decision code replayed step by step (``flows.backtest.replay_step``:
decide with the whole team but no LLM, risk, paper execution at the next open, all recorded) over generated sample
bars on a throwaway database of the server in force; dbt builds the features first (not timed). Prints its bars per
second (symbols x steps / replay seconds).

Usage: python bench/backtest.py [--symbols 100] [--bars 10000] [--fast 20] [--slow 50] [--step-symbols 2]
       [--step-bars 48]
"""

from __future__ import annotations

import argparse
import time
from decimal import Decimal

import numpy as np
import pandas as pd
from _throwaway import create_throwaway_database, drop_throwaway_database

from alphaloom.backtest.vectorized import run, sma_cross_target
from alphaloom.domain import AccountId


def make_prices(symbols: int, bars: int, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2020-01-01", periods=bars, freq="h", tz="UTC")
    log_returns = rng.normal(0.0, 0.01, (bars, symbols))
    close = pd.DataFrame(100 * np.exp(np.cumsum(log_returns, axis=0)), index=index,
                         columns=[f"S{i:03d}/USD" for i in range(symbols)])  # fmt: skip
    open_ = close.shift(1).fillna(close.iloc[0]) * (1 + rng.normal(0, 0.001, (bars, symbols)))
    return open_, close


def ours(open_: pd.DataFrame, close: pd.DataFrame, fast: int, slow: int) -> pd.Series:
    target = sma_cross_target(close, fast, slow)
    result = run(open_, close, target, initial_cash=1_000_000.0, order_notional=Decimal(5000), fee_bps=10,
                 slippage_bps=5, quantity_steps=dict.fromkeys(close.columns, Decimal("0.000001")))  # fmt: skip
    return result.equity.pct_change()


def with_vectorbt(open_: pd.DataFrame, close: pd.DataFrame, fast: int, slow: int) -> pd.Series:
    import vectorbt as vbt

    fast_ma = vbt.MA.run(close, fast, short_name="fast")
    slow_ma = vbt.MA.run(close, slow, short_name="slow")
    entries = fast_ma.ma_crossed_above(slow_ma)
    exits = fast_ma.ma_crossed_below(slow_ma)
    portfolio = vbt.Portfolio.from_signals(
        close, entries.to_numpy(), exits.to_numpy(), price=open_.shift(-1).to_numpy(), size=5000.0,
        size_type="value", fees=0.001, slippage=0.0005, init_cash=1_000_000.0, cash_sharing=True, group_by=True,
        freq="1h",
    )  # fmt: skip
    return portfolio.returns()


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def step_path(symbols: int, steps: int) -> float:
    """Bars per second of the step path over ``steps`` bar closes of ``symbols`` generated crypto series."""
    import os
    import tempfile
    from pathlib import Path

    from sqlalchemy import text

    from agents.team import StrategyParams, Team, build_team
    from alphaloom.db.engine import dispose_engines, get_engine, libpq_url
    from alphaloom.features.dbt_runner import run_dbt
    from alphaloom.ingest.prices import merge_bars, read_price_file
    from alphaloom.ingest.sampledata import generate
    from alphaloom.settings import get_settings
    from execution.accounts.registry import ensure_account
    from flows.backtest import Replay, replay_step
    from flows.decide import decision_times

    url = create_throwaway_database()
    saved = {k: os.environ.get(k) for k in ("ALPHALOOM_DATABASE_URL", "ALPHALOOM_EXCHANGE", "ALPHALOOM_LLM_BASE_URL")}
    os.environ["ALPHALOOM_DATABASE_URL"] = libpq_url(url)
    os.environ["ALPHALOOM_EXCHANGE"] = "benchx"
    os.environ.pop("ALPHALOOM_LLM_BASE_URL", None)
    get_settings.cache_clear()
    try:
        settings = get_settings().model_copy(update={"risk.max_orders_per_run": 10 * symbols * steps})
        engine = get_engine()  # migrates the throwaway database
        run_id, account = "bench-step-path", AccountId("bench-step")
        with tempfile.TemporaryDirectory() as tmp:
            sample = generate(Path(tmp), seed=3, days=max(10, steps // 24 + 10), exchange="benchx")
            chosen = [s for s in sample.symbols if s.endswith("/USDT")][:symbols]
            with engine.begin() as conn:
                conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'bench')"), {"r": run_id})
                for path, symbol in zip(sample.price_files, sample.symbols, strict=True):
                    if symbol in chosen:
                        merge_bars(conn, read_price_file(path), run_id)
                ensure_account(conn, account, "paper", settings.base_currency, "paper", settings.starting_cash,
                               run_id)  # fmt: skip
            run_dbt(["run"], settings=settings, target_path=Path(tmp) / "target",
                    dbt_vars={"benchmark_symbol": chosen[0]})  # fmt: skip
        times = decision_times(sample.end, steps, settings.timeframe)
        with engine.connect() as conn:
            opens = {(r.symbol, r.ts): r.open for r in conn.execute(
                text("select symbol, ts, open from raw.ohlcv where ts >= :s and ts < :e"),
                {"s": times[0], "e": times[-1]})}  # fmt: skip
        team = build_team(settings)
        replay = Replay(account, chosen, run_id, settings, Team(scorer=team.scorer, llm_agent=None),
                        StrategyParams(), "next_open", times[-1], opens)  # fmt: skip
        started = time.perf_counter()
        decided = sum(replay_step.fn(replay, as_of)["decisions"] for as_of in times)
        seconds = time.perf_counter() - started
        assert decided == symbols * steps, (decided, symbols * steps)
    finally:
        dispose_engines()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        drop_throwaway_database(url)
    rate = symbols * steps / seconds
    print(f"step path (live decide + risk + paper execution, no LLM): {symbols} symbols x {steps} steps in "
          f"{seconds:.2f} s = {rate:,.1f} bars/s")  # fmt: skip
    return rate


def main(symbols: int, bars: int, fast: int, slow: int, step_symbols: int = 2, step_bars: int = 48) -> float:
    open_, close = make_prices(symbols, bars)
    ours_s = min(timed(ours, open_, close, fast, slow) for _ in range(3))
    print(f"bars: {symbols} symbols x {bars:,} = {symbols * bars:,}; SMA({fast}) x SMA({slow}) crossover")
    print(f"AlphaLoom fast path: {ours_s:7.3f} s  ({symbols * bars / ours_s:12,.0f} bars/s)")
    ratio = float("nan")
    try:
        small_open, small_close = make_prices(2, 200)
        with_vectorbt(small_open, small_close, fast, slow)  # numba compile, not timed
    except ModuleNotFoundError:
        print("vectorbt: not installed (pip install -e '.[bench]'): ratio not measured")
    else:
        vbt_s = min(timed(with_vectorbt, open_, close, fast, slow) for _ in range(3))
        print(f"vectorbt:            {vbt_s:7.3f} s  ({symbols * bars / vbt_s:12,.0f} bars/s)")
        ratio = vbt_s / ours_s
        print(f"ratio vectorbt/ours: {ratio:.2f} (goal >= 1.0)")
    if step_bars > 0:
        step_path(step_symbols, step_bars)
    return ratio


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--bars", type=int, default=10_000)
    parser.add_argument("--fast", type=int, default=20)
    parser.add_argument("--slow", type=int, default=50)
    parser.add_argument("--step-symbols", type=int, default=2, help="step path: crypto symbols (at most 3)")
    parser.add_argument("--step-bars", type=int, default=48, help="step path: bar closes replayed (0: skip)")
    args = parser.parse_args()
    main(args.symbols, args.bars, args.fast, args.slow, args.step_symbols, args.step_bars)
