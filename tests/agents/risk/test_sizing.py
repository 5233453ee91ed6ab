"""Choosing an order's notional by the sizing mode (fixed, fractional Kelly, volatility target), hand-worked."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from agents.risk.sizing import SizingParams, choose_notional, trade_stats


def _params(mode: str, **kw: object) -> SizingParams:
    base = {"mode": mode, "order_notional": D(5000), "max_order_notional": D(20000), "kelly_fraction": D("0.25"),
            "kelly_cap": D("0.2"), "target_volatility": 0.04, "min_trades": 4}  # fmt: skip
    return SizingParams(**{**base, **kw})  # type: ignore[arg-type]


def test_trade_stats_win_rate_and_payoff() -> None:
    stats = trade_stats([0.5, 0.5, 0.5, -0.25, 0.0])
    # 3 wins of 5 trades; payoff = mean win 0.5 / mean loss 0.25 = 2
    assert (stats.trades, stats.wins, stats.losses, stats.win_rate, stats.payoff) == (5, 3, 1, 0.6, 2.0)
    assert trade_stats([0.1, 0.2]).payoff is None  # no loss yet: payoff not estimable


def test_kelly_sizes_from_win_rate_and_payoff_and_is_capped() -> None:
    stats = trade_stats([0.5, 0.5, 0.5, -0.25])  # p = 0.75, b = 2: f* = 0.75 - 0.25 / 2 = 0.625
    choice = choose_notional(_params("kelly"), equity=D(100000), stats=stats, bar_volatility=None, bars_per_year=1)
    # a quarter Kelly: 0.15625 of 100000 equity (under the 0.2 cap)
    assert choice.notional == D("15625.00")
    assert choice.numbers["full_kelly"] == "0.625000" and choice.numbers["kelly_share"] == "0.156250"
    assert choice.numbers["source"] == "kelly" and choice.numbers["win_rate"] == "0.750000"
    capped = choose_notional(_params("kelly", kelly_cap=D("0.1")), equity=D(100000), stats=stats,
                             bar_volatility=None, bars_per_year=1)  # fmt: skip
    assert capped.notional == D("10000.00")  # the Kelly cap: 0.1 of equity
    hard = choose_notional(_params("kelly", max_order_notional=D(8000)), equity=D(100000), stats=stats,
                           bar_volatility=None, bars_per_year=1)  # fmt: skip
    assert hard.notional == D(8000) and hard.numbers["uncapped_notional"] == "15625.00"


def test_kelly_without_enough_trades_uses_the_fixed_notional_and_a_negative_edge_sizes_zero() -> None:
    few = trade_stats([0.5, -0.25, 0.5])
    assert choose_notional(_params("kelly"), equity=D(100000), stats=few, bar_volatility=None,
                           bars_per_year=1).notional == D(5000)  # fmt: skip
    losing = trade_stats([0.1, -0.2, -0.2, -0.2])  # p = 0.25, b = 0.5: f* = 0.25 - 0.75 / 0.5 < 0 -> 0
    assert choose_notional(_params("kelly"), equity=D(100000), stats=losing, bar_volatility=None,
                           bars_per_year=1).notional == D(0)  # fmt: skip


def test_volatility_target_and_the_smaller_of_both() -> None:
    # bar volatility 0.01 over 10000 bars a year: 0.01 * sqrt(10000) = 1.0 annualised; 0.04 target -> 4% of equity
    choice = choose_notional(_params("vol_target"), equity=D(100000), stats=trade_stats([]), bar_volatility=0.01,
                             bars_per_year=10000)  # fmt: skip
    assert choice.notional == D("4000.00") and choice.numbers["annual_volatility"] == "1.000000"
    both = choose_notional(_params("kelly_vol_target"), equity=D(100000), stats=trade_stats([0.5, 0.5, 0.5, -0.25]),
                           bar_volatility=0.01, bars_per_year=10000)  # fmt: skip
    assert both.notional == D("4000.00") and both.numbers["source"] == "vol_target"  # min(15625, 4000)
    unmeasured = choose_notional(_params("vol_target"), equity=D(100000), stats=trade_stats([]), bar_volatility=None,
                                 bars_per_year=10000)  # fmt: skip
    assert unmeasured.notional == D(5000)


def test_an_unknown_sizing_mode_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"sizing mode must be one of .*'martingale'"):
        _params("martingale")
