"""Benchmark: the vectorized fast path vs vectorbt on a moving-average crossover, same data, same run.

End to end for both: signals (two SMAs and their cross) + simulation (fills at the next open with fees and slippage)
+ the portfolio's bar returns. vectorbt (numba) is warmed up on a small input first so its compile time is not counted.
Prints both timings and the ratio vectorbt/ours (goal >= 1.0: ours at least as fast).
vectorbt is in the `bench` extra (`pip install -e '.[bench]'`), outside `make test`.

Usage: python bench/backtest.py [--symbols 100] [--bars 10000] [--fast 20] [--slow 50]
"""

from __future__ import annotations

import argparse
import time
from decimal import Decimal

import numpy as np
import pandas as pd

from alphaloom.backtest.vectorized import run, sma_cross_target


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


def main(symbols: int, bars: int, fast: int, slow: int) -> float:
    open_, close = make_prices(symbols, bars)
    small_open, small_close = make_prices(2, 200)
    with_vectorbt(small_open, small_close, fast, slow)  # numba compile, not timed
    ours_s = min(timed(ours, open_, close, fast, slow) for _ in range(3))
    vbt_s = min(timed(with_vectorbt, open_, close, fast, slow) for _ in range(3))
    print(f"bars: {symbols} symbols x {bars:,} = {symbols * bars:,}; SMA({fast}) x SMA({slow}) crossover")
    print(f"AlphaLoom fast path: {ours_s:7.3f} s  ({symbols * bars / ours_s:12,.0f} bars/s)")
    print(f"vectorbt:            {vbt_s:7.3f} s  ({symbols * bars / vbt_s:12,.0f} bars/s)")
    ratio = vbt_s / ours_s
    print(f"ratio vectorbt/ours: {ratio:.2f} (goal >= 1.0)")
    return ratio


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--bars", type=int, default=10_000)
    parser.add_argument("--fast", type=int, default=20)
    parser.add_argument("--slow", type=int, default=50)
    args = parser.parse_args()
    main(args.symbols, args.bars, args.fast, args.slow)
