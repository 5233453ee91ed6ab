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
