"""Candlestick patterns over OHLC arrays, vectorized and point in time. Pure: arrays in, arrays out.

A pattern ending at bar ``i`` uses bars ``<= i`` only, so it is known at bar ``i``'s close (ARCHITECTURE §4):
truncating the series after ``i`` changes nothing at or before ``i``.

The definitions follow TA-Lib's (``talib.CDL*`` with its default candle settings), which the tests use as the oracle:
"long", "short", "very short" and "near" are measured against the average size of the bars *before* the one judged
(a 10-bar average of real bodies or ranges, a 5-bar one for "near"), and a pattern is reported from the bar where TA-Lib
starts reporting it (its lookback). Where we differ, on purpose:

- ``engulfing``: TA-Lib grades a body that matches the first at one end ``±80`` and a strict engulfing ``±100``; both
  are one engulfing here (``±1``): in a market that trades around the clock a bar opens where the last one closed, so
  the matched end is the usual case, not a weaker pattern.
- ``hammer`` / ``shooting_star`` are the shapes alone, as in TA-Lib: whether they come after a decline (or a rise) is
  the analyst's business (``agents.patterns.analyst``), not the detector's.

Every detector returns an ``int8`` array of the series' length: ``+1`` bullish, ``-1`` bearish, ``0`` none (a doji,
which is indecision, is ``+1`` where found and carries no direction: see ``CANDLE_DIRECTION``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
Signs = NDArray[np.int8]

# TA-Lib's default candle settings: (average period in bars, factor).
_BODY_LONG = (10, 1.0)
_BODY_SHORT = (10, 1.0)
_BODY_DOJI = (10, 0.1)  # of the high-low range
_SHADOW_LONG = (0, 1.0)  # of the bar's own real body
_SHADOW_VERY_SHORT = (10, 0.1)  # of the high-low range
_NEAR = (5, 0.2)  # of the high-low range
STAR_PENETRATION = 0.3
"""How far into the first candle's body the third candle of a morning/evening star must close (TA-Lib's default)."""


def _mean_before(size: Floats, period: int) -> Floats:
    """The mean of ``size`` over the ``period`` bars before each bar (NaN where fewer exist)."""
    out = np.full(size.shape, np.nan)
    if len(size) > period:
        sums = np.lib.stride_tricks.sliding_window_view(size, period).sum(axis=1)
        out[period:] = sums[: len(size) - period] / period
    return out


def _shifted(values: Floats, bars: int) -> Floats:
    """``values`` moved ``bars`` later: position ``i`` holds ``values[i - bars]`` (NaN before)."""
    out = np.full(values.shape, np.nan)
    if bars < len(values):
        out[bars:] = values[: len(values) - bars]
    return out


class Candles:
    """The bar measures the detectors share, from ``open``, ``high``, ``low``, ``close`` of equal length."""

    def __init__(self, open_: Floats, high: Floats, low: Floats, close: Floats) -> None:
        self.open, self.high, self.low, self.close = (
            np.asarray(a, dtype=np.float64) for a in (open_, high, low, close)
        )
        if not len(self.open) == len(self.high) == len(self.low) == len(self.close):
            raise ValueError("open, high, low and close must have the same length")
        self.body = np.abs(self.close - self.open)
        self.range = self.high - self.low
        self.top = np.maximum(self.open, self.close)
        self.bottom = np.minimum(self.open, self.close)
        self.upper_shadow = self.high - self.top
        self.lower_shadow = self.bottom - self.low
        self.color = np.where(self.close >= self.open, 1, -1).astype(np.int8)  # white (up) +1, black (down) -1
        self._means: dict[tuple[str, int], Floats] = {}
        self._shifts: dict[tuple[int, int], tuple[Floats | Signs, Floats]] = {}

    def average(self, measure: str, setting: tuple[int, float]) -> Floats:
        """``factor`` times the mean of the bar measure named (``body`` or ``range``) over the ``period`` bars before
        each bar (NaN where fewer exist); with a period of 0, ``factor`` times the bar's own measure. Each mean is
        computed once per series."""
        period, factor = setting
        size: Floats = getattr(self, measure)
        if period == 0:
            return factor * size
        mean = self._means.get((measure, period))
        if mean is None:
            mean = self._means[(measure, period)] = _mean_before(size, period)
        return factor * mean

    def __len__(self) -> int:
        return len(self.close)

    def prev(self, values: Floats | Signs, bars: int = 1) -> Floats:
        """``values`` (a measure of these candles) ``bars`` bars earlier: position ``i`` holds ``values[i - bars]``
        (NaN before the first); each shift of one of the candles' own arrays is made once."""
        key = (id(values), bars)
        held = self._shifts.get(key)
        if held is not None and held[0] is values:
            return held[1]
        shifted = _shifted(np.asarray(values, dtype=np.float64), bars)
        self._shifts[key] = (values, shifted)
        return shifted


def _from(mask: NDArray[np.bool_], lookback: int, sign: int = 1) -> Signs:
    out = np.where(mask, sign, 0).astype(np.int8)
    out[:lookback] = 0
    return out


def engulfing(c: Candles) -> Signs:
    """+1 where an up candle's body engulfs the previous down candle's body (beyond it at one end at least, not short
    of it at the other), -1 for the mirror."""
    prev_open, prev_close, prev_color = c.prev(c.open), c.prev(c.close), c.prev(c.color)
    up_covers = ((c.close >= prev_open) & (c.open < prev_close)) | ((c.close > prev_open) & (c.open <= prev_close))
    down_covers = ((c.open >= prev_close) & (c.close < prev_open)) | ((c.open > prev_close) & (c.close <= prev_open))
    bull = (c.color == 1) & (prev_color == -1) & up_covers
    bear = (c.color == -1) & (prev_color == 1) & down_covers
    return _from(bull, 2, 1) + _from(bear, 2, -1)


def doji(c: Candles) -> Signs:
    """+1 (no direction) where the body is at most a tenth of the average high-low range of the 10 bars before."""
    return _from(c.body <= c.average("range", _BODY_DOJI), 10)


def hammer(c: Candles) -> Signs:
    """+1 where a small body (below the 10-bar average body) sits on a lower shadow longer than the body, with almost
    no upper shadow, its body low near the previous bar's low."""
    near_prev = c.prev(c.average("range", _NEAR))
    mask = (
        (c.body < c.average("body", _BODY_SHORT))
        & (c.lower_shadow > c.average("body", _SHADOW_LONG))
        & (c.upper_shadow < c.average("range", _SHADOW_VERY_SHORT))
        & (c.bottom <= c.prev(c.low) + near_prev)
    )
    return _from(mask, 11)


def shooting_star(c: Candles) -> Signs:
    """-1 where a small body gaps up from the previous body, under an upper shadow longer than the body, with almost
    no lower shadow."""
    mask = (
        (c.body < c.average("body", _BODY_SHORT))
        & (c.upper_shadow > c.average("body", _SHADOW_LONG))
        & (c.lower_shadow < c.average("range", _SHADOW_VERY_SHORT))
        & (c.bottom > c.prev(c.top))
    )
    return _from(mask, 11, -1)


def _star(c: Candles, sign: int, penetration: float) -> Signs:
    """Morning (sign +1) or evening (-1) star ending at each bar: a long candle against ``sign``, a short body gapping
    away from it, then a candle with ``sign``'s color, longer than short, closing well into the first body."""
    long_avg, short_avg = c.average("body", _BODY_LONG), c.average("body", _BODY_SHORT)
    first_body, first_color, first_close = c.prev(c.body, 2), c.prev(c.color, 2), c.prev(c.close, 2)
    first_long = first_body > c.prev(long_avg, 2)
    second_short = c.prev(c.body) <= c.prev(short_avg)
    if sign == 1:
        gap = c.prev(c.top) < c.prev(c.bottom, 2)
        closes_into = c.close > first_close + first_body * penetration
    else:
        gap = c.prev(c.bottom) > c.prev(c.top, 2)
        closes_into = c.close < first_close - first_body * penetration
    mask = (
        first_long
        & (first_color == -sign)
        & second_short
        & gap
        & (c.body > short_avg)
        & (c.color == sign)
        & closes_into
    )
    return _from(mask, 12, sign)


def piercing(c: Candles) -> Signs:
    """+1 where an up candle of long body opens below the low of a long down candle and closes above its body's
    middle (but below its open)."""
    long_avg = c.average("body", _BODY_LONG)
    prev_body = c.prev(c.body)
    mask = (
        (c.prev(c.color) == -1)
        & (prev_body > c.prev(long_avg))
        & (c.color == 1)
        & (c.body > long_avg)
        & (c.open < c.prev(c.low))
        & (c.close < c.prev(c.open))
        & (c.close > c.prev(c.close) + prev_body * 0.5)
    )
    return _from(mask, 11)


def dark_cloud_cover(c: Candles, penetration: float = 0.5) -> Signs:
    """-1 where a down candle opens above the high of a long up candle and closes below its body's middle (but above
    its open)."""
    prev_body = c.prev(c.body)
    mask = (
        (c.prev(c.color) == 1)
        & (prev_body > c.prev(c.average("body", _BODY_LONG)))
        & (c.color == -1)
        & (c.open > c.prev(c.high))
        & (c.close > c.prev(c.open))
        & (c.close < c.prev(c.close) - prev_body * penetration)
    )
    return _from(mask, 11, -1)


def morning_star(c: Candles, penetration: float = STAR_PENETRATION) -> Signs:
    """+1 at the third bar of a morning star (bullish reversal)."""
    return _star(c, 1, penetration)


def evening_star(c: Candles, penetration: float = STAR_PENETRATION) -> Signs:
    """-1 at the third bar of an evening star (bearish reversal)."""
    return _star(c, -1, penetration)


DETECTORS: Mapping[str, Callable[[Candles], Signs]] = MappingProxyType(
    {
        "engulfing": engulfing,
        "hammer": hammer,
        "shooting_star": shooting_star,
        "doji": doji,
        "morning_star": morning_star,
        "evening_star": evening_star,
        "piercing": piercing,
        "dark_cloud_cover": dark_cloud_cover,
    }
)
"""Every candlestick detector by pattern name."""

CANDLE_DIRECTION: Mapping[str, int | None] = MappingProxyType(
    {
        "engulfing": None,
        "hammer": 1,
        "shooting_star": -1,
        "doji": 0,
        "morning_star": 1,
        "evening_star": -1,
        "piercing": 1,
        "dark_cloud_cover": -1,
    }
)
"""The direction a pattern points to: +1 bullish, -1 bearish, 0 none (doji), None: the detector's sign says."""


def candle_patterns(candles: Candles) -> dict[str, Signs]:
    """Every detector's array over ``candles``."""
    return {name: detect(candles) for name, detect in DETECTORS.items()}
