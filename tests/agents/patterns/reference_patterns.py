"""A frozen copy of the pattern code as it was before it was made faster (commit 4d8de1a, agents/patterns/): the
reference ``test_patterns_equivalence.py`` holds the new code to, result for result. Not to be edited: it is what
"unchanged" means. The data types (bars, parameters, swings, formations, found patterns) are the live ones."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from agents.patterns.analyst import AGENT, Bar, Found, PatternParams
from agents.patterns.formations import Formation, FormationParams
from agents.patterns.swings import Swing
from alphaloom.domain import Action, AgentOpinion

Floats = NDArray[np.float64]
Signs = NDArray[np.int8]

# ---- candles (agents/patterns/candles.py)
# TA-Lib's default candle settings: (average period in bars, factor).
_BODY_LONG = (10, 1.0)
_BODY_SHORT = (10, 1.0)
_BODY_DOJI = (10, 0.1)  # of the high-low range
_SHADOW_LONG = (0, 1.0)  # of the bar's own real body
_SHADOW_VERY_SHORT = (10, 0.1)  # of the high-low range
_NEAR = (5, 0.2)  # of the high-low range
STAR_PENETRATION = 0.3


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


def candle_patterns(candles: Candles) -> dict[str, Signs]:
    """Every detector's array over ``candles``."""
    return {name: detect(candles) for name, detect in DETECTORS.items()}


# ---- swings (agents/patterns/swings.py)


def _pivots(values: Floats, k: int, sign: float) -> NDArray[np.intp]:
    """Indices ``p`` with ``k`` bars either side where ``sign * values[p]`` is above the ``k`` before and not below
    the ``k`` after."""
    n = len(values)
    if k < 1:
        raise ValueError(f"swing confirmation needs k >= 1 bars, got {k}")
    if n < 2 * k + 1:
        return np.empty(0, dtype=np.intp)
    v = sign * np.asarray(values, dtype=np.float64)
    windows = np.lib.stride_tricks.sliding_window_view(v, 2 * k + 1)  # window j is centred on bar j + k
    centre = windows[:, k]
    before = windows[:, :k].max(axis=1)
    after = windows[:, k + 1 :].max(axis=1)
    found = np.nonzero((centre > before) & (centre >= after))[0]
    return found + k


def swings(high: Sequence[float] | Floats, low: Sequence[float] | Floats, k: int = 3) -> list[Swing]:
    """Every swing of the series confirmed within it, ordered by confirmation then pivot (highs before lows on the
    same bar). Truncating the series after bar ``t`` keeps exactly the swings with ``confirmed <= t``."""
    h, lo = np.asarray(high, dtype=np.float64), np.asarray(low, dtype=np.float64)
    found = [Swing("high", int(p), int(p) + k, float(h[p])) for p in _pivots(h, k, 1.0)]
    found += [Swing("low", int(p), int(p) + k, float(lo[p])) for p in _pivots(lo, k, -1.0)]
    return sorted(found, key=lambda s: (s.confirmed, s.pivot, s.kind != "high"))


# ---- formations (agents/patterns/formations.py)


@dataclass(frozen=True)
class _Bars:
    high: Floats
    low: Floats
    close: Floats


def _line(x1: int, y1: float, x2: int, y2: float, x: int) -> float:
    return y1 + (y2 - y1) * (x - x1) / (x2 - x1)


def _trough(values: Floats, first: int, last: int, sign: int) -> tuple[int, float]:
    """The bar and value of the lowest (``sign`` +1: tops, so the lows between) or highest (-1) value strictly between
    bars ``first`` and ``last``."""
    span = values[first + 1 : last]
    i = int(np.argmin(span)) if sign == 1 else int(np.argmax(span))
    return first + 1 + i, float(span[i])


def _first_close_beyond(
    bars: _Bars, level_at: object, start: int, stop: int, sign: int, void_price: float
) -> tuple[int, float] | None:
    """The first bar in ``[start, stop]`` whose close is beyond the level (below it for ``sign`` +1, a top; above it
    for -1) and the level there, unless an extreme beyond ``void_price`` (above for a top, below for a bottom) comes
    first (from the bar after the last pivot, passed as ``start``'s search: the caller checks the pivot span)."""
    for t in range(start, min(stop, len(bars.close) - 1) + 1):
        level = level_at(t)  # type: ignore[operator]
        if (sign == 1 and bars.close[t] < level) or (sign == -1 and bars.close[t] > level):
            return t, float(level)
        if (sign == 1 and bars.high[t] > void_price) or (sign == -1 and bars.low[t] < void_price):
            return None
    return None


def _voided_between(bars: _Bars, first: int, last: int, sign: int, void_price: float) -> bool:
    """Whether price went beyond ``void_price`` in bars ``(first, last)`` (exclusive: the pivot bars themselves are
    the pattern's own extremes)."""
    if last <= first + 1:
        return False
    if sign == 1:
        return bool((bars.high[first + 1 : last] > void_price).any())
    return bool((bars.low[first + 1 : last] < void_price).any())


def _doubles(bars: _Bars, found: Sequence[Swing], p: FormationParams, since: int) -> list[Formation]:
    out: list[Formation] = []
    for kind, sign, name in (("high", 1, "double_top"), ("low", -1, "double_bottom")):
        points = [s for s in found if s.kind == kind]
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


def _head_and_shoulders(bars: _Bars, found: Sequence[Swing], p: FormationParams, since: int) -> list[Formation]:
    out: list[Formation] = []
    for kind, sign, name in (("high", 1, "head_and_shoulders"), ("low", -1, "inverse_head_and_shoulders")):
        points = [s for s in found if s.kind == kind]
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


def _breaks_and_triangles(bars: _Bars, found: Sequence[Swing], p: FormationParams, since: int) -> list[Formation]:
    """Support/resistance breaks and triangle breakouts at each bar from ``since``, from the swings confirmed before
    the bar."""
    out: list[Formation] = []
    every_high = [s for s in found if s.kind == "high"]  # ordered by confirmation
    every_low = [s for s in found if s.kind == "low"]
    high_known = [s.confirmed for s in every_high]
    low_known = [s.confirmed for s in every_low]
    close = bars.close
    for t in range(max(1, since), len(close)):
        highs = every_high[max(0, bisect_right(high_known, t - 1) - 2) : bisect_right(high_known, t - 1)]
        lows = every_low[max(0, bisect_right(low_known, t - 1) - 2) : bisect_right(low_known, t - 1)]
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
    close = bars.close
    if close[t] > upper[0] and close[t - 1] <= upper[1]:
        return [Formation("triangle_breakout_up", 1, t, start, upper[0])]
    if close[t] < lower[0] and close[t - 1] >= lower[1]:
        return [Formation("triangle_breakout_down", -1, t, start, lower[0])]
    return []


def _flags(bars: _Bars, p: FormationParams, since: int) -> list[Formation]:
    out: list[Formation] = []
    close, high, low = bars.close, bars.high, bars.low
    for t in range(max(p.pole_bars + p.flag_bars + 1, since), len(close)):
        pole_end = t - p.flag_bars - 1
        pole_start = pole_end - p.pole_bars
        move = close[pole_end] - close[pole_start]
        if close[pole_start] <= 0 or abs(move) < p.pole_min * close[pole_start]:
            continue
        flag_high = float(high[t - p.flag_bars : t].max())
        flag_low = float(low[t - p.flag_bars : t].min())
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
    bars = _Bars(*(np.asarray(a, dtype=np.float64) for a in (high, low, close)))
    if not len(bars.high) == len(bars.low) == len(bars.close):
        raise ValueError("high, low and close must have the same length")
    found = swings(bars.high, bars.low, params.swing_bars) if found is None else found
    events = _doubles(bars, found, params, since) + _head_and_shoulders(bars, found, params, since)
    events += _breaks_and_triangles(bars, found, params, since) + _flags(bars, params, since)
    return sorted((e for e in events if e.at >= since), key=lambda e: (e.at, e.name, e.start))


# ---- the analyst (agents/patterns/analyst.py)
# The bars before a candle pattern's last bar that its detector reads (TA-Lib's longest lookback: a star's first
# candle, two bars back, against the 10 bars before it): the detectors run on the tail that holds them, which gives
# the values a run over every bar would.
_CANDLE_READS = 12


def _columns(bars: Sequence[Bar]) -> tuple[Floats, Floats, Floats, Floats]:
    _, open_, high, low, close = zip(*bars, strict=True)
    return (np.array(open_, dtype=np.float64), np.array(high, dtype=np.float64), np.array(low, dtype=np.float64),
            np.array(close, dtype=np.float64))  # fmt: skip


def _candles_found(
    bars: Sequence[Bar], prices: tuple[Floats, Floats, Floats, Floats], params: PatternParams
) -> list[Found]:
    close = prices[3]
    first = max(0, len(bars) - params.recent_bars)
    tail = max(0, first - _CANDLE_READS - 1)
    candles = Candles(*(column[tail:] for column in prices))
    found: list[Found] = []
    for name, signs in candle_patterns(candles).items():
        for at in np.nonzero(signs[first - tail :])[0] + (first - tail):
            i = int(at) + tail  # the bar's place in ``bars``
            direction = CANDLE_DIRECTION[name]
            direction = int(signs[at]) if direction is None else direction
            if name in ("hammer", "shooting_star"):
                before = i - params.trend_bars
                moved = 0 if before < 0 else int(np.sign(close[i] - close[before]))
                if moved != -direction:  # a hammer after a decline, a shooting star after a rise
                    continue
            found.append(Found(name, direction, bars[i].ts))
    return sorted(found, key=lambda f: (f.at, f.name))


def _formations_found(
    bars: Sequence[Bar], prices: tuple[Floats, Floats, Floats, Floats], params: PatternParams
) -> list[Found]:
    _, high, low, close = prices
    first = max(0, len(bars) - params.recent_bars)
    return [Found(f.name, f.direction, bars[f.at].ts)
            for f in formations(high, low, close, params.formations, since=first)]  # fmt: skip


def _mean(found: Sequence[Found]) -> float:
    return sum(f.direction for f in found) / len(found)


def pattern_opinion(
    bars: Sequence[Bar], symbol: str, as_of: datetime, params: PatternParams = PatternParams()
) -> AgentOpinion:
    """The analyst's opinion from ``bars`` (see the module docstring); ``details`` names every pattern counted with
    the bar it completed at, and the score."""
    bars = list(bars)[-params.lookback :] if params.lookback > 0 else list(bars)
    if len(bars) < params.min_bars:
        return AgentOpinion(AGENT, symbol, as_of, Action.HOLD, 0.0,
                            f"warm-up: {len(bars)} bars known, {params.min_bars} needed",
                            details={"bars": len(bars)}, skipped=True)  # fmt: skip
    prices = _columns(bars)
    candles, shapes = _candles_found(bars, prices, params), _formations_found(bars, prices, params)
    details: dict[str, Any] = {
        "bars": len(bars),
        "last_bar": bars[-1].ts.isoformat(),
        "candles": [f.record() for f in candles],
        "formations": [f.record() for f in shapes],
    }
    if not candles and not shapes:
        return AgentOpinion(AGENT, symbol, as_of, Action.HOLD, 0.0,
                            f"no pattern completed in the last {params.recent_bars} bars", details=details,
                            skipped=True)  # fmt: skip
    if candles and shapes:
        score = params.candle_weight * _mean(candles) + (1 - params.candle_weight) * _mean(shapes)
    else:
        score = _mean(candles or shapes)
    action = Action.HOLD
    if score >= params.action_threshold:
        action = Action.BUY
    elif score <= -params.action_threshold:
        action = Action.SELL
    confidence = min(1.0, abs(score)) if action is not Action.HOLD else max(0.0, 1.0 - abs(score))
    named = ", ".join(f"{f.name} {f.direction:+d} at {f.at:%Y-%m-%d %H:%M}" for f in (*shapes, *candles))
    rationale = f"{named}; score {score:+.2f} (threshold ±{params.action_threshold:g}) -> {action.value}"
    return AgentOpinion(AGENT, symbol, as_of, action, round(confidence, 6), rationale,
                        details={**details, "score": round(score, 6)})  # fmt: skip
