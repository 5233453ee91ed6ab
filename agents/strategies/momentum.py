"""Momentum (trend following): the slope of log price over a lookback, scaled by how clean the trend is.

strength = tanh(annualisation-free t-like ratio) * R², where the slope is the least-squares slope of log closes per bar,
normalised by the per-bar volatility of returns, and R² of that fit is the trend quality: a steady climb gives a strong
BUY, the same net move through noise a weak one.

``lazy_momentum_at_ends`` gives ``momentum`` of every window of one close series at once (a replay computes a whole
window's signals when it loads it): the same numpy operations on rows of a 2-D array, and the same least-squares
solver (LAPACK ``gelsd``, one call per row), so every signal is bit-for-bit the one ``momentum`` gives (tests keep
them equal).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.strategies.windows import LazySignals, lazy_signals_at_ends
from alphaloom.domain import Signal

NAME = "momentum"

_umath_linalg: Any
try:  # the gufunc np.linalg.lstsq (and so np.polyfit) calls, which solves a stack of problems one by one
    from numpy.linalg import _umath_linalg
except ImportError:  # pragma: no cover - a numpy without it: np.polyfit row by row
    _umath_linalg = None


@dataclass(frozen=True, slots=True)
class MomentumParams:
    lookback: int = 24
    scale: float = 0.5  # slope in volatility units per bar that maps to tanh(1)


def momentum(closes: Sequence[float], symbol: str, params: MomentumParams = MomentumParams()) -> Signal | None:
    """A signal from the last ``lookback`` closes (oldest first); None with fewer closes or non-positive prices."""
    if len(closes) < params.lookback or params.lookback < 3:
        return None
    prices = np.asarray(closes[-params.lookback :], dtype=float)
    if not np.all(np.isfinite(prices)) or np.any(prices <= 0):
        return None
    log_prices = np.log(prices)
    x = np.arange(len(log_prices), dtype=float)
    slope, intercept = np.polyfit(x, log_prices, 1)
    fitted = slope * x + intercept
    total = float(np.sum((log_prices - log_prices.mean()) ** 2))
    residual = float(np.sum((log_prices - fitted) ** 2))
    vol = float(np.std(np.diff(log_prices), ddof=1))
    return _signal(symbol, params, slope, total, residual, vol)


def _signal(symbol: str, params: MomentumParams, slope: float, total: float, residual: float, vol: float) -> Signal:
    strength, r_squared = _strength(params, slope, total, residual, vol)
    return Signal(
        NAME,
        symbol,
        strength,
        f"slope {slope:+.5f}/bar over {params.lookback} bars, {slope / vol if vol else 0:+.2f} vol units, "
        f"R² {r_squared:.2f}",
    )


def _strength(params: MomentumParams, slope: float, total: float, residual: float, vol: float) -> tuple[float, float]:
    """(the signal's strength, the fit's R²)."""
    r_squared = 0.0 if total == 0 else max(0.0, 1.0 - residual / total)
    if vol == 0 or not math.isfinite(vol):
        strength = 0.0 if slope == 0 else math.copysign(r_squared, slope)
    else:
        strength = math.tanh(slope / vol / params.scale) * r_squared
    return max(-1.0, min(1.0, strength)), r_squared


def _line_fits(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(slope, intercept) of each row against ``x``, as ``np.polyfit(x, row, 1)`` computes them."""
    if _umath_linalg is None:  # pragma: no cover
        return np.array([np.polyfit(x, row, 1) for row in rows]).reshape(len(rows), 2)
    lhs = np.vander(x, 2)  # np.polyfit's steps: the scaled Vandermonde matrix, rcond = len(x) * eps
    scale = np.sqrt((lhs * lhs).sum(axis=0))
    lhs /= scale
    rcond = len(x) * np.finfo(x.dtype).eps
    with np.errstate(over="ignore", divide="ignore", under="ignore", invalid="ignore"):
        solved = _umath_linalg.lstsq(lhs, rows[:, :, np.newaxis], rcond, signature="ddd->ddid")[0]
    fitted: np.ndarray = (solved[:, :, 0].T / scale[:, np.newaxis]).T
    return fitted


def _usable(windows: np.ndarray) -> np.ndarray:
    """Windows of finite, positive prices (a window with a bad price gives no signal: ``momentum`` is None)."""
    usable: np.ndarray = np.isfinite(windows).all(axis=1) & ~(windows <= 0).any(axis=1)
    return usable


def lazy_momentum_at_ends(
    closes: Sequence[float], symbol: str, params: MomentumParams, history: int, first: int = 0
) -> LazySignals:
    """``momentum(closes[max(0, j - history):j], symbol, params)`` for every ``j`` in ``[first, len(closes)]``, as
    ``LazySignals``: the strengths computed, each signal built when first read."""

    def strengths(windows: np.ndarray) -> tuple[list[float], Callable[[int], Signal]]:
        arrays = _window_arrays(windows, params)
        fits = tuple(column.tolist() for column in arrays)

        def build(k: int) -> Signal:
            return _signal(symbol, params, *(column[k] for column in fits))

        return _window_strengths(params, *arrays), build

    return lazy_signals_at_ends(closes, params.lookback, minimum=3, history=history, first=first, usable=_usable,
                                strengths=strengths)  # fmt: skip


def _window_strengths(
    params: MomentumParams, slopes: np.ndarray, totals: np.ndarray, residuals: np.ndarray, vols: np.ndarray
) -> list[float]:
    """``_strength`` of each row at once: the same IEEE double operations on arrays, each ``max``/``min`` as the
    comparison Python's makes (NaN included), ``tanh`` math's."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        fit = 1.0 - residuals / np.where(totals == 0, 1.0, totals)
        r_squared = np.where(totals == 0, 0.0, np.where(fit > 0.0, fit, 0.0))
        flat = (vols == 0) | ~np.isfinite(vols)
        ratios = np.where(flat, 0.0, slopes / np.where(flat, 1.0, vols) / params.scale)
    tanh = math.tanh
    trended = np.array([tanh(ratio) for ratio in ratios.tolist()], dtype=float) * r_squared
    strength = np.where(flat, np.where(slopes == 0, 0.0, np.copysign(r_squared, slopes)), trended)
    strength = np.where(strength < 1.0, strength, 1.0)
    clamped: list[float] = np.where(strength > -1.0, strength, -1.0).tolist()
    return clamped


def _window_arrays(windows: np.ndarray, params: MomentumParams) -> tuple[np.ndarray, ...]:
    """The slopes, totals, residuals and vols of the rows of ``windows``, as ``momentum`` hands them to ``_signal``
    (the same doubles, as arrays)."""
    log_prices = np.log(windows)
    x = np.arange(params.lookback, dtype=float)
    fits = _line_fits(x, log_prices)
    slopes, intercepts = fits[:, 0], fits[:, 1]
    fitted = slopes[:, np.newaxis] * x + intercepts[:, np.newaxis]
    totals = np.sum((log_prices - log_prices.mean(axis=1, keepdims=True)) ** 2, axis=1)
    residuals = np.sum((log_prices - fitted) ** 2, axis=1)
    vols = np.std(np.diff(log_prices, axis=1), axis=1, ddof=1)
    return slopes, totals, residuals, vols
