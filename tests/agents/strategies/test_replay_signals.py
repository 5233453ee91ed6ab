"""A replay computes the price strategies' signals of its whole window at load (``agents.strategies``'
``lazy_*_at_ends``): every signal must be bit-for-bit the one the strategy gives one step at a time, on random series
with flat runs, rounded prices and bad values (zero, negative, NaN, infinite closes)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.deciding import price_signals
from agents.params import DecisionParams, StrategyParams
from agents.snapshot import MarketView, PriceSignals
from agents.strategies.mean_reversion import MeanReversionParams, lazy_mean_reversion_at_ends, mean_reversion
from agents.strategies.momentum import MomentumParams, _line_fits, lazy_momentum_at_ends, momentum
from alphaloom.domain import Signal
from alphaloom.settings import Settings


def _bits(signals: list[Signal | None]) -> list[tuple | None]:
    """Each signal as exact values: the strength's bits (``float.hex``), not a tolerance."""
    return [None if s is None else (s.name, s.symbol, float(s.strength).hex(), s.reason) for s in signals]


def _series(rng: np.random.Generator, n: int, trial: int) -> list[float]:
    vol = float(rng.choice([1e-5, 0.01, 0.08]))
    closes = np.round(100 * np.exp(np.cumsum(rng.normal(0, vol, n))), int(rng.integers(1, 9))).tolist()
    if trial % 4 == 0 and n > 40:  # a flat run: zero volatility, zero variance
        closes[10:40] = [closes[10]] * 30
    if trial % 5 == 0 and n > 2:
        for _ in range(int(rng.integers(1, 3))):
            closes[int(rng.integers(0, n))] = float(rng.choice([0.0, -2.0, math.nan, math.inf]))
    return closes


@pytest.mark.parametrize("seed", range(6))
def test_window_signals_equal_the_strategies_one_step_at_a_time(seed: int) -> None:
    """A replay cursor holds its window's signals lazily (``lazy_*_at_ends``): every end's strength computed at load,
    its ``Signal`` built when read; both bit-for-bit the strategy's signal one step at a time, the same object on a
    second read."""
    rng = np.random.default_rng(seed)
    compared = 0
    for trial in range(25):
        n = int(rng.integers(0, 400))
        closes = _series(rng, n, trial)
        trend = MomentumParams(lookback=int(rng.choice([2, 3, 7, 24, 60])), scale=float(rng.choice([0.5, 1.3])))
        fade = MeanReversionParams(window=int(rng.choice([1, 2, 5, 20])), entry_z=float(rng.choice([0.5, 1.0])))
        history, first = int(rng.choice([5, 24, 60])), int(rng.integers(0, n + 1))
        windows = [closes[max(0, j - history) : j] for j in range(first, n + 1)]
        for lazy, one_step in (
            (lazy_momentum_at_ends(closes, "S", trend, history, first),
             [momentum(window, "S", trend) for window in windows]),
            (lazy_mean_reversion_at_ends(closes, "S", fade, history, first),
             [mean_reversion(window, "S", fade) for window in windows]),
        ):  # fmt: skip
            assert [None if x is None else float(x).hex() for x in lazy.strengths] == [
                None if s is None else float(s.strength).hex() for s in one_step
            ], (seed, trial)
            assert _bits([lazy.signal(k) for k in range(len(one_step))]) == _bits(one_step), (seed, trial)
            assert all(lazy.signal(k) is lazy.signal(k) for k in range(len(one_step)))
            compared += sum(s is not None for s in one_step)
    assert compared > 1000


def test_the_stacked_line_fits_equal_np_polyfit_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    for lookback in (3, 24, 100):
        rows = np.log(100 * np.exp(np.cumsum(rng.normal(0, 0.02, (3000, lookback)), axis=1)))
        x = np.arange(lookback, dtype=float)
        expected = np.array([np.polyfit(x, row, 1) for row in rows])
        assert np.array_equal(_line_fits(x, rows), expected)  # equal, not close


def test_a_decision_uses_signals_computed_ahead_only_for_its_own_parameters() -> None:
    closes = [100 + (k % 7) * 0.5 + k * 0.1 for k in range(40)]
    params = DecisionParams.from_settings(Settings(), StrategyParams())
    other = DecisionParams.from_settings(Settings(), StrategyParams(momentum=MomentumParams(lookback=10)))
    marker = Signal("momentum", "S", 0.123, "computed ahead")
    ahead = PriceSignals(params.strategy.momentum, params.strategy.mean_reversion, {"S": (marker,)})
    market = MarketView({}, {"S": closes}, {}, {}, ahead)
    assert price_signals(market, "S", closes, params) == [marker]
    computed = [
        momentum(closes, "S", other.strategy.momentum),
        mean_reversion(closes, "S", other.strategy.mean_reversion),
    ]
    assert price_signals(market, "S", closes, other) == [s for s in computed if s is not None]
    assert market == MarketView({}, {"S": closes}, {}, {})  # a cache: not part of what the view is
