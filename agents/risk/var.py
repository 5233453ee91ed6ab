"""Value at Risk and Conditional VaR (expected shortfall) of a portfolio. Pure numpy.

Conventions callers can rely on:

- Inputs are per-bar simple returns (``returns[t, i]`` of asset ``i``) and signed exposures in money (market values);
  the portfolio P&L of bar ``t`` is ``returns[t] @ exposures``.
- VaR and CVaR are reported as positive losses in money. Historical VaR at confidence ``c`` over ``n`` observations
  is the ``k``-th worst P&L with ``k = ceil(n * (1 - c))``; historical CVaR is the mean of those ``k`` worst.
- Parametric (normal) VaR is ``-(mu + z * sigma)`` with ``z = Phi^-1(1 - c)`` and the sample standard deviation
  (ddof 1); CVaR is ``-(mu - sigma * phi(z) / (1 - c))``.
- The 1-day horizon is reached from bar P&L by the square-root-of-time rule: both figures scale by
  ``sqrt(bars_per_day)`` (the mean too, by ``bars_per_day``, in the parametric case).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

CONFIDENCES = (0.95, 0.99)


def portfolio_pnl(returns: np.ndarray, exposures: np.ndarray) -> np.ndarray:
    """P&L per bar of holding ``exposures`` (money, per asset) through ``returns`` (bars x assets); NaN counts 0."""
    returns = np.asarray(returns, dtype=float)
    if returns.ndim == 1:
        returns = returns[:, None]
    exposures = np.asarray(exposures, dtype=float).reshape(-1)
    if returns.shape[1] != exposures.shape[0]:
        raise ValueError(f"returns have {returns.shape[1]} assets but exposures {exposures.shape[0]}")
    # a finite history (the usual one) is its own nan_to_num: the same values, without the copy and its passes
    filled = returns if np.isfinite(returns).all() else np.nan_to_num(returns, nan=0.0)
    pnl: np.ndarray = filled @ exposures
    return pnl


@lru_cache(maxsize=256)  # a replay's VaR check asks the same (observations, confidence) at every order
def _tail_count(n: int, confidence: float) -> int:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n < 1:
        raise ValueError("VaR needs at least one observation")
    # round first: 100 * (1 - 0.95) is 5.000000000000004 in binary floating point
    return max(1, math.ceil(round(n * (1 - confidence), 9)))


def historical_var(pnl: np.ndarray, confidence: float) -> float:
    ordered = np.sort(np.asarray(pnl, dtype=float))
    return float(-ordered[_tail_count(len(ordered), confidence) - 1])


def historical_cvar(pnl: np.ndarray, confidence: float) -> float:
    ordered = np.sort(np.asarray(pnl, dtype=float))
    return float(-ordered[: _tail_count(len(ordered), confidence)].mean())


def parametric_var(pnl: np.ndarray, confidence: float) -> float:
    pnl = np.asarray(pnl, dtype=float)
    _tail_count(len(pnl), confidence)
    mu, sigma = float(pnl.mean()), float(pnl.std(ddof=1)) if len(pnl) > 1 else 0.0
    return -(mu + NormalDist().inv_cdf(1 - confidence) * sigma)


def parametric_cvar(pnl: np.ndarray, confidence: float) -> float:
    pnl = np.asarray(pnl, dtype=float)
    _tail_count(len(pnl), confidence)
    mu, sigma = float(pnl.mean()), float(pnl.std(ddof=1)) if len(pnl) > 1 else 0.0
    z = NormalDist().inv_cdf(1 - confidence)
    return -(mu - sigma * NormalDist().pdf(z) / (1 - confidence))


@dataclass(frozen=True, slots=True)
class VarReport:
    """1-day VaR/CVaR in money, keyed ``"historical_95"``, ``"parametric_99"``... (positive = loss)."""

    var: dict[str, float]
    cvar: dict[str, float]
    observations: int

    def as_numbers(self) -> dict[str, str]:
        out = {f"var_{k}": f"{v:.2f}" for k, v in self.var.items()}
        out.update({f"cvar_{k}": f"{v:.2f}" for k, v in self.cvar.items()})
        out["observations"] = str(self.observations)
        return out


def var_report(returns: np.ndarray, exposures: np.ndarray, *, bars_per_day: float = 1.0) -> VarReport:
    """Historical and parametric VaR/CVaR at 95% and 99%, 1 day, of ``exposures`` over the ``returns`` history
    (each equal to ``historical_var``, ``historical_cvar``... of the P&L scaled to a day: the P&L sorted once, its mean
    and deviation taken once)."""
    pnl = portfolio_pnl(returns, exposures)
    scale = math.sqrt(bars_per_day)
    var: dict[str, float] = {}
    cvar: dict[str, float] = {}
    ordered = np.sort(pnl)
    n = len(ordered)
    tails = [_tail_count(n, c) for c in CONFIDENCES]  # raises before any mean of nothing
    mu = _mean(pnl)
    sigma = _deviation(pnl, mu) if n > 1 else 0.0
    for c, tail in zip(CONFIDENCES, tails, strict=True):
        key, z, density = _NORMAL_TAILS[c]
        var[f"historical_{key}"] = float(-ordered[tail - 1]) * scale
        cvar[f"historical_{key}"] = -_mean(ordered[:tail]) * scale
        # parametric: mean scales with time, sigma with its square root
        var[f"parametric_{key}"] = -(mu * bars_per_day + z * sigma * scale)
        cvar[f"parametric_{key}"] = -(mu * bars_per_day - sigma * scale * density / (1 - c))
    return VarReport(var, cvar, len(pnl))


def _mean(values: np.ndarray) -> float:
    """``float(values.mean())`` of a float vector, computed as numpy does (its sum, divided by the count) without
    the method's wrapper (a replay takes three per order it checks)."""
    return float(np.add.reduce(values)) / len(values)


def _deviation(values: np.ndarray, mean: float | None = None) -> float:
    """``float(values.std(ddof=1))`` of a float vector, computed as numpy does: the squared deviations from the mean
    (``_mean``, or ``mean`` when the caller has it) summed, divided by the count less one, and the square root."""
    deviations = np.subtract(values, _mean(values) if mean is None else mean)
    np.square(deviations, out=deviations)
    return math.sqrt(float(np.add.reduce(deviations)) / (len(values) - 1))


# per confidence: its key, the standard normal's quantile of the tail and its density there
_NORMAL_TAILS = {
    c: (f"{round(c * 100)}", NormalDist().inv_cdf(1 - c), NormalDist().pdf(NormalDist().inv_cdf(1 - c)))
    for c in CONFIDENCES
}
