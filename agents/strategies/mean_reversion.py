"""Mean reversion: fade a close that is far from its rolling mean (z-score / Bollinger band position).

z = (close - mean) / std over ``window`` closes. Inside ``entry_z`` there is no view (strength 0); beyond it the
strength grows linearly, opposite to z, reaching ±1 at ``full_z``.

``mean_reversion_at_ends`` gives ``mean_reversion`` of every window of one close series at once (a replay computes a
whole window's signals when it loads it), with the same numpy operations on rows of a 2-D array: bit-for-bit the same
signals (tests keep them equal).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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
    excess = max(0.0, abs(z) - params.entry_z) / max(1e-12, params.full_z - params.entry_z)
    strength = -min(1.0, excess) * (1 if z > 0 else -1)
    band = "above the upper" if z >= params.entry_z else "below the lower" if z <= -params.entry_z else "inside the"
    return Signal(NAME, symbol, strength, f"z-score {z:+.2f} over {params.window} bars, {band} band")


def mean_reversion_at_ends(
    closes: Sequence[float], symbol: str, params: MeanReversionParams, history: int, first: int = 0
) -> list[Signal | None]:
    """``mean_reversion(closes[max(0, j - history):j], symbol, params)`` for every ``j`` in ``[first, len(closes)]``."""
    n, window = len(closes), params.window
    found: list[Signal | None] = [None] * (n + 1 - first)
    start = max(first, window) if history >= window >= 2 else n + 1  # the first end with a full window
    if start > n:
        return found
    series = np.asarray(closes, dtype=float)
    values = np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(series, window)[start - window :])
    usable = np.isfinite(values).all(axis=1)
    if not usable.all():  # a window with a non-finite close gives no signal (zscore: None)
        values = np.ascontiguousarray(values[usable])
    if not len(values):
        return found
    stds = values.std(axis=1)
    stretches = values[:, -1] - values.mean(axis=1)
    ends = np.flatnonzero(usable) + start
    for k, j in enumerate(ends.tolist()):
        std = float(stds[k])
        z = 0.0 if std == 0 else float(stretches[k] / std)
        found[j - first] = _signal(z, symbol, params)
    return found
