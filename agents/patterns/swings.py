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
    m = n - 2 * k  # the bars with k bars either side: bar j + k for j < m
    before, after = v[:m], v[k + 1 : k + 1 + m]
    for j in range(1, k):  # the highest of the k before and of the k after, as one array each
        before, after = np.maximum(before, v[j : j + m]), np.maximum(after, v[k + 1 + j : k + 1 + j + m])
    centre = v[k : k + m]
    return np.nonzero((centre > before) & (centre >= after))[0] + k


def _of_kind(values: Floats, k: int, kind: SwingKind, confirmed_from: int | None) -> list[Swing]:
    pivots = _pivots(values, k, 1.0 if kind == "high" else -1.0)
    if confirmed_from is not None:  # from the two before the first confirmed at ``confirmed_from`` or later
        first = int(pivots.searchsorted(confirmed_from - k))
        pivots = pivots[max(0, first - 2) :]
    return [Swing(kind, p, p + k, price) for p, price in zip(pivots.tolist(), values[pivots].tolist(), strict=True)]


def swings_by_kind(
    high: Sequence[float] | Floats, low: Sequence[float] | Floats, k: int = 3, confirmed_from: int | None = None
) -> tuple[list[Swing], list[Swing]]:
    """The swing highs and the swing lows of the series apart, each in the order of their pivots (and so of their
    confirmation). With ``confirmed_from``: only those confirmed at that bar or later, and the two before them of their
    kind (what a formation completing from a later bar on can be made of: ``agents.patterns.formations``)."""
    h, lo = np.asarray(high, dtype=np.float64), np.asarray(low, dtype=np.float64)
    return _of_kind(h, k, "high", confirmed_from), _of_kind(lo, k, "low", confirmed_from)


def swings(high: Sequence[float] | Floats, low: Sequence[float] | Floats, k: int = 3) -> list[Swing]:
    """Every swing of the series confirmed within it, ordered by confirmation then pivot (highs before lows on the
    same bar). Truncating the series after bar ``t`` keeps exactly the swings with ``confirmed <= t``."""
    highs, lows = swings_by_kind(high, low, k)
    return sorted(highs + lows, key=lambda s: (s.confirmed, s.pivot, s.kind != "high"))


def known_at(found: Sequence[Swing], bar: int) -> list[Swing]:
    """The swings of ``found`` already confirmed at bar ``bar``'s close."""
    return [s for s in found if s.confirmed <= bar]
