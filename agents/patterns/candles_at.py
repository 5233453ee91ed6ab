"""The candlestick patterns of ``agents.patterns.candles`` judged at a few bars, in plain Python. Pure.

What the pattern analyst asks at each decision is a verdict on its last few bars, where each numpy operation of the
detectors costs more to call than the handful of values it computes. Here each detector is the same definition written
for one bar, over the measures (and the averages, so their sums are numpy's to the last bit) of a ``Candles``: the
sign at a bar is the one ``candles.DETECTORS`` give it, bar for bar, up to the bars before a detector's lookback (0);
``tests/agents/patterns/test_patterns_equivalence.py`` holds the two together on two generated years.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from agents.patterns.candles import (
    _BODY_DOJI,
    _BODY_LONG,
    _BODY_SHORT,
    _NEAR,
    _SHADOW_LONG,
    _SHADOW_VERY_SHORT,
    STAR_PENETRATION,
    Candles,
)


class Measures:
    """A ``Candles``' measures and averages as lists of floats (colors as ints), read one bar at a time."""

    def __init__(self, c: Candles) -> None:
        self.open, self.high, self.low, self.close = (a.tolist() for a in (c.open, c.high, c.low, c.close))
        self.body, self.top, self.bottom = c.body.tolist(), c.top.tolist(), c.bottom.tolist()
        self.upper_shadow, self.lower_shadow = c.upper_shadow.tolist(), c.lower_shadow.tolist()
        self.color: list[int] = c.color.tolist()
        self.long_body = c.average("body", _BODY_LONG).tolist()
        self.short_body = c.average("body", _BODY_SHORT).tolist()
        self.long_shadow = c.average("body", _SHADOW_LONG).tolist()
        self.doji_body = c.average("range", _BODY_DOJI).tolist()
        self.very_short_shadow = c.average("range", _SHADOW_VERY_SHORT).tolist()
        self.near = c.average("range", _NEAR).tolist()


def engulfing(m: Measures, i: int) -> int:
    if i < 2:
        return 0
    open_, close, prev_open, prev_close = m.open[i], m.close[i], m.open[i - 1], m.close[i - 1]
    color, prev_color = m.color[i], m.color[i - 1]
    if color == 1 and prev_color == -1:
        up_covers = (close >= prev_open and open_ < prev_close) or (close > prev_open and open_ <= prev_close)
        return 1 if up_covers else 0
    if color == -1 and prev_color == 1:
        down_covers = (open_ >= prev_close and close < prev_open) or (open_ > prev_close and close <= prev_open)
        return -1 if down_covers else 0
    return 0


def doji(m: Measures, i: int) -> int:
    return 1 if i >= 10 and m.body[i] <= m.doji_body[i] else 0


def hammer(m: Measures, i: int) -> int:
    found = (
        i >= 11
        and m.body[i] < m.short_body[i]
        and m.lower_shadow[i] > m.long_shadow[i]
        and m.upper_shadow[i] < m.very_short_shadow[i]
        and m.bottom[i] <= m.low[i - 1] + m.near[i - 1]
    )
    return 1 if found else 0


def shooting_star(m: Measures, i: int) -> int:
    found = (
        i >= 11
        and m.body[i] < m.short_body[i]
        and m.upper_shadow[i] > m.long_shadow[i]
        and m.lower_shadow[i] < m.very_short_shadow[i]
        and m.bottom[i] > m.top[i - 1]
    )
    return -1 if found else 0


def _star(m: Measures, i: int, sign: int, penetration: float) -> int:
    if i < 12:
        return 0
    first_body = m.body[i - 2]
    if sign == 1:
        gap = m.top[i - 1] < m.bottom[i - 2]
        closes_into = m.close[i] > m.close[i - 2] + first_body * penetration
    else:
        gap = m.bottom[i - 1] > m.top[i - 2]
        closes_into = m.close[i] < m.close[i - 2] - first_body * penetration
    found = (
        first_body > m.long_body[i - 2]
        and m.color[i - 2] == -sign
        and m.body[i - 1] <= m.short_body[i - 1]
        and gap
        and m.body[i] > m.short_body[i]
        and m.color[i] == sign
        and closes_into
    )
    return sign if found else 0


def morning_star(m: Measures, i: int) -> int:
    return _star(m, i, 1, STAR_PENETRATION)


def evening_star(m: Measures, i: int) -> int:
    return _star(m, i, -1, STAR_PENETRATION)


def piercing(m: Measures, i: int) -> int:
    if i < 11:
        return 0
    prev_body, close = m.body[i - 1], m.close[i]
    found = (
        m.color[i - 1] == -1
        and prev_body > m.long_body[i - 1]
        and m.color[i] == 1
        and m.body[i] > m.long_body[i]
        and m.open[i] < m.low[i - 1]
        and close < m.open[i - 1]
        and close > m.close[i - 1] + prev_body * 0.5
    )
    return 1 if found else 0


def dark_cloud_cover(m: Measures, i: int) -> int:
    if i < 11:
        return 0
    prev_body, close = m.body[i - 1], m.close[i]
    found = (
        m.color[i - 1] == 1
        and prev_body > m.long_body[i - 1]
        and m.color[i] == -1
        and m.open[i] > m.high[i - 1]
        and close > m.open[i - 1]
        and close < m.close[i - 1] - prev_body * 0.5
    )
    return -1 if found else 0


DETECTORS_AT: Mapping[str, Callable[[Measures, int], int]] = MappingProxyType(
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
"""Every detector of ``candles.DETECTORS`` (same names, same order) for one bar."""


def candle_patterns_at(candles: Candles, bars: Iterable[int]) -> list[tuple[int, str, int]]:
    """``(bar, name, sign)`` of each pattern found at one of ``bars`` (indices into ``candles``), bar by bar in the
    detectors' order."""
    m = Measures(candles)
    return [(i, name, sign) for i in bars for name, detect in DETECTORS_AT.items() if (sign := detect(m, i))]
