"""Mean reversion: fade a close that is far from its rolling mean (z-score / Bollinger band position).

z = (close - mean) / std over ``window`` closes. Inside ``entry_z`` there is no view (strength 0); beyond it the
strength grows linearly, opposite to z, reaching ±1 at ``full_z``.

``lazy_mean_reversion_at_ends`` gives ``mean_reversion`` of every window of one close series at once (a replay
computes a whole window's signals when it loads it), with the same numpy operations on rows of a 2-D array:
bit-for-bit the same signals (tests keep them equal).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from agents.strategies.windows import LazySignals, lazy_signals_at_ends
from alphaloom.domain import Signal

NAME = "mean_reversion"


@dataclass(frozen=True, slots=True)
class MeanReversionParams:
    window: int = 20
    entry_z: float = 1.0
    full_z: float = 3.0


def zscore(closes: Sequence[float], window: int) -> float | None:
    """The z-score of the last close against the last ``window`` closes (population std, as Bollinger bands use)."""
    if len(closes) < window or window < 2:
        return None
    values = np.asarray(closes[-window:], dtype=float)
    if not np.all(np.isfinite(values)):
        return None
    std = float(values.std())
    return 0.0 if std == 0 else float((values[-1] - values.mean()) / std)


def mean_reversion(
    closes: Sequence[float], symbol: str, params: MeanReversionParams = MeanReversionParams()
) -> Signal | None:
    """None with fewer than ``window`` closes; otherwise a signal opposite to the stretch beyond ``entry_z``."""
    z = zscore(closes, params.window)
    return None if z is None else _signal(z, symbol, params)


def _signal(z: float, symbol: str, params: MeanReversionParams) -> Signal:
    band = "above the upper" if z >= params.entry_z else "below the lower" if z <= -params.entry_z else "inside the"
    return Signal(NAME, symbol, _strength(z, params), f"z-score {z:+.2f} over {params.window} bars, {band} band")


def _strength(z: float, params: MeanReversionParams) -> float:
    excess = max(0.0, abs(z) - params.entry_z) / max(1e-12, params.full_z - params.entry_z)
    return -min(1.0, excess) * (1 if z > 0 else -1)


def _finite(windows: np.ndarray) -> np.ndarray:
    """Windows of finite closes (a window with a non-finite close gives no signal: ``zscore`` is None)."""
    finite: np.ndarray = np.isfinite(windows).all(axis=1)
    return finite


def lazy_mean_reversion_at_ends(
    closes: Sequence[float], symbol: str, params: MeanReversionParams, history: int, first: int = 0
) -> LazySignals:
    """``mean_reversion(closes[max(0, j - history):j], symbol, params)`` for every ``j`` in ``[first, len(closes)]``,
    as ``LazySignals``: the strengths computed, each signal built when first read."""

    def strengths(windows: np.ndarray) -> tuple[list[float], Callable[[int], Signal]]:
        zs = _window_zscores(windows)

        def build(k: int) -> Signal:
            return _signal(zs[k], symbol, params)

        return _window_strengths(np.array(zs, dtype=float), params), build

    return lazy_signals_at_ends(closes, params.window, minimum=2, history=history, first=first, usable=_finite,
                                strengths=strengths)  # fmt: skip


def _window_strengths(zs: np.ndarray, params: MeanReversionParams) -> list[float]:
    """``_strength`` of each z-score at once: the same IEEE double operations on arrays, each ``max``/``min`` as the
    comparison Python's makes."""
    stretched = np.abs(zs) - params.entry_z
    excess = np.where(stretched > 0.0, stretched, 0.0) / max(1e-12, params.full_z - params.entry_z)
    strengths: list[float] = (-np.where(excess < 1.0, excess, 1.0) * np.where(zs > 0, 1.0, -1.0)).tolist()
    return strengths


def _window_zscores(windows: np.ndarray) -> list[float]:
    """The z-score of each row of ``windows`` (``zscore``'s)."""
    stds = windows.std(axis=1).tolist()
    stretches = (windows[:, -1] - windows.mean(axis=1)).tolist()  # Python floats: the same doubles, the same division
    return [0.0 if std == 0 else stretch / std for stretch, std in zip(stretches, stds, strict=True)]
