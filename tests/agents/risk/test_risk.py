"""Risk maths and portfolio checks against hand-worked numbers (pure: no database)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from agents.risk import PortfolioContext, RiskLimits, adjusted_intent, all_approved, check_intent, check_portfolio
from agents.risk.correlation import cluster_of, correlation_matrix
from agents.risk.drawdown import drawdown_state
from agents.risk.sizing import (
    exit_levels,
    exit_triggered,
    fractional_kelly,
    kelly_fraction,
    vol_target_notional,
)
from agents.risk.var import (
    historical_cvar,
    historical_var,
    parametric_cvar,
    parametric_var,
    portfolio_pnl,
    var_report,
)
from agents.risk.verdict import RiskVerdict
from alphaloom.domain import DecisionId, OrderIntent, Side
from alphaloom.fx import QuoteRate
from alphaloom.guards import HardLimits
from alphaloom.ops.kill_switch import KillSwitchState

D = Decimal
DID = DecisionId("d-risk")


def _buy(symbol: str, quantity: str, price: str = "100") -> OrderIntent:
    return OrderIntent(DID, "acct", symbol, Side.BUY, D(quantity), D(price))


# --- VaR / CVaR ------------------------------------------------------------------------------------------------------


def test_historical_var_and_cvar_take_the_k_worst_observations() -> None:
    pnl = np.arange(-50, 50, dtype=float)  # -50 .. 49, 100 observations
    assert historical_var(pnl, 0.95) == 46.0  # k = 5: the 5th worst is -46
    assert historical_cvar(pnl, 0.95) == 48.0  # mean of -50..-46
    assert historical_var(pnl, 0.99) == 50.0 and historical_cvar(pnl, 0.99) == 50.0  # k = 1


def test_parametric_var_and_cvar_match_the_normal_formulas() -> None:
    pnl = np.array([-2.0, 0.0, 2.0, 4.0])  # mean 1, sample sd sqrt(20/3) = 2.581989
    # z(5%) = -1.644854: VaR = -(1 - 1.644854 * 2.581989) = 3.246994
    assert parametric_var(pnl, 0.95) == pytest.approx(3.246994, abs=1e-5)
    # phi(1.644854) = 0.103136: CVaR = -(1 - 2.581989 * 0.103136 / 0.05) = 4.325920
    assert parametric_cvar(pnl, 0.95) == pytest.approx(4.325920, abs=1e-4)
    # z(1%) = -2.326348: VaR99 = 2.326348 * 2.581989 - 1 = 5.006609
    assert parametric_var(pnl, 0.99) == pytest.approx(5.006609, abs=1e-5)


def test_portfolio_pnl_and_one_day_scaling() -> None:
    returns = np.array([[0.01, -0.02], [-0.03, 0.04]])
    assert portfolio_pnl(returns, np.array([1000.0, 500.0])).tolist() == pytest.approx([0.0, -10.0])
    history = np.linspace(-0.05, 0.049, 100)[:, None]  # one asset, returns -5% .. 4.9%
    hourly = var_report(history, np.array([1000.0]), bars_per_day=1)
    daily = var_report(history, np.array([1000.0]), bars_per_day=24)
    assert hourly.var["historical_99"] == pytest.approx(50.0)  # worst: -5% of 1000
    assert daily.var["historical_99"] == pytest.approx(50.0 * 24**0.5)  # square-root-of-time
    assert set(daily.as_numbers()) >= {"var_historical_95", "var_parametric_99", "cvar_historical_99"}
    with pytest.raises(ValueError, match="assets"):
        portfolio_pnl(returns, np.array([1.0]))


# --- sizing ----------------------------------------------------------------------------------------------------------


def test_kelly_fraction_fractional_and_capped() -> None:
    assert kelly_fraction(0.6, 2.0) == pytest.approx(0.4)  # 0.6 - 0.4 / 2
    assert fractional_kelly(0.6, 2.0, fraction=0.25, cap=0.2) == pytest.approx(0.1)
    assert fractional_kelly(0.6, 2.0, fraction=0.25, cap=0.05) == pytest.approx(0.05)  # capped
    assert kelly_fraction(0.4, 1.0) == 0.0  # negative edge: no position, never a short
    with pytest.raises(ValueError, match="payoff"):
        kelly_fraction(0.5, 0)


def test_volatility_target_and_exit_levels() -> None:
    assert vol_target_notional(D(100000), 0.2, 0.8) == D(25000)
    assert vol_target_notional(D(100000), 0.2, 0.0) == D(0)
    levels = exit_levels(D(100), Side.BUY, stop_loss_pct=D(5), take_profit_pct=D(10))
    assert (levels.stop_price, levels.take_profit_price) == (D(95), D(110))
    assert exit_triggered(levels, low=D(94), high=D(111)) == "stop"  # both touched: assume the stop
    assert exit_triggered(levels, low=D(96), high=D(110)) == "take_profit"
    assert exit_triggered(levels, low=D(96), high=D(109)) is None


# --- drawdown, exposure, correlation ---------------------------------------------------------------------------------


def test_drawdown_controller_reduces_then_halts() -> None:
    kwargs = {"reduce_pct": D(10), "halt_pct": D(20), "reduce_factor": D("0.5")}
    assert drawdown_state(D(95000), D(100000), **kwargs).level == "normal"
    reduce = drawdown_state(D(88000), D(100000), **kwargs)
    assert (reduce.drawdown_pct, reduce.level, reduce.scale) == (D(12), "reduce", D("0.5"))
    assert drawdown_state(D(79000), D(100000), **kwargs).level == "halt"

    in_reduce = PortfolioContext(equity=D(88000), peak_equity=D(100000))
    [dd] = [
        v
        for v in check_portfolio(_buy("A/USDT", "30"), in_reduce, RiskLimits(), quote_rate=D(1))
        if v.check_name == "drawdown"
    ]
    assert dd.approved and dd.adjusted_quantity == D(15)
    halted = PortfolioContext(equity=D(79000), peak_equity=D(100000))
    assert (
        adjusted_intent(
            _buy("A/USDT", "30"), check_portfolio(_buy("A/USDT", "30"), halted, RiskLimits(), quote_rate=D(1))
        )
        is None
    )


def test_exposure_limits_shrink_to_what_fits_or_deny() -> None:
    ctx = PortfolioContext(equity=D(100000), peak_equity=D(100000), exposures={"A/USDT": D(20000)})
    verdicts = check_portfolio(_buy("A/USDT", "100"), ctx, RiskLimits(), quote_rate=D(1))  # 10000 more; asset cap 25000
    asset = next(v for v in verdicts if v.check_name == "asset_exposure")
    assert asset.approved and asset.adjusted_quantity == D(50)  # room 5000 at 100
    assert asset.numbers == {"used": "20000.00", "order_notional": "10000.00", "limit": "25000.00",
                             "adjusted_quantity": "50"}  # fmt: skip
    assert adjusted_intent(_buy("A/USDT", "100"), verdicts).quantity == D(50)

    full = PortfolioContext(equity=D(100000), peak_equity=D(100000), exposures={"A/USDT": D(25000)})
    denied = [
        v.check_name
        for v in check_portfolio(_buy("A/USDT", "1"), full, RiskLimits(), quote_rate=D(1))
        if not v.approved
    ]
    assert denied == ["asset_exposure"]

    # class: three crypto names at 20000 each = 60000 = the class cap; an equity name still fits (classes as
    # configured, never read from the symbols' spelling)
    crypto = {"A/USDT": D(20000), "B/USDT": D(20000), "C/USDT": D(20000)}
    classes = {"A/USDT": "crypto", "B/USDT": "crypto", "C/USDT": "crypto", "D/USDT": "crypto", "AAPL/USD": "equity"}
    ctx = PortfolioContext(equity=D(100000), peak_equity=D(100000), exposures=crypto, asset_classes=classes)
    assert [
        v.check_name for v in check_portfolio(_buy("D/USDT", "1"), ctx, RiskLimits(), quote_rate=D(1)) if not v.approved
    ] == ["class_exposure"]
    assert all_approved(check_portfolio(_buy("AAPL/USD", "1"), ctx, RiskLimits(), quote_rate=D(1)))
    # gross leverage 1x: 95000 held across classes, 10000 more is shrunk to 5000
    spread = {"A/USDT": D(20000), "B/USDT": D(20000), "X/USD": D(25000), "Y/USD": D(25000), "Z/USD": D(5000)}
    ctx = PortfolioContext(equity=D(100000), peak_equity=D(100000), exposures=spread,
                           asset_classes={"Z/USD": "etf"})  # fmt: skip
    gross = next(
        v
        for v in check_portfolio(_buy("Q/USD", "100"), ctx, RiskLimits(), quote_rate=D(1))
        if v.check_name == "gross_leverage"
    )
    assert gross.adjusted_quantity == D(50)


def _correlated_returns(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    a = rng.normal(0, 0.01, n)
    return pd.DataFrame({"A/USDT": a, "B/USDT": 2 * a, "C/USDT": rng.normal(0, 0.01, n)})


def test_correlation_cluster_limits_exposure_to_assets_that_move_together() -> None:
    returns = _correlated_returns()
    corr = correlation_matrix(returns)
    assert corr.loc["A/USDT", "B/USDT"] == pytest.approx(1.0)
    assert cluster_of("A/USDT", corr, 0.8) == {"A/USDT", "B/USDT"}
    assert cluster_of("C/USDT", corr, 0.8) == {"C/USDT"}
    assert cluster_of("NEW/USDT", corr, 0.8) == {"NEW/USDT"}

    ctx = PortfolioContext(equity=D(100000), peak_equity=D(100000), exposures={"B/USDT": D(35000)}, returns=returns)
    limits = RiskLimits(max_asset_exposure_pct=D(50), max_class_exposure_pct=D(100))
    cluster = next(
        v
        for v in check_portfolio(_buy("A/USDT", "100"), ctx, limits, quote_rate=D(1))
        if v.check_name == "correlation_cluster"
    )
    assert cluster.adjusted_quantity == D(50) and cluster.numbers["cluster"] == "A/USDT,B/USDT"  # room 5000 of 40000
    independent = next(
        v
        for v in check_portfolio(_buy("C/USDT", "100"), ctx, limits, quote_rate=D(1))
        if v.check_name == "correlation_cluster"
    )
    assert independent.approved and independent.adjusted_quantity is None


def test_var_limit_denies_an_order_that_would_push_var_past_the_limit() -> None:
    returns = pd.DataFrame({"A/USDT": np.linspace(-0.10, 0.098, 100)})  # worst bar: -10%
    ctx = PortfolioContext(equity=D(100000), peak_equity=D(100000), returns=returns)
    limits = RiskLimits(max_var_pct=D("1.5"), max_asset_exposure_pct=D(100))  # VaR limit 1500
    ok = next(
        v
        for v in check_portfolio(_buy("A/USDT", "100"), ctx, limits, quote_rate=D(1))
        if v.check_name == "portfolio_var"
    )
    assert ok.approved and ok.numbers["var_historical_99"] == "1000.00"  # 10% of 10000
    too_much = next(
        v
        for v in check_portfolio(_buy("A/USDT", "200"), ctx, limits, quote_rate=D(1))
        if v.check_name == "portfolio_var"
    )
    assert not too_much.approved and too_much.numbers["var_historical_99"] == "2000.00"


def test_sells_pass_portfolio_checks_and_check_intent_appends_them() -> None:
    halted = PortfolioContext(equity=D(50000), peak_equity=D(100000), exposures={"A/USDT": D(30000)})
    sell = OrderIntent(DID, "acct", "A/USDT", Side.SELL, D(300), D(100))
    assert all_approved(check_portfolio(sell, halted, RiskLimits(), quote_rate=D(1)))
    verdicts = check_intent(
        _buy("A/USDT", "10"),
        limits=HardLimits(D(10000), D(20000), D(5)),
        current_quantity=D(0),
        last_price=D(100),
        kill_switch=KillSwitchState(False, "", ""),
        quote_rate=QuoteRate.same("USDT"),
        portfolio=PortfolioContext(equity=D(100000), peak_equity=D(100000)),
    )
    names = [v.check_name for v in verdicts]
    assert names[:5] == ["kill_switch", "long_only", "max_order_notional", "max_position_notional", "price_band"]
    assert {"drawdown", "asset_exposure", "gross_leverage", "correlation_cluster", "portfolio_var"} <= set(names)


def test_adjusted_intent_takes_the_smallest_allowed_quantity() -> None:
    intent = _buy("A/USDT", "100")
    verdicts = [
        RiskVerdict("a", True, "", {}, D(70)),
        RiskVerdict("b", True, "", {}, D(40)),
        RiskVerdict("c", True, ""),
    ]
    assert adjusted_intent(intent, verdicts).quantity == D(40)
    assert adjusted_intent(intent, [*verdicts, RiskVerdict("d", False, "no")]) is None
    assert adjusted_intent(intent, [RiskVerdict("c", True, "")]) is intent
