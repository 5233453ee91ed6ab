"""The shared skeleton of the ``lazy_*_at_ends`` functions: a strategy's signal at every end of one close series.

``window_ends`` finds the ends that have a full window and stacks those windows as the rows of a 2-D array (dropping
the rows ``usable`` rejects: such an end gets no signal). ``lazy_signals_at_ends`` hands the array to the strategy's
``strengths`` function, which computes one strength per row with the same numpy operations its one-window function
uses. ``LazySignals`` holds the signals by their strengths, each ``Signal`` (with its reason's text) built when first
read: a replay reads the strengths of every end and the signals of the few steps it drafts in full.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from alphaloom.domain import Signal


def window_ends(
    closes: Sequence[float],
    length: int,
    *,
    minimum: int,
    history: int,
    first: int,
    usable: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, list[int]] | None:
    """The usable windows of ``closes[max(0, j - history):j]`` for ``j`` in ``[first, len(closes)]`` (a window of the
    last ``length`` closes, needing ``history >= length >= minimum``) as the rows of a 2-D array, and the end ``j`` of
    each row; None when no end has a usable window."""
    n = len(closes)
    start = max(first, length) if history >= length >= minimum else n + 1  # the first end with a full window
    if start > n:
        return None
    series = np.asarray(closes, dtype=float)
    windows = np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(series, length)[start - length :])
    ok = usable(windows)
    if not ok.all():
        windows = np.ascontiguousarray(windows[ok])
    if not len(windows):
        return None
    return windows, (np.flatnonzero(ok) + start).tolist()


class LazySignals:
    """A strategy's signal at every end ``j`` in ``[first, len(closes)]`` of one close series, as
    ``lazy_signals_at_ends`` gives them: ``strengths[j - first]`` (None where there is none) computed at once,
    ``signal(j - first)`` built when first asked (``build(k)``: the signal of the ``k``-th usable window)."""

    __slots__ = ("_build", "_made", "_row", "strengths")

    def __init__(
        self, count: int, ends: Sequence[int], first: int, strengths: Sequence[float], build: Callable[[int], Signal]
    ) -> None:
        self.strengths: list[float | None] = [None] * count
        self._row = [-1] * count  # the usable window of each end, -1 for none
        for k, (j, strength) in enumerate(zip(ends, strengths, strict=True)):
            self.strengths[j - first], self._row[j - first] = strength, k
        self._build = build
        self._made: dict[int, Signal] = {}

    def signal(self, index: int) -> Signal | None:
        """The signal at end ``first + index`` (None where there is none), the same object each time."""
        k = self._row[index]
        if k < 0:
            return None
        made = self._made.get(k)
        if made is None:
            made = self._made[k] = self._build(k)
        return made


def lazy_signals_at_ends(
    closes: Sequence[float],
    length: int,
    *,
    minimum: int,
    history: int,
    first: int,
    usable: Callable[[np.ndarray], np.ndarray],
    strengths: Callable[[np.ndarray], tuple[Sequence[float], Callable[[int], Signal]]],
) -> LazySignals:
    """The signal of ``closes[max(0, j - history):j]`` for every ``j`` in ``[first, len(closes)]`` as ``LazySignals``
    (None where there is none; ``window_ends`` for the arguments): ``strengths`` maps the usable rows (windows) to
    their signals' strengths, in order, and the function building the signal of a row."""
    ended = window_ends(closes, length, minimum=minimum, history=history, first=first, usable=usable)
    count = len(closes) + 1 - first
    if ended is None:
        return LazySignals(count, [], first, [], _none)
    windows, ends = ended
    found, build = strengths(windows)
    return LazySignals(count, ends, first, found, build)


def _none(k: int) -> Signal:  # pragma: no cover - a LazySignals without a window never builds one
    raise IndexError(k)
