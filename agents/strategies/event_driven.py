"""Event-driven: trade a news sentiment shock, i.e. a latest story whose sentiment departs from the recent baseline.

shock = (latest score - baseline mean) / max(baseline std, ``min_std``) over the earlier scores in the window. An event
is a |shock| >= ``shock_z`` with a |latest score| >= ``min_abs_score``; its strength is the latest score scaled by how
far past the threshold the shock is. No stories: None; no shock: a zero-strength signal saying so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from alphaloom.domain import Signal

NAME = "event_driven"


@dataclass(frozen=True, slots=True)
class EventParams:
    shock_z: float = 2.0
    min_abs_score: float = 0.5
    min_std: float = 0.2


def sentiment_shock(scores: Sequence[float], symbol: str, params: EventParams = EventParams()) -> Signal | None:
    """``scores`` are story sentiments in [-1, 1], oldest first; the last one is the candidate event."""
    if not scores:
        return None
    latest, baseline = float(scores[-1]), [float(s) for s in scores[:-1]]
    mean = sum(baseline) / len(baseline) if baseline else 0.0
    std = math.sqrt(sum((s - mean) ** 2 for s in baseline) / len(baseline)) if len(baseline) > 1 else 0.0
    shock = (latest - mean) / max(std, params.min_std)
    if abs(shock) < params.shock_z or abs(latest) < params.min_abs_score:
        return Signal(NAME, symbol, 0.0, f"no event: shock {shock:+.2f} (threshold ±{params.shock_z:g})")
    strength = max(-1.0, min(1.0, latest * min(1.0, abs(shock) / (2 * params.shock_z) + 0.5)))
    return Signal(
        NAME,
        symbol,
        strength,
        f"sentiment shock {shock:+.2f}: latest {latest:+.2f} vs baseline {mean:+.2f} over {len(baseline)} stories",
    )
