"""Chart patterns (agents.patterns): candlestick detectors against TA-Lib on a generated year and on hand-drawn
bars, swings dated at their confirmation, formations dated at their completion, no look-ahead, and the analyst."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from support.patterns import (
    BULL_FLAG,
    DOUBLE_TOP,
    HEAD_AND_SHOULDERS,
    TRIANGLE,
    as_bars,
    drawn,
    hourly_year,
    mirrored,
)

from agents.patterns.analyst import PatternParams, pattern_opinion
from agents.patterns.candles import DETECTORS, Candles, candle_patterns
from agents.patterns.formations import FormationParams, formations
from agents.patterns.swings import known_at, swings
from alphaloom.domain import Action

ORACLE = {
    "engulfing": talib.CDLENGULFING,
    "hammer": talib.CDLHAMMER,
    "shooting_star": talib.CDLSHOOTINGSTAR,
    "doji": talib.CDLDOJI,
    "morning_star": talib.CDLMORNINGSTAR,
    "evening_star": talib.CDLEVENINGSTAR,
    "piercing": talib.CDLPIERCING,
    "dark_cloud_cover": talib.CDLDARKCLOUDCOVER,
}


@pytest.fixture(scope="module")
def year() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return hourly_year()


@pytest.mark.parametrize("seed", [11, 29])
def test_every_candle_detector_agrees_with_talib_on_a_year_of_hourly_bars(seed) -> None:
    assert set(DETECTORS) == set(ORACLE)
    year = hourly_year(seed)
    found = candle_patterns(Candles(*year))
    for name, oracle in ORACLE.items():
        expected = np.sign(oracle(*year)).astype(np.int8)  # TA-Lib's ±100 and ±80 (engulfing) are one pattern here
        assert np.array_equal(found[name], expected), (name, np.nonzero(found[name] != expected)[0][:5])
        assert np.count_nonzero(expected) >= 10, f"{name}: the year must hold the pattern to compare on"
    engulfing = found["engulfing"]
    assert (engulfing == 1).any() and (engulfing == -1).any()


def _base(bars: int = 12) -> list[tuple[float, float, float, float]]:
    """Small alternating candles (body 0.5, range 1.0), the last one down: the averages the pattern candles are
    measured against."""
    return [(100.0, 100.8, 99.8, 100.5) if (bars - i) % 2 == 0 else (100.5, 100.8, 99.8, 100.0) for i in range(bars)]


HAND_DRAWN = {  # name: (the candles appended to _base(), the sign expected at the last bar)
    "engulfing": ([(99.9, 100.8, 99.8, 100.7)], 1),  # an up body engulfing the down bar before
    "hammer": ([(99.7, 99.95, 99.0, 99.9)], 1),
    "shooting_star": ([(100.8, 101.5, 100.58, 100.6)], -1),
    "doji": ([(100.0, 100.6, 99.5, 100.05)], 1),
    "morning_star": ([(101.0, 101.1, 99.4, 99.5), (99.2, 99.4, 99.1, 99.3), (99.4, 100.5, 99.35, 100.4)], 1),
    "evening_star": ([(99.5, 101.1, 99.4, 101.0), (101.3, 101.4, 101.1, 101.2), (101.1, 101.15, 100.0, 100.1)], -1),
    "piercing": ([(101.0, 101.1, 99.4, 99.5), (99.2, 100.6, 99.1, 100.5)], 1),  # opens below, closes past the middle
    "dark_cloud_cover": ([(99.5, 101.1, 99.4, 101.0), (101.2, 101.3, 100.0, 100.1)], -1),
}


@pytest.mark.parametrize("name", sorted(HAND_DRAWN))
def test_each_candle_pattern_is_found_on_hand_drawn_bars_where_drawn_and_nowhere_else(name) -> None:
    extra, sign = HAND_DRAWN[name]
    bars = _base(13 - len(extra) + 1) + extra  # the pattern ends on bar 13
    o, h, lo, c = (np.array(column) for column in zip(*bars, strict=True))
    found = DETECTORS[name](Candles(o, h, lo, c))
    expected = np.zeros(len(bars), dtype=np.int8)
    expected[-1] = sign
    assert np.array_equal(found, expected), found
    assert np.array_equal(np.sign(ORACLE[name](o, h, lo, c)), expected), "TA-Lib draws it alike"
    if name == "engulfing":  # the mirror: a down body engulfing the up bar before
        mirror = (210 - o, 210 - lo, 210 - h, 210 - c)
        assert np.array_equal(DETECTORS[name](Candles(*mirror)), -expected)
        assert np.array_equal(np.sign(ORACLE[name](*mirror)), -expected)


def test_a_swing_is_dated_at_its_confirmation_not_at_its_pivot() -> None:
    _, h, lo, _ = drawn(DOUBLE_TOP)
    found = swings(h, lo, 3)
    second_top = next(s for s in found if s.kind == "high" and s.pivot == 20)
    assert second_top.confirmed == 23 and second_top.price == pytest.approx(110.2)
    for bar in range(20, 23):  # the pivot's bar and the bars before the confirmation do not know it yet
        assert second_top not in swings(h[: bar + 1], lo[: bar + 1], 3)
        assert second_top not in known_at(found, bar)
    assert second_top in swings(h[:24], lo[:24], 3) and second_top in known_at(found, 23)


def test_swings_need_one_bar_of_confirmation_at_least() -> None:
    with pytest.raises(ValueError, match="k >= 1"):
        swings([1.0, 2.0, 1.0], [0.0, 1.0, 0.0], 0)


DRAWN = [  # (path, formation, the bar it completes at, the bar of its first pivot)
    (DOUBLE_TOP, "double_top", 26, 10),
    (mirrored(DOUBLE_TOP), "double_bottom", 26, 10),
    (HEAD_AND_SHOULDERS, "head_and_shoulders", 30, 6),
    (mirrored(HEAD_AND_SHOULDERS), "inverse_head_and_shoulders", 30, 6),
    (DOUBLE_TOP, "support_break", 26, 15),
    (mirrored(DOUBLE_TOP), "resistance_break", 26, 15),
    (TRIANGLE, "triangle_breakout_up", 22, 5),
    (mirrored(TRIANGLE), "triangle_breakout_down", 22, 5),
    (BULL_FLAG, "bull_flag", 15, 4),
    (mirrored(BULL_FLAG), "bear_flag", 15, 4),
]


@pytest.mark.parametrize(("path", "name", "at", "start"), DRAWN, ids=[d[1] for d in DRAWN])
def test_each_formation_is_found_on_a_hand_drawn_series_at_the_bar_that_completes_it(path, name, at, start) -> None:
    _, h, lo, c = drawn(path)
    found = [f for f in formations(h, lo, c) if f.name == name]
    assert [(f.at, f.start) for f in found] == [(at, start)], found
    before = formations(h[:at], lo[:at], c[:at])  # one bar earlier: not complete yet
    assert name not in {f.name for f in before}


def test_a_straight_decline_is_no_flag_and_unequal_tops_are_no_double_top() -> None:
    _, h, lo, c = drawn([100.0 - i for i in range(40)])
    assert not [f for f in formations(h, lo, c) if f.name.endswith("flag")]
    uneven = list(DOUBLE_TOP)
    uneven[20] = 114.0  # the second top 4 % above the first
    _, h, lo, c = drawn(uneven)
    assert "double_top" not in {f.name for f in formations(h, lo, c)}


def test_truncating_the_series_at_any_bar_changes_nothing_up_to_that_bar(year) -> None:
    o, h, lo, c = (a[:1500] for a in year)
    every_candle = candle_patterns(Candles(o, h, lo, c))
    every_swing = swings(h, lo, 3)
    every_formation = formations(h, lo, c)
    assert len(every_formation) > 50 and len({f.name for f in every_formation}) >= 8
    rng = np.random.default_rng(3)
    for t in sorted({*rng.integers(0, 1500, 60).tolist(), 0, 1, 11, 12, 13, 1499}):
        cut = slice(0, t + 1)
        for name, signs in candle_patterns(Candles(o[cut], h[cut], lo[cut], c[cut])).items():
            assert np.array_equal(signs, every_candle[name][cut]), (name, t)
        assert swings(h[cut], lo[cut], 3) == known_at(every_swing, t), t
        assert formations(h[cut], lo[cut], c[cut]) == [f for f in every_formation if f.at <= t], t


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.floats(-0.03, 0.03), min_size=2, max_size=160),
    wicks=st.lists(st.floats(0, 0.02), min_size=160, max_size=160),
    cut=st.integers(0, 159),
)
def test_no_pattern_looks_ahead_on_any_random_path(steps, wicks, cut) -> None:
    close = 100 * np.exp(np.cumsum(steps))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * (1 + np.array(wicks[: len(close)]))
    low = np.minimum(open_, close) * (1 - np.array(wicks[::-1][: len(close)]))
    t = min(cut, len(close) - 1)
    params = FormationParams(swing_bars=2, pole_min=0.02)
    part = slice(0, t + 1)
    every = candle_patterns(Candles(open_, high, low, close))
    for name, signs in candle_patterns(Candles(open_[part], high[part], low[part], close[part])).items():
        assert np.array_equal(signs, every[name][part]), name
    assert swings(high[part], low[part], 2) == known_at(swings(high, low, 2), t)
    whole = formations(high, low, close, params)
    assert formations(high[part], low[part], close[part], params) == [f for f in whole if f.at <= t]
    assert all(f.at >= f.start for f in whole)


def test_formations_from_a_bar_on_are_the_tail_of_all_of_them(year) -> None:
    _, h, lo, c = (a[:800] for a in year)
    every = formations(h, lo, c)
    for since in (0, 100, 650, 797):
        assert formations(h, lo, c, since=since) == [f for f in every if f.at >= since]


def test_the_analyst_buys_a_completed_double_bottom_and_knows_nothing_of_it_a_bar_earlier() -> None:
    bars = as_bars(*drawn(mirrored(DOUBLE_TOP)))
    params = PatternParams(weight=1.0)
    done = pattern_opinion(bars[:27], "X/USD", bars[26].ts + timedelta(hours=1), params)
    assert done.agent == "patterns" and not done.skipped and done.action is Action.BUY
    names = {f["name"] for f in done.details["formations"]}
    assert {"double_bottom", "resistance_break"} <= names
    assert all(f["at"] == bars[26].ts.isoformat() for f in done.details["formations"])
    assert "double_bottom" in done.rationale
    early = pattern_opinion(bars[:26], "X/USD", bars[25].ts + timedelta(hours=1), params)
    assert "double_bottom" not in {f["name"] for f in early.details.get("formations", [])}
    assert early.action is Action.HOLD


def test_the_analyst_sells_a_head_and_shoulders() -> None:
    bars = as_bars(*drawn(HEAD_AND_SHOULDERS))
    opinion = pattern_opinion(bars[:31], "X/USD", bars[30].ts + timedelta(hours=1), PatternParams(weight=1.0))
    assert opinion.action is Action.SELL and opinion.confidence > 0.5
    assert "head_and_shoulders" in {f["name"] for f in opinion.details["formations"]}


def test_the_analyst_abstains_without_patterns_or_history() -> None:
    params = PatternParams(weight=1.0, min_bars=20)
    short = as_bars(*drawn(DOUBLE_TOP[:10]))
    warm = pattern_opinion(short, "X/USD", short[-1].ts, params)
    assert warm.skipped and "warm-up" in warm.rationale
    o, h, lo, c = drawn([100.0] * 40)
    flat = as_bars(o, h, lo, c + 0.1)  # a flat market of identical small up bars: nothing to see
    quiet = pattern_opinion(flat, "X/USD", flat[-1].ts, params)
    assert quiet.skipped and "no pattern" in quiet.rationale


def test_a_hammer_counts_after_a_decline_and_not_after_a_rise() -> None:
    falling = [(101.0 - 0.1 * i, 101.3 - 0.1 * i, 100.3 - 0.1 * i, 100.5 - 0.1 * i) for i in range(25)]
    rising = [(97.0 + 0.1 * i, 97.8 + 0.1 * i, 96.8 + 0.1 * i, 97.5 + 0.1 * i) for i in range(25)]
    for history, counted in ((falling, True), (rising, False)):
        low = history[-1][2]  # a small body at the last bar's low, a long lower shadow, almost no upper one
        rows = [*history, (low + 0.1, low + 0.35, low - 0.6, low + 0.3)]
        o, h, lo, c = (np.array(x) for x in zip(*rows, strict=True))
        assert DETECTORS["hammer"](Candles(o, h, lo, c))[-1] == 1, "the shape is there either way"
        bars = as_bars(o, h, lo, c)
        opinion = pattern_opinion(bars, "X/USD", bars[-1].ts, PatternParams(weight=1.0, formations=FormationParams()))
        assert ("hammer" in {f["name"] for f in opinion.details.get("candles", [])}) is counted


def test_the_analyst_reads_only_its_lookback_and_the_same_bars_give_the_same_opinion(year) -> None:
    bars = as_bars(*(a[:400] for a in year))
    params = PatternParams(weight=1.0, lookback=120)
    at = bars[-1].ts
    assert pattern_opinion(bars, "X", at, params) == pattern_opinion(bars[-120:], "X", at, params)
    acted = [pattern_opinion(bars[: t + 1], "X", bars[t].ts, params) for t in range(150, 400)]
    assert {o.action for o in acted} == {Action.BUY, Action.SELL, Action.HOLD}


def test_the_patterns_benchmark_runs_at_toy_size() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, str(root / "bench" / "patterns.py"), "--steps", "30"], cwd=root,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "30 decisions of one symbol, 120 bars each" in result.stdout
    assert "ms per decision (goal <= 2)" in result.stdout and "ratio with/without:" in result.stdout
