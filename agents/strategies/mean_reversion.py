"""Mean reversion: fade a close that is far from its rolling mean (z-score / Bollinger band position).

z = (close - mean) / std over ``window`` closes. Inside ``entry_z`` there is no view (strength 0); beyond it the
strength grows linearly, opposite to z, reaching ±1 at ``full_z``.
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
    if z is None:
        return None
    excess = max(0.0, abs(z) - params.entry_z) / max(1e-12, params.full_z - params.entry_z)
    strength = -min(1.0, excess) * (1 if z > 0 else -1)
    band = "above the upper" if z >= params.entry_z else "below the lower" if z <= -params.entry_z else "inside the"
    return Signal(NAME, symbol, strength, f"z-score {z:+.2f} over {params.window} bars, {band} band")
