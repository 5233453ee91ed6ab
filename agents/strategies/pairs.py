"""Pairs trading: Engle-Granger cointegration of two log-price series, hedge ratio, spread z-score, entry/exit.

``pairs_signal`` fits log(y) = alpha + beta * log(x) by OLS (statsmodels) over the history, tests the residual with
``statsmodels.tsa.stattools.coint`` and, when the pair is cointegrated at ``max_pvalue``, trades the spread's z-score:
z >= entry_z -> short the spread (sell y, buy beta x): strength -1 scaled; z <= -entry_z -> long the spread; |z| <=
exit_z -> flat (strength 0, exit). The ``Signal`` is for ``y`` (the leg the hedge ratio is expressed against).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from alphaloom.domain import Signal

NAME = "pairs"


@dataclass(frozen=True, slots=True)
class PairsParams:
    min_history: int = 60
    max_pvalue: float = 0.05
    entry_z: float = 2.0
    exit_z: float = 0.5
    full_z: float = 4.0


@dataclass(frozen=True, slots=True)
class PairsState:
    """What the fit found; ``signal`` is None when the pair is not cointegrated (no trade)."""

    hedge_ratio: float
    intercept: float
    pvalue: float
    spread_z: float
    cointegrated: bool
    position: str  # "long_spread", "short_spread", "exit" or "hold"
    signal: Signal | None


def pairs_signal(
    y: Sequence[float], x: Sequence[float], symbol_y: str, symbol_x: str, params: PairsParams = PairsParams()
) -> PairsState | None:
    """None when the series are shorter than ``min_history``, differ in length, or hold non-positive prices."""
    import statsmodels.api as sm
    from statsmodels.tsa.stattools import coint

    if len(y) != len(x) or len(y) < params.min_history:
        return None
    ly, lx = np.log(np.asarray(y, dtype=float)), np.log(np.asarray(x, dtype=float))
    if not (np.all(np.isfinite(ly)) and np.all(np.isfinite(lx))):
        return None
    fit = sm.OLS(ly, sm.add_constant(lx)).fit()
    intercept, beta = float(fit.params[0]), float(fit.params[1])
    spread = ly - (intercept + beta * lx)
    std = float(spread.std())
    z = 0.0 if std == 0 else float(spread[-1] / std)  # OLS residuals have mean zero
    pvalue = float(coint(ly, lx)[1])
    cointegrated = pvalue <= params.max_pvalue
    if not cointegrated:
        return PairsState(beta, intercept, pvalue, z, False, "hold", None)
    if abs(z) >= params.entry_z:
        position = "short_spread" if z > 0 else "long_spread"
        magnitude = min(1.0, 0.5 + 0.5 * (abs(z) - params.entry_z) / max(1e-12, params.full_z - params.entry_z))
        strength = -magnitude if z > 0 else magnitude
    elif abs(z) <= params.exit_z:
        position, strength = "exit", 0.0
    else:
        position, strength = "hold", 0.0
    reason = (
        f"{symbol_y} vs {symbol_x}: hedge ratio {beta:.4f}, Engle-Granger p {pvalue:.3f}, spread z {z:+.2f} -> "
        f"{position}"
    )
    return PairsState(beta, intercept, pvalue, z, True, position, Signal(NAME, symbol_y, strength, reason))
