"""Metrics against hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from alphaloom.reporting.performance import (
    attribution,
    buy_and_hold,
    compute_metrics,
    drawdown,
    sortino,
    trade_statistics,
)

IDX = pd.date_range("2025-01-01", periods=6, freq="D", tz="UTC")


def test_drawdown_depth_and_longest_stretch_under_water() -> None:
    equity = pd.Series([100, 120, 90, 110, 130, 117], index=IDX)
    dd = drawdown(equity)
    assert dd.max_drawdown == pytest.approx(90 / 120 - 1)  # -25 %
    assert (dd.peak_at, dd.trough_at) == (IDX[1], IDX[2])
    assert dd.longest_bars == 2  # bars 2 and 3 are below the 120 peak; bar 5 is one bar below 130


def test_returns_sharpe_sortino_calmar_by_hand() -> None:
    equity = pd.Series([100.0, 110.0, 99.0, 108.9], index=IDX[:4])
    # returns: +10 %, -10 %, +10 %
    m = compute_metrics(equity, periods_per_year=3)
    assert m.total_return == pytest.approx(0.089)
    assert m.annualised_return == pytest.approx(0.089)  # 3 periods = one year here
    r = np.array([0.1, -0.1, 0.1])
    assert m.volatility == pytest.approx(r.std(ddof=1) * math.sqrt(3))
    assert m.sharpe == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(3))
    assert m.sortino == pytest.approx(r.mean() / math.sqrt(0.01 / 3) * math.sqrt(3))
    assert m.max_drawdown == pytest.approx(-0.1)
    assert m.calmar == pytest.approx(0.089 / 0.1)


def test_trade_statistics_by_hand() -> None:
    win_rate, payoff, profit_factor = trade_statistics([30.0, -10.0, 20.0, -20.0])
    assert win_rate == 0.5
    assert payoff == pytest.approx(25 / 15)
    assert profit_factor == pytest.approx(50 / 30)
    assert trade_statistics([]) == (0.0, 0.0, 0.0)
    assert trade_statistics([5.0])[2] == math.inf


def test_sortino_is_zero_without_losses_and_turnover_is_annualised() -> None:
    assert sortino(pd.Series([0.01, 0.02]), 252) == 0.0
    equity = pd.Series([100.0] * 5, index=IDX[:5])
    m = compute_metrics(equity, periods_per_year=4, traded_notional=200.0, exposure_fraction=0.5)
    assert m.turnover == pytest.approx(2.0)  # 200 traded on 100 equity over exactly one year
    assert m.exposure == 0.5 and m.sharpe == 0.0


def test_attribution_and_buy_and_hold() -> None:
    trades = pd.DataFrame({"symbol": ["A", "B", "A"], "pnl": [10.0, -4.0, 5.0]})
    assert attribution(trades, "symbol").to_dict() == {"A": 15.0, "B": -4.0}
    closes = pd.DataFrame({"A": [10.0, 20.0], "B": [50.0, 25.0]}, index=IDX[:2])
    assert buy_and_hold(closes, 1000.0).tolist() == [1000.0, 500 * 2 + 500 * 0.5]
