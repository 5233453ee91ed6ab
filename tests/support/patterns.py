"""Price series for the pattern tests: a realistic generated year of hourly bars, and hand-drawn series."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from agents.patterns.analyst import Bar

START = datetime(2024, 1, 1, tzinfo=UTC)


def hourly_year(seed: int = 11, bars: int = 24 * 365) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(open, high, low, close) of a year of hourly bars: log returns with clustered volatility, an open that gaps
    from the last close on some bars, shadows of random length, prices rounded to the cent (so equal prices occur,
    as they do on a real tape)."""
    rng = np.random.default_rng(seed)
    vol = np.empty(bars)
    v = 0.004
    for i in range(bars):
        v = 0.0005 + 0.9 * v + 0.1 * abs(rng.normal(0, 0.006))
        vol[i] = v
    close = 100 * np.exp(np.cumsum(rng.normal(0.00002, vol)))
    prev = np.concatenate([[100.0], close[:-1]])
    open_ = prev + rng.normal(0, 0.3, bars) * vol * prev * (rng.random(bars) < 0.3)
    upper = np.abs(rng.normal(0, 0.5, bars)) * vol * prev * (rng.random(bars) < 0.8)
    lower = np.abs(rng.normal(0, 0.5, bars)) * vol * prev * (rng.random(bars) < 0.8)
    high, low = np.maximum(open_, close) + upper, np.minimum(open_, close) - lower
    return tuple(np.round(a, 2) for a in (open_, high, low, close))  # type: ignore[return-value]


def drawn(closes: Sequence[float], spread: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A hand-drawn close path as bars opening at their close, ``spread`` above and below (shape is in the path)."""
    c = np.array(closes, dtype=np.float64)
    return c.copy(), c + spread, c - spread, c


def as_bars(open_, high, low, close, start: datetime = START) -> list[Bar]:
    return [Bar(start + timedelta(hours=i), float(o), float(h), float(lo), float(c))
            for i, (o, h, lo, c) in enumerate(zip(open_, high, low, close, strict=True))]  # fmt: skip


def ramp(start: float, stop: float, step: float) -> list[float]:
    """``start`` (excluded) to ``stop`` (included) by ``step``."""
    count = round(abs(stop - start) / step)
    sign = 1 if stop > start else -1
    return [start + sign * step * (i + 1) for i in range(count)]


# A double top (k = 3): tops at bars 10 and 20 (110), the trough between at bar 15 (105); the second top is
# confirmed at bar 23 and the close first falls below the neckline (104.8) at bar 26.
DOUBLE_TOP = [100.0 + i for i in range(11)] + ramp(110, 105, 1) + ramp(105, 110, 1) + ramp(110, 95, 1)
# A head and shoulders: shoulders at bars 6 and 26 (106), head at 16 (110), neckline 102.8 (lows at 9 and 23);
# the right shoulder is confirmed at bar 29, the close breaks the neckline at bar 30.
HEAD_AND_SHOULDERS = (
    [100.0 + i for i in range(7)] + ramp(106, 103, 1) + ramp(103, 110, 1) + ramp(110, 103, 1) + ramp(103, 106, 1)
    + ramp(106, 96, 1)
)  # fmt: skip
# A symmetric triangle: tops at 5 (110) and 14 (108), bottoms at 10 (100) and 17 (102); price stays inside until
# the close of bar 22 leaves it upwards.
TRIANGLE = (
    [100.0 + 2 * i for i in range(6)] + ramp(110, 100, 2) + ramp(100, 108, 2) + ramp(108, 102, 2)
    + [103.0, 104.0, 104.5, 104.5, 110.0]
)  # fmt: skip
# A bull flag: flat, a pole from 100 to 110 (bars 5 to 9), a flag of five bars, the close leaving it at bar 15.
BULL_FLAG = [100.0] * 5 + ramp(100, 110, 2) + [109.0, 108.5, 109.0, 108.5, 109.0, 111.0]


def mirrored(closes: Sequence[float], around: float = 210.0) -> list[float]:
    """The path upside down (tops become bottoms)."""
    return [around - c for c in closes]
