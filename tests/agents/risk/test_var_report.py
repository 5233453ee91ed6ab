"""``var_report`` (the P&L sorted once, its moments taken once) equals, bit for bit, what the one-figure functions give
per confidence, as it was computed before: each historical figure from its own sort, each parametric one from its own
mean and deviation."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from agents.risk.var import CONFIDENCES, historical_cvar, historical_var, portfolio_pnl, var_report


def _reference(returns: np.ndarray, exposures: np.ndarray, bars_per_day: float) -> tuple[dict, dict]:
    pnl = portfolio_pnl(returns, exposures)
    scale = math.sqrt(bars_per_day)
    var, cvar = {}, {}
    for c in CONFIDENCES:
        key = f"{round(c * 100)}"
        var[f"historical_{key}"] = historical_var(pnl, c) * scale
        cvar[f"historical_{key}"] = historical_cvar(pnl, c) * scale
        mu, sigma = float(pnl.mean()), float(pnl.std(ddof=1)) if len(pnl) > 1 else 0.0
        z = NormalDist().inv_cdf(1 - c)
        var[f"parametric_{key}"] = -(mu * bars_per_day + z * sigma * scale)
        cvar[f"parametric_{key}"] = -(mu * bars_per_day - sigma * scale * NormalDist().pdf(z) / (1 - c))
    return var, cvar


@pytest.mark.parametrize("seed", range(20))
def test_var_report_equals_the_figures_computed_one_by_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bars, assets = int(rng.integers(1, 300)), int(rng.integers(1, 12))
    returns = rng.normal(0, 0.02, (bars, assets))
    returns[rng.random((bars, assets)) < 0.1] = np.nan
    exposures = rng.uniform(-5000, 20000, assets)
    for bars_per_day in (1.0, 24.0, 1440.0, 6.5):
        report = var_report(returns, exposures, bars_per_day=bars_per_day)
        var, cvar = _reference(returns, exposures, bars_per_day)
        assert list(report.var) == list(var) and list(report.cvar) == list(cvar)
        for key in var:
            assert np.float64(report.var[key]).tobytes() == np.float64(var[key]).tobytes(), key
            assert np.float64(report.cvar[key]).tobytes() == np.float64(cvar[key]).tobytes(), key
        assert report.observations == bars


def test_var_report_of_no_history_is_refused_as_before() -> None:
    with pytest.raises(ValueError, match="at least one observation"):
        var_report(np.empty((0, 2)), np.array([1.0, 2.0]))


@pytest.mark.parametrize("seed", range(20))
def test_portfolio_pnl_of_a_finite_history_is_the_product_nan_to_num_gave(seed: int) -> None:
    """The finite history skips ``nan_to_num`` (its own values): the P&L stays the product it gave, bit for bit, in
    the layout a replay hands over (bars x symbols, column-major, read-only); a history with NaN or infinities still
    goes through it."""
    rng = np.random.default_rng(seed)
    bars, assets = int(rng.integers(1, 300)), int(rng.integers(1, 12))
    exposures = rng.uniform(-5000, 20000, assets)
    finite = np.asfortranarray(rng.normal(0, 0.02, (bars, assets)))
    finite.flags.writeable = False
    gapped = rng.normal(0, 0.02, (bars, assets))
    gapped[rng.random((bars, assets)) < 0.1] = np.nan
    for returns in (finite, gapped, finite[:, 0]):
        columns = returns[:, None] if returns.ndim == 1 else returns
        expected = np.nan_to_num(columns, nan=0.0) @ exposures[: columns.shape[1]]
        assert portfolio_pnl(returns, exposures[: columns.shape[1]]).tobytes() == expected.tobytes()
    infinite = np.array(finite)
    infinite[0, 0] = np.inf  # nan_to_num makes it the largest float, which a zero exposure zeroes (inf x 0 is NaN)
    flat = np.array([0.0, *exposures[1:]])
    pnl = portfolio_pnl(infinite, flat)
    assert np.isfinite(pnl).all() and pnl.tobytes() == (np.nan_to_num(infinite, nan=0.0) @ flat).tobytes()


def test_the_moments_var_report_takes_are_numpys_bit_for_bit() -> None:
    """``var_report``'s mean and deviation (numpy's sums without the methods' wrappers) equal ``mean()`` and
    ``std(ddof=1)`` over vectors of every length the pairwise sum splits differently, at several magnitudes."""
    from agents.risk.var import _deviation, _mean

    rng = np.random.default_rng(7)
    for n in [*range(2, 40), 127, 128, 129, 200, 257, 1000, 2049]:
        for magnitude in (1e-6, 1.0, 3e4, 1e9):
            values = rng.normal(0.3, 1.0, n) * magnitude
            assert np.float64(_mean(values)).tobytes() == np.float64(values.mean()).tobytes(), (n, magnitude)
            assert np.float64(_mean(values[:5])).tobytes() == np.float64(values[:5].mean()).tobytes()
            assert np.float64(_deviation(values)).tobytes() == np.float64(values.std(ddof=1)).tobytes(), n


@pytest.mark.parametrize("seed", range(10))
def test_the_var_check_values_the_exposures_after_the_order_as_before(seed: int) -> None:
    """``portfolio_var`` reads the exposures after the order as one float per symbol of the history (0 for a symbol
    without one; one outside the history left out): its figures are those of the vector built symbol by symbol."""
    from decimal import Decimal

    from agents.risk.portfolio import PortfolioContext, ReturnsInputs, RiskLimits, _exposures_after, _var_check
    from alphaloom.domain import AccountId, DecisionId, OrderIntent, Side, Symbol

    rng = np.random.default_rng(seed)
    symbols = tuple(f"S{k}/USD" for k in range(8))
    returns = np.asfortranarray(rng.normal(0, 0.02, (60, len(symbols))))
    held = rng.choice(len(symbols), int(rng.integers(0, 5)), replace=False)
    exposures = {symbols[k]: Decimal(str(round(float(rng.uniform(-3000, 9000)), 4))) for k in held}
    exposures |= {"ELSE/USD": Decimal("321.5")} | ({symbols[7]: Decimal("-0.00")} if seed % 2 else {})
    ctx = PortfolioContext(Decimal("100523.12"), Decimal("101000"), exposures, returns=None, bars_per_day=24.0)
    inputs = ReturnsInputs(symbols, returns)
    intent = OrderIntent(DecisionId("d"), AccountId("a"), Symbol(symbols[int(rng.integers(8))]), Side.BUY,
                         Decimal("0.1234"), Decimal("40123.45"))  # fmt: skip
    rate = Decimal("1.0834")
    verdict = _var_check(intent, ctx, RiskLimits(), rate, inputs)
    after = _exposures_after(exposures, intent, rate)
    expected = var_report(returns, np.array([float(after.get(s, Decimal(0))) for s in symbols]), bars_per_day=24.0)
    assert {k: v for k, v in verdict.numbers.items() if k != "limit"} == expected.as_numbers()
    assert f"{expected.var['historical_99']:.2f}" in verdict.reason
