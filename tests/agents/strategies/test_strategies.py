"""Strategies: pure functions with hand-checkable inputs (no database)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.strategies import (
    MarketMakingParams,
    MeanReversionParams,
    MomentumParams,
    make_quotes,
    mean_reversion,
    momentum,
    pairs_signal,
    sentiment_shock,
)
from agents.strategies.mean_reversion import zscore


def test_momentum_steady_uptrend_is_strong_and_noisy_trend_weaker() -> None:
    rng = np.random.default_rng(3)
    steady = list(100 * np.exp(0.01 * np.arange(24) + rng.normal(0, 0.001, 24)))
    noisy = list(100 * np.exp(0.01 * np.arange(24) + rng.normal(0, 0.03, 24)))
    strong, weak = momentum(steady, "A"), momentum(noisy, "A")
    assert strong is not None and weak is not None
    assert strong.strength > 0.8
    assert 0 <= weak.strength < strong.strength


def test_momentum_downtrend_is_negative_and_short_history_abstains() -> None:
    down = momentum([100 - i for i in range(30)], "A")
    assert down is not None and down.strength < -0.8
    assert momentum([100.0] * 5, "A", MomentumParams(lookback=24)) is None
    flat = momentum([100.0] * 24, "A")
    assert flat is not None and flat.strength == 0.0


def test_mean_reversion_fades_a_stretch_beyond_the_band() -> None:
    closes = [100.0, 101.0] * 10 + [110.0]
    z = zscore(closes, 20)
    assert z is not None and z > 3
    signal = mean_reversion(closes, "A")
    assert signal is not None and signal.strength == -1.0 and "above the upper band" in signal.reason
    inside = mean_reversion([100.0, 101.0] * 10, "A")
    assert inside is not None and inside.strength == 0.0
    # z = -2 with entry 1 and full 3 -> half strength, buying
    params = MeanReversionParams(window=5, entry_z=1.0, full_z=3.0)
    values = [1.0, 1.0, 1.0, 1.0, -4.0 + 1e-9]
    assert zscore(values, 5) == pytest.approx(-2.0)
    assert mean_reversion(values, "A", params).strength == pytest.approx(0.5)


def _cointegrated(n: int = 300, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    log_x = np.log(50) + np.cumsum(rng.normal(0, 0.03, n))
    spread = np.zeros(n)
    for i in range(1, n):  # a mean-reverting AR(1) spread
        spread[i] = 0.7 * spread[i - 1] + rng.normal(0, 0.01)
    log_y = 0.3 + 1.5 * log_x + spread
    return np.exp(log_y), np.exp(log_x)


def test_pairs_finds_the_hedge_ratio_and_trades_the_spread() -> None:
    y, x = _cointegrated()
    state = pairs_signal(list(y), list(x), "Y", "X")
    assert state is not None and state.cointegrated and state.pvalue < 0.05
    assert state.hedge_ratio == pytest.approx(1.5, abs=0.05)
    y_up = y.copy()
    y_up[-1] *= math.exp(0.05)  # a 5% jump of y: the spread is stretched high -> short the spread
    stretched = pairs_signal(list(y_up), list(x), "Y", "X")
    assert stretched is not None and stretched.position == "short_spread"
    assert stretched.signal is not None and stretched.signal.strength < 0


def test_pairs_independent_walks_do_not_trade() -> None:
    rng = np.random.default_rng(5)
    y = np.exp(np.cumsum(rng.normal(0, 0.02, 300)))
    x = np.exp(np.cumsum(rng.normal(0, 0.02, 300)))
    state = pairs_signal(list(y), list(x), "Y", "X")
    assert state is not None and not state.cointegrated and state.signal is None
    assert pairs_signal([1.0] * 10, [1.0] * 10, "Y", "X") is None


def test_event_driven_detects_a_sentiment_shock() -> None:
    shock = sentiment_shock([0.0, 0.05, -0.05, 0.0, -0.9], "A")
    assert shock is not None and shock.strength < -0.5 and "shock" in shock.reason
    calm = sentiment_shock([0.1, 0.2, 0.15], "A")
    assert calm is not None and calm.strength == 0.0
    assert sentiment_shock([], "A") is None


def test_market_making_spread_from_volatility_and_inventory_skew() -> None:
    flat = make_quotes(100.0, 0.01, 0.0, "A")
    assert flat.bid == pytest.approx(99.0) and flat.ask == pytest.approx(101.0)
    long = make_quotes(100.0, 0.01, 1.0, "A", MarketMakingParams(skew=0.5, max_inventory=1.0))
    assert long.reservation == pytest.approx(99.5)  # long inventory -> quotes lean lower
    assert long.ask < flat.ask and long.bid < flat.bid and long.signal.strength == pytest.approx(-0.5)
    calm = make_quotes(100.0, 0.0, 0.0, "A")
    assert calm.ask - calm.bid == pytest.approx(0.1)  # the 5 bps floor on each side
    with pytest.raises(ValueError, match="mid"):
        make_quotes(0.0, 0.01, 0.0, "A")
