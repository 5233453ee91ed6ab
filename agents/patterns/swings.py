"""Swing highs and lows, dated when they are confirmed. Pure.

A bar ``p`` is a swing high when its high is above the ``k`` highs before it and not below the ``k`` highs after it
(a swing low: the mirror, on the lows). The ``k`` bars after ``p`` are what confirm it, so the swing is known only at
the close of bar ``p + k`` (its ``confirmed`` index), never at the pivot itself: everything built on swings
(``agents.patterns.formations``) is dated at or after the confirmation (ARCHITECTURE §4). Ties: among equal highs the
first is the pivot (strictly above the bars before, not below the bars after).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
SwingKind = Literal["high", "low"]


@dataclass(frozen=True, slots=True)
class Swing:
    """A confirmed swing point: its ``kind``, the ``pivot`` bar and its price, and the bar that ``confirmed`` it."""

    kind: SwingKind
    pivot: int
    confirmed: int
    price: float


def _pivots(values: Floats, k: int, sign: float) -> NDArray[np.intp]:
    """Indices ``p`` with ``k`` bars either side where ``sign * values[p]`` is above the ``k`` before and not below
    the ``k`` after."""
    n = len(values)
    if k < 1:
        raise ValueError(f"swing confirmation needs k >= 1 bars, got {k}")
    if n < 2 * k + 1:
        return np.empty(0, dtype=np.intp)
    v = sign * np.asarray(values, dtype=np.float64)
    windows = np.lib.stride_tricks.sliding_window_view(v, 2 * k + 1)  # window j is centred on bar j + k
    centre = windows[:, k]
    before = windows[:, :k].max(axis=1)
    after = windows[:, k + 1 :].max(axis=1)
    found = np.nonzero((centre > before) & (centre >= after))[0]
    return found + k


def swings(high: Sequence[float] | Floats, low: Sequence[float] | Floats, k: int = 3) -> list[Swing]:
    """Every swing of the series confirmed within it, ordered by confirmation then pivot (highs before lows on the
    same bar). Truncating the series after bar ``t`` keeps exactly the swings with ``confirmed <= t``."""
    h, lo = np.asarray(high, dtype=np.float64), np.asarray(low, dtype=np.float64)
    found = [Swing("high", int(p), int(p) + k, float(h[p])) for p in _pivots(h, k, 1.0)]
    found += [Swing("low", int(p), int(p) + k, float(lo[p])) for p in _pivots(lo, k, -1.0)]
    return sorted(found, key=lambda s: (s.confirmed, s.pivot, s.kind != "high"))


def known_at(found: Sequence[Swing], bar: int) -> list[Swing]:
    """The swings of ``found`` already confirmed at bar ``bar``'s close."""
    return [s for s in found if s.confirmed <= bar]
