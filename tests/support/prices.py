"""Synthetic hourly prices for two assets, A and B (a seeded random walk whose trend flips every 60 bars), as the
vectorized backtest takes them: (open, close) frames indexed by bar time."""

from __future__ import annotations

import numpy as np
import pandas as pd


def prices(bars: int = 300) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(5)
    index = pd.date_range("2025-01-01", periods=bars, freq="h", tz="UTC")
    # Trends that flip every 60 bars, plus noise: different SMA pairs win in different windows.
    drift = np.where((np.arange(bars) // 60) % 2 == 0, 0.004, -0.003)[:, None]
    close = pd.DataFrame(100 * np.exp(np.cumsum(drift + rng.normal(0, 0.006, (bars, 2)), axis=0)), index=index,
                         columns=["A", "B"])  # fmt: skip
    return close.shift(1).fillna(close.iloc[0]), close
