"""The pattern code against a frozen copy of it as it was before it was made faster (``reference_patterns.py``): the
same candlestick arrays (from the vectorized detectors and from the one-bar ones the analyst uses), swings, formations
and analyst opinions, result for result, on two generated years of hourly bars (every detector on every bar,
formations over the whole year and over the analyst's window at every step, the analyst's opinion at every step) and on
random paths, with other parameters and with gaps (NaN prices) too; and ``bench/patterns.py``'s before/after run."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
import reference_patterns as old
from hypothesis import example, given, settings
from hypothesis import strategies as st
from support.patterns import as_bars, hourly_year

from agents.patterns.analyst import PatternParams, pattern_opinion
from agents.patterns.candles import Candles, candle_patterns
from agents.patterns.candles_at import candle_patterns_at
from agents.patterns.formations import FormationParams, formations
from agents.patterns.swings import swings

YEARS = (11, 29)
OTHER_FORMATIONS = (
    FormationParams(),
    FormationParams(swing_bars=1, max_wait=5, tolerance=0.02, min_depth=0.005, pole_bars=3, flag_bars=2),
    FormationParams(swing_bars=2, tolerance=0.005, head_margin=0.002, shoulder_tolerance=0.05, pole_min=0.01),
    FormationParams(swing_bars=5, max_wait=40, flag_max_retrace=0.8),
)


@pytest.fixture(scope="module", params=YEARS, ids=[f"seed{s}" for s in YEARS])
def year(request) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return hourly_year(request.param)


def _same_candles(prices) -> None:
    """The vectorized detectors give the old arrays, and the one-bar detectors the same signs at every bar."""
    candles = Candles(*prices)
    new, before = candle_patterns(candles), old.candle_patterns(old.Candles(*prices))
    assert list(new) == list(before)
    for name, signs in new.items():
        assert signs.dtype == before[name].dtype and np.array_equal(signs, before[name]), name
    each_bar = sorted((int(i), name, int(signs[i])) for name, signs in before.items() for i in np.nonzero(signs)[0])
    assert sorted(candle_patterns_at(candles, range(len(candles)))) == each_bar


def _same_formations(high, low, close, params: FormationParams, since: int = 0) -> None:
    new = formations(high, low, close, params, since=since)
    assert repr(new) == repr(old.formations(high, low, close, params, since=since))  # repr: NaN levels compare too


def test_every_candle_detector_gives_the_old_array_over_a_year_and_its_tails(year) -> None:
    _same_candles(year)
    for start in (1, 7, 8000, len(year[0]) - 16, len(year[0]) - 3):
        _same_candles(tuple(a[start:] for a in year))


def test_swings_and_formations_are_the_old_ones_over_a_year(year) -> None:
    _, h, lo, c = year
    for k in (1, 2, 3, 5):
        assert swings(h, lo, k) == old.swings(h, lo, k)
    for params in OTHER_FORMATIONS:
        _same_formations(h, lo, c, params)
        for since in (1, 999, len(c) - 3, len(c)):
            _same_formations(h, lo, c, params, since)
    for t in range(119, 1500):  # the analyst's window and bars (the slow test below: every step of the year)
        window = slice(t - 119, t + 1)
        _same_formations(h[window], lo[window], c[window], FormationParams(), 117)


@pytest.mark.slow  # the old code at every step of two years: some 20 s
def test_the_analysts_window_gives_the_old_formations_and_opinion_at_every_step(year) -> None:
    bars = as_bars(*year)
    _, h, lo, c = year
    params = PatternParams(weight=1.0)
    actions = set()
    for t in range(len(bars)):
        first = max(0, t + 1 - params.lookback)
        window = slice(first, t + 1)
        _same_formations(h[window], lo[window], c[window], params.formations, max(0, t + 1 - first - 3))
        as_of = bars[t].ts + timedelta(hours=1)
        mine = pattern_opinion(bars[: t + 1], "X/USD", as_of, params)
        assert mine == old.pattern_opinion(bars[: t + 1], "X/USD", as_of, params), t
        actions.add((mine.action, mine.skipped))
    assert len(actions) == 4, actions


def _path(steps: list[float], wicks: list[float], gaps: list[int]) -> tuple[np.ndarray, ...]:
    close = np.round(100 * np.exp(np.cumsum(steps)), 2)
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.round(np.maximum(open_, close) * (1 + np.array(wicks[: len(close)])), 2)
    low = np.round(np.minimum(open_, close) * (1 - np.array(wicks[::-1][: len(close)])), 2)
    prices = (open_, high, low, close)
    for g in gaps:  # a price missing here and there: NaN where a feed had none
        prices[g % 4][g % len(close)] = np.nan
    return prices


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(st.floats(-0.02, 0.02), min_size=1, max_size=200),
    wicks=st.lists(st.floats(0, 0.01), min_size=200, max_size=200),
    gaps=st.lists(st.integers(0, 10_000), max_size=3),
    lookback=st.sampled_from([0, 16, 40, 120]),
    recent=st.integers(1, 30),
    trend=st.integers(1, 60),
    min_bars=st.integers(1, 25),
    shapes=st.sampled_from(OTHER_FORMATIONS),
)
def test_random_paths_and_parameters_give_the_old_results(
    steps, wicks, gaps, lookback, recent, trend, min_bars, shapes
) -> None:
    prices = _path(steps, wicks, gaps)
    _same_candles(prices)
    _, h, lo, c = prices
    assert repr(swings(h, lo, shapes.swing_bars)) == repr(old.swings(h, lo, shapes.swing_bars))
    for since in (0, len(c) // 2, len(c) - recent):
        _same_formations(h, lo, c, shapes, max(0, since))
    params = PatternParams(weight=1.0, lookback=lookback, recent_bars=recent, trend_bars=trend, min_bars=min_bars,
                           formations=shapes)  # fmt: skip
    bars = as_bars(*prices)
    for t in {len(bars) - 1, len(bars) // 2, len(bars) // 3}:
        as_of = bars[t].ts + timedelta(hours=1)
        mine, before = (
            pattern_opinion(bars[: t + 1], "X", as_of, params),
            old.pattern_opinion(bars[: t + 1], "X", as_of, params),
        )
        assert repr(mine) == repr(before), t


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(96, 104), st.integers(96, 104), st.integers(0, 5), st.integers(0, 5)),
                  min_size=1, max_size=80),
    recent=st.integers(1, 5),
)  # fmt: skip
@example(rows=[(100, 100, 0, 0)] * 20, recent=3)  # no body, no range: a doji at its bound (0 <= 0.1 * 0)
@example(rows=[(100, 101, 4, 5)] * 20, recent=3)  # body 1, range 10: a doji at its bound (1 <= 0.1 * 10)
def test_prices_on_a_coarse_grid_where_ties_are_common_give_the_old_results(rows, recent) -> None:
    # whole-unit prices make equal bodies, ranges, averages and swing prices common: where "<" and "<=" part ways
    open_, close = (np.array([r[i] for r in rows], dtype=np.float64) for i in (0, 1))
    high = np.maximum(open_, close) + np.array([r[2] for r in rows])
    low = np.minimum(open_, close) - np.array([r[3] for r in rows])
    prices = (open_, high, low, close)
    _same_candles(prices)
    assert swings(high, low, 2) == old.swings(high, low, 2)
    shapes = FormationParams(swing_bars=2, tolerance=0.0, min_depth=0.0, pole_min=0.0)
    for since in (0, len(close) - recent):
        _same_formations(high, low, close, shapes, max(0, since))
    bars = as_bars(*prices)
    params = PatternParams(weight=1.0, recent_bars=recent, min_bars=1, formations=shapes)
    as_of = bars[-1].ts + timedelta(hours=1)
    assert pattern_opinion(bars, "X", as_of, params) == old.pattern_opinion(bars, "X", as_of, params)


@pytest.mark.slow  # a Python subprocess running bench/patterns.py
def test_the_patterns_benchmark_times_the_analyst_before_and_after_in_one_run() -> None:
    import subprocess
    import sys

    from support.paths import ROOT

    result = subprocess.run([sys.executable, str(ROOT / "bench" / "patterns.py"), "--steps", "20", "--repeat", "2",
                             "--before"], cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the best of 2 interleaved rounds; load average" in result.stdout
    assert "before, added:" in result.stdout and "ms per decision (goal <= 2)" in result.stdout
    bad = subprocess.run([sys.executable, str(ROOT / "bench" / "patterns.py"), "--repeat", "0"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 2 and "--repeat" in bad.stderr and "Traceback" not in bad.stderr
