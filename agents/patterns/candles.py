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
    n = len(size)
    if n > period:
        # The ``period``-bar windows as one strided view (what ``sliding_window_view`` makes, without its cost),
        # summed along each window: the sums, to the last bit, of a sum over each window alone.
        flat = np.ascontiguousarray(size)
        windows: Floats = np.ndarray((n - period + 1, period), np.float64, flat, 0, (flat.itemsize, flat.itemsize))
        out[period:] = windows[: n - period].sum(axis=1) / period
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
        self._averages: dict[tuple[str, tuple[int, float]], Floats] = {}

    def average(self, measure: str, setting: tuple[int, float]) -> Floats:
        """``factor`` times the mean of the bar measure named (``body`` or ``range``) over the ``period`` bars before
        each bar (NaN where fewer exist); with a period of 0, ``factor`` times the bar's own measure. Each is computed
        once per series."""
        held = self._averages.get((measure, setting))
        if held is not None:
            return held
        period, factor = setting
        size: Floats = getattr(self, measure)
        if period == 0:
            average: Floats = factor * size
        else:
            mean = self._means.get((measure, period))
            if mean is None:
                mean = self._means[(measure, period)] = _mean_before(size, period)
            average = factor * mean
        self._averages[(measure, setting)] = average
        return average

    def __len__(self) -> int:
        return len(self.close)

    def judged(self, lookback: int) -> slice:
        """The bars a detector reporting from bar ``lookback`` on judges (to the last); ``back`` lines up the bars
        before them."""
        return slice(lookback, len(self.close))

    @staticmethod
    def back(values: Floats | Signs, at: slice, bars: int = 1) -> Floats | Signs:
        """``values`` ``bars`` bars before each bar of ``at`` (a ``judged`` span, which starts ``bars`` or more bars
        in)."""
        return values[at.start - bars : at.stop - bars]

    def signs(self, at: slice, *marks: tuple[NDArray[np.bool_], int]) -> Signs:
        """An ``int8`` array of the series' length: each mask's sign where it holds over ``at``, 0 elsewhere."""
        out = np.zeros(len(self.close), dtype=np.int8)
        for mask, sign in marks:
            out[at][mask] = sign
        return out


def engulfing(c: Candles) -> Signs:
    """+1 where an up candle's body engulfs the previous down candle's body (beyond it at one end at least, not short
    of it at the other), -1 for the mirror."""
    at = c.judged(2)
    if at.start >= at.stop:
        return c.signs(at)
    open_, close, color = c.open[at], c.close[at], c.color[at]
    prev_open, prev_close, prev_color = c.back(c.open, at), c.back(c.close, at), c.back(c.color, at)
    up_covers = ((close >= prev_open) & (open_ < prev_close)) | ((close > prev_open) & (open_ <= prev_close))
    down_covers = ((open_ >= prev_close) & (close < prev_open)) | ((open_ > prev_close) & (close <= prev_open))
    bull = (color == 1) & (prev_color == -1) & up_covers
    bear = (color == -1) & (prev_color == 1) & down_covers
    return c.signs(at, (bull, 1), (bear, -1))


def doji(c: Candles) -> Signs:
    """+1 (no direction) where the body is at most a tenth of the average high-low range of the 10 bars before."""
    at = c.judged(10)
    if at.start >= at.stop:
        return c.signs(at)
    return c.signs(at, (c.body[at] <= c.average("range", _BODY_DOJI)[at], 1))


def hammer(c: Candles) -> Signs:
    """+1 where a small body (below the 10-bar average body) sits on a lower shadow longer than the body, with almost
    no upper shadow, its body low near the previous bar's low."""
    at = c.judged(11)
    if at.start >= at.stop:
        return c.signs(at)
    near_prev = c.back(c.average("range", _NEAR), at)
    mask = (
        (c.body[at] < c.average("body", _BODY_SHORT)[at])
        & (c.lower_shadow[at] > c.average("body", _SHADOW_LONG)[at])
        & (c.upper_shadow[at] < c.average("range", _SHADOW_VERY_SHORT)[at])
        & (c.bottom[at] <= c.back(c.low, at) + near_prev)
    )
    return c.signs(at, (mask, 1))


def shooting_star(c: Candles) -> Signs:
    """-1 where a small body gaps up from the previous body, under an upper shadow longer than the body, with almost
    no lower shadow."""
    at = c.judged(11)
    if at.start >= at.stop:
        return c.signs(at)
    mask = (
        (c.body[at] < c.average("body", _BODY_SHORT)[at])
        & (c.upper_shadow[at] > c.average("body", _SHADOW_LONG)[at])
        & (c.lower_shadow[at] < c.average("range", _SHADOW_VERY_SHORT)[at])
        & (c.bottom[at] > c.back(c.top, at))
    )
    return c.signs(at, (mask, -1))


def _star(c: Candles, sign: int, penetration: float) -> Signs:
    """Morning (sign +1) or evening (-1) star ending at each bar: a long candle against ``sign``, a short body gapping
    away from it, then a candle with ``sign``'s color, longer than short, closing well into the first body."""
    at = c.judged(12)
    if at.start >= at.stop:
        return c.signs(at)
    long_avg, short_avg = c.average("body", _BODY_LONG), c.average("body", _BODY_SHORT)
    first_body, first_color, first_close = c.back(c.body, at, 2), c.back(c.color, at, 2), c.back(c.close, at, 2)
    first_long = first_body > c.back(long_avg, at, 2)
    second_short = c.back(c.body, at) <= c.back(short_avg, at)
    close = c.close[at]
    if sign == 1:
        gap = c.back(c.top, at) < c.back(c.bottom, at, 2)
        closes_into = close > first_close + first_body * penetration
    else:
        gap = c.back(c.bottom, at) > c.back(c.top, at, 2)
        closes_into = close < first_close - first_body * penetration
    mask = (
        first_long
        & (first_color == -sign)
        & second_short
        & gap
        & (c.body[at] > short_avg[at])
        & (c.color[at] == sign)
        & closes_into
    )
    return c.signs(at, (mask, sign))


def piercing(c: Candles) -> Signs:
    """+1 where an up candle of long body opens below the low of a long down candle and closes above its body's
    middle (but below its open)."""
    at = c.judged(11)
    if at.start >= at.stop:
        return c.signs(at)
    long_avg = c.average("body", _BODY_LONG)
    prev_body, close = c.back(c.body, at), c.close[at]
    mask = (
        (c.back(c.color, at) == -1)
        & (prev_body > c.back(long_avg, at))
        & (c.color[at] == 1)
        & (c.body[at] > long_avg[at])
        & (c.open[at] < c.back(c.low, at))
        & (close < c.back(c.open, at))
        & (close > c.back(c.close, at) + prev_body * 0.5)
    )
    return c.signs(at, (mask, 1))


def dark_cloud_cover(c: Candles, penetration: float = 0.5) -> Signs:
    """-1 where a down candle opens above the high of a long up candle and closes below its body's middle (but above
    its open)."""
    at = c.judged(11)
    if at.start >= at.stop:
        return c.signs(at)
    prev_body, close = c.back(c.body, at), c.close[at]
    mask = (
        (c.back(c.color, at) == 1)
        & (prev_body > c.back(c.average("body", _BODY_LONG), at))
        & (c.color[at] == -1)
        & (c.open[at] > c.back(c.high, at))
        & (close > c.back(c.open, at))
        & (close < c.back(c.close, at) - prev_body * penetration)
    )
    return c.signs(at, (mask, -1))


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
