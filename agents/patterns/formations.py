"""Swing formations, each dated at the bar that completes it. Pure.

Built on the confirmed swings of ``agents.patterns.swings``: a formation ending at bar ``t`` uses only bars ``<= t``
and swings confirmed by ``t`` (a level such as a resistance must be confirmed before the bar that breaks it), so
truncating the series after ``t`` changes nothing at or before ``t`` (ARCHITECTURE §4). Each is an event at the bar
it completes (``at``), with the bar its first pivot was (``start``) and the price that completed it (``level``).

- ``double_top`` / ``double_bottom``: two consecutive swing highs (lows) within ``tolerance`` of each other, the lowest
  low (highest high) between them at least ``min_depth`` away; complete at the first close beyond that neckline, no
  earlier than the second swing's confirmation and at most ``max_wait`` bars after it; void if price goes beyond the
  tops (bottoms) by more than ``tolerance`` first.
- ``head_and_shoulders`` / ``inverse_head_and_shoulders``: three consecutive swing highs (lows), the middle one beyond
  both others by ``head_margin``, the shoulders within ``shoulder_tolerance``; the neckline joins the lowest lows
  (highest highs) between them; complete at the first close beyond the neckline (same waiting and voiding rules,
  the head's price voids).
- ``resistance_break`` / ``support_break``: a close beyond the newest swing high (low) confirmed before the bar, the
  bar before still not beyond it.
- ``triangle_breakout_up`` / ``triangle_breakout_down``: the two newest swing highs not rising and the two newest
  swing lows not falling, converging (at least one side moving by more than ``tolerance``); complete at the first
  close beyond the upper (lower) line, within ``max_wait`` bars of the newest swing's confirmation.
- ``bull_flag`` / ``bear_flag``: a pole (``pole_bars`` closes rising, falling, by ``pole_min``) then a flag of
  ``flag_bars`` bars retracing at most ``flag_max_retrace`` of the pole and not going beyond the pole's last bar (by
  more than ``tolerance``); complete at the first close beyond the flag.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from agents.patterns.swings import Swing, swings_by_kind

Floats = NDArray[np.float64]

FORMATION_DIRECTION: Mapping[str, int] = MappingProxyType(
    {
        "double_top": -1,
        "double_bottom": 1,
        "head_and_shoulders": -1,
        "inverse_head_and_shoulders": 1,
        "resistance_break": 1,
        "support_break": -1,
        "triangle_breakout_up": 1,
        "triangle_breakout_down": -1,
        "bull_flag": 1,
        "bear_flag": -1,
    }
)
"""The direction each formation points to: +1 bullish, -1 bearish."""


@dataclass(frozen=True, slots=True)
class FormationParams:
    """How formations are recognised; part of the decision's config version (through the pattern analyst's)."""

    swing_bars: int = 3
    tolerance: float = 0.01
    min_depth: float = 0.01
    max_wait: int = 20
    head_margin: float = 0.01
    shoulder_tolerance: float = 0.02
    pole_bars: int = 5
    pole_min: float = 0.03
    flag_bars: int = 5
    flag_max_retrace: float = 0.5

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Formation:
    """One completed formation: its ``name``, ``direction`` (+1/-1), the bar it completed (``at``), the bar of its
    first pivot (``start``) and the price level whose crossing completed it."""

    name: str
    direction: int
    at: int
    start: int
    level: float


_Swings = tuple[Sequence[Swing], Sequence[Swing]]
"""The swing highs and the swing lows, each in the order of their confirmation."""


class _Bars(NamedTuple):
    """The series as arrays (for spans) and as lists of floats (read one bar at a time, the same values)."""

    high: Floats
    low: Floats
    close: Floats
    high_at: list[float]
    low_at: list[float]
    close_at: list[float]


def _line(x1: int, y1: float, x2: int, y2: float, x: int) -> float:
    return y1 + (y2 - y1) * (x - x1) / (x2 - x1)


def _trough(values: Floats, first: int, last: int, sign: int) -> tuple[int, float]:
    """The bar and value of the lowest (``sign`` +1: tops, so the lows between) or highest (-1) value strictly between
    bars ``first`` and ``last``."""
    span = values[first + 1 : last]
    i = int(span.argmin()) if sign == 1 else int(span.argmax())
    return first + 1 + i, float(span[i])


def _first_close_beyond(
    bars: _Bars, level_at: object, start: int, stop: int, sign: int, void_price: float
) -> tuple[int, float] | None:
    """The first bar in ``[start, stop]`` whose close is beyond the level (below it for ``sign`` +1, a top; above it
    for -1) and the level there, unless an extreme beyond ``void_price`` (above for a top, below for a bottom) comes
    first (from the bar after the last pivot, passed as ``start``'s search: the caller checks the pivot span)."""
    close, high, low = bars.close_at, bars.high_at, bars.low_at
    for t in range(start, min(stop, len(close) - 1) + 1):
        level = level_at(t)  # type: ignore[operator]
        if (sign == 1 and close[t] < level) or (sign == -1 and close[t] > level):
            return t, float(level)
        if (sign == 1 and high[t] > void_price) or (sign == -1 and low[t] < void_price):
            return None
    return None


def _voided_between(bars: _Bars, first: int, last: int, sign: int, void_price: float) -> bool:
    """Whether price went beyond ``void_price`` in bars ``(first, last)`` (exclusive: the pivot bars themselves are
    the pattern's own extremes)."""
    if last <= first + 1:
        return False
    if sign == 1:
        return any(high > void_price for high in bars.high_at[first + 1 : last])
    return any(low < void_price for low in bars.low_at[first + 1 : last])


def _doubles(bars: _Bars, found: _Swings, p: FormationParams, since: int) -> list[Formation]:
    out: list[Formation] = []
    for points, sign, name in ((found[0], 1, "double_top"), (found[1], -1, "double_bottom")):
        for first, second in pairwise(points):
            if second.pivot - first.pivot < 2 or second.confirmed + p.max_wait < since:
                continue  # too close to be two tops, or completed (or void) before ``since``
            extreme = max(first.price, second.price) if sign == 1 else min(first.price, second.price)
            if abs(first.price - second.price) > p.tolerance * abs(extreme):
                continue
            _, neck = _trough(bars.low if sign == 1 else bars.high, first.pivot, second.pivot, sign)
            if sign * (extreme - neck) < p.min_depth * abs(extreme):
                continue
            void = extreme * (1 + sign * p.tolerance)
            if _voided_between(bars, second.pivot, second.confirmed, sign, void):
                continue
            hit = _first_close_beyond(bars, lambda t, n=neck: n, second.confirmed, second.confirmed + p.max_wait,
                                      sign, void)  # fmt: skip
            if hit is not None:
                out.append(Formation(name, -sign, hit[0], first.pivot, hit[1]))
    return out


def _head_and_shoulders(bars: _Bars, found: _Swings, p: FormationParams, since: int) -> list[Formation]:
    out: list[Formation] = []
    for points, sign, name in ((found[0], 1, "head_and_shoulders"), (found[1], -1, "inverse_head_and_shoulders")):
        for left, head, right in zip(points, points[1:], points[2:], strict=False):
            if head.pivot - left.pivot < 2 or right.pivot - head.pivot < 2 or right.confirmed + p.max_wait < since:
                continue
            shoulder = max(left.price, right.price) if sign == 1 else min(left.price, right.price)
            if sign * (head.price - shoulder) <= p.head_margin * abs(head.price):
                continue  # the head does not stand out
            if abs(left.price - right.price) > p.shoulder_tolerance * abs(head.price):
                continue
            source = bars.low if sign == 1 else bars.high
            x1, y1 = _trough(source, left.pivot, head.pivot, sign)
            x2, y2 = _trough(source, head.pivot, right.pivot, sign)
            if _voided_between(bars, right.pivot, right.confirmed, sign, head.price):
                continue
            hit = _first_close_beyond(bars, lambda t, a=(x1, y1, x2, y2): _line(a[0], a[1], a[2], a[3], t),
                                      right.confirmed, right.confirmed + p.max_wait, sign, head.price)  # fmt: skip
            if hit is not None:
                out.append(Formation(name, -sign, hit[0], left.pivot, hit[1]))
    return out


def _breaks_and_triangles(bars: _Bars, found: _Swings, p: FormationParams, since: int) -> list[Formation]:
    """Support/resistance breaks and triangle breakouts at each bar from ``since``, from the swings confirmed before
    the bar."""
    out: list[Formation] = []
    every_high, every_low = found  # each ordered by confirmation
    high_known = [s.confirmed for s in every_high]
    low_known = [s.confirmed for s in every_low]
    close = bars.close_at
    for t in range(max(1, since), len(close)):
        known_highs, known_lows = bisect_right(high_known, t - 1), bisect_right(low_known, t - 1)
        highs = every_high[max(0, known_highs - 2) : known_highs]
        lows = every_low[max(0, known_lows - 2) : known_lows]
        if highs and close[t] > highs[-1].price >= close[t - 1]:
            out.append(Formation("resistance_break", 1, t, highs[-1].pivot, highs[-1].price))
        if lows and close[t] < lows[-1].price <= close[t - 1]:
            out.append(Formation("support_break", -1, t, lows[-1].pivot, lows[-1].price))
        if len(highs) >= 2 and len(lows) >= 2:
            out.extend(_triangle_at(bars, t, highs[-2], highs[-1], lows[-2], lows[-1], p))
    return out


def _triangle_at(
    bars: _Bars, t: int, a1: Swing, a2: Swing, b1: Swing, b2: Swing, p: FormationParams
) -> list[Formation]:
    tol = p.tolerance
    if a2.price > a1.price * (1 + tol) or b2.price < b1.price * (1 - tol):
        return []  # a side diverging: no triangle
    if a2.price >= a1.price * (1 - tol) and b2.price <= b1.price * (1 + tol):
        return []  # both sides flat: a range, not a triangle
    if t - max(a2.confirmed, b2.confirmed) > p.max_wait:
        return []
    upper = (_line(a1.pivot, a1.price, a2.pivot, a2.price, t), _line(a1.pivot, a1.price, a2.pivot, a2.price, t - 1))
    lower = (_line(b1.pivot, b1.price, b2.pivot, b2.price, t), _line(b1.pivot, b1.price, b2.pivot, b2.price, t - 1))
    if upper[0] <= lower[0]:
        return []  # the lines have met: the triangle is over
    start = min(a1.pivot, b1.pivot)
    close = bars.close_at
    if close[t] > upper[0] and close[t - 1] <= upper[1]:
        return [Formation("triangle_breakout_up", 1, t, start, upper[0])]
    if close[t] < lower[0] and close[t - 1] >= lower[1]:
        return [Formation("triangle_breakout_down", -1, t, start, lower[0])]
    return []


def _flags(bars: _Bars, p: FormationParams, since: int) -> list[Formation]:
    out: list[Formation] = []
    close, high, low = bars.close_at, bars.high_at, bars.low_at
    for t in range(max(p.pole_bars + p.flag_bars + 1, since), len(close)):
        pole_end = t - p.flag_bars - 1
        pole_start = pole_end - p.pole_bars
        move = close[pole_end] - close[pole_start]
        if close[pole_start] <= 0 or abs(move) < p.pole_min * close[pole_start]:
            continue
        flag_high = float(bars.high[t - p.flag_bars : t].max())  # numpy's max and min: NaN where a price is
        flag_low = float(bars.low[t - p.flag_bars : t].min())
        # A flag pauses: it retraces little and does not go on beyond the pole's end (else it is the pole going on).
        # The bar before is inside the flag (its close is within the flag's range by construction).
        pole_high, pole_low = high[pole_end] * (1 + p.tolerance), low[pole_end] * (1 - p.tolerance)
        bull = move > 0 and close[pole_end] - flag_low <= p.flag_max_retrace * move and flag_high <= pole_high
        bear = move < 0 and flag_high - close[pole_end] <= p.flag_max_retrace * -move and flag_low >= pole_low
        if bull and close[t] > flag_high:
            out.append(Formation("bull_flag", 1, t, pole_start, flag_high))
        elif bear and close[t] < flag_low:
            out.append(Formation("bear_flag", -1, t, pole_start, flag_low))
    return out


def formations(
    high: Sequence[float] | Floats,
    low: Sequence[float] | Floats,
    close: Sequence[float] | Floats,
    params: FormationParams = FormationParams(),
    found: Sequence[Swing] | None = None,
    since: int = 0,
) -> list[Formation]:
    """Every formation completed within the series at bar ``since`` or later, ordered by the bar it completed at (then
    name). ``found``: the series' swings when already computed (``swings(high, low, params.swing_bars)``)."""
    h, lo, c = (np.asarray(a, dtype=np.float64) for a in (high, low, close))
    if not len(h) == len(lo) == len(c):
        raise ValueError("high, low and close must have the same length")
    bars = _Bars(h, lo, c, h.tolist(), lo.tolist(), c.tolist())
    if found is None:  # the swings a formation completing at ``since`` or later can be made of
        kinds = swings_by_kind(bars.high, bars.low, params.swing_bars, min(since - params.max_wait, since))
    else:
        kinds = ([s for s in found if s.kind == "high"], [s for s in found if s.kind == "low"])
    events = _doubles(bars, kinds, params, since) + _head_and_shoulders(bars, kinds, params, since)
    events += _breaks_and_triangles(bars, kinds, params, since) + _flags(bars, params, since)
    return sorted((e for e in events if e.at >= since), key=lambda e: (e.at, e.name, e.start))
