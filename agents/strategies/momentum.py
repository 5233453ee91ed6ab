"""Momentum (trend following): the slope of log price over a lookback, scaled by how clean the trend is.

strength = tanh(annualisation-free t-like ratio) * R², where the slope is the least-squares slope of log closes per bar,
normalised by the per-bar volatility of returns, and R² of that fit is the trend quality: a steady climb gives a strong
BUY, the same net move through noise a weak one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from alphaloom.domain import Signal

NAME = "momentum"


@dataclass(frozen=True, slots=True)
class MomentumParams:
    lookback: int = 24
    scale: float = 0.5  # slope in volatility units per bar that maps to tanh(1)


def momentum(closes: Sequence[float], symbol: str, params: MomentumParams = MomentumParams()) -> Signal | None:
    """A signal from the last ``lookback`` closes (oldest first); None with fewer closes or non-positive prices."""
    if len(closes) < params.lookback or params.lookback < 3:
        return None
    prices = np.asarray(closes[-params.lookback :], dtype=float)
    if not np.all(np.isfinite(prices)) or np.any(prices <= 0):
        return None
    log_prices = np.log(prices)
    x = np.arange(len(log_prices), dtype=float)
    slope, intercept = np.polyfit(x, log_prices, 1)
    fitted = slope * x + intercept
    total = float(np.sum((log_prices - log_prices.mean()) ** 2))
    r_squared = 0.0 if total == 0 else max(0.0, 1.0 - float(np.sum((log_prices - fitted) ** 2)) / total)
    vol = float(np.std(np.diff(log_prices), ddof=1))
    if vol == 0 or not math.isfinite(vol):
        strength = 0.0 if slope == 0 else math.copysign(r_squared, slope)
    else:
        strength = math.tanh(slope / vol / params.scale) * r_squared
    strength = max(-1.0, min(1.0, strength))
    return Signal(
        NAME,
        symbol,
        strength,
        f"slope {slope:+.5f}/bar over {params.lookback} bars, {slope / vol if vol else 0:+.2f} vol units, "
        f"R² {r_squared:.2f}",
    )
