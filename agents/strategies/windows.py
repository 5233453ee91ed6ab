"""The shared skeleton of the ``*_at_ends`` functions: a strategy's signal at every end of one close series at once.

``signals_at_ends`` finds the ends that have a full window, stacks those windows as the rows of a 2-D array (dropping
the rows ``usable`` rejects: such an end gets no signal), and hands the array to the strategy's ``signals`` function,
which computes one signal per row with the same numpy operations its one-window function uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from alphaloom.domain import Signal


def signals_at_ends(
    closes: Sequence[float],
    length: int,
    *,
    minimum: int,
    history: int,
    first: int,
    usable: Callable[[np.ndarray], np.ndarray],
    signals: Callable[[np.ndarray], Sequence[Signal]],
) -> list[Signal | None]:
    """The signal of ``closes[max(0, j - history):j]`` for every ``j`` in ``[first, len(closes)]`` (None where there
    is none): a window of the last ``length`` closes, needing ``history >= length >= minimum``; ``usable`` marks the
    rows (windows) that can give a signal; ``signals`` maps the usable rows to their signals, in order."""
    n = len(closes)
    found: list[Signal | None] = [None] * (n + 1 - first)
    start = max(first, length) if history >= length >= minimum else n + 1  # the first end with a full window
    if start > n:
        return found
    series = np.asarray(closes, dtype=float)
    windows = np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(series, length)[start - length :])
    ok = usable(windows)
    if not ok.all():
        windows = np.ascontiguousarray(windows[ok])
    if not len(windows):
        return found
    ends = np.flatnonzero(ok) + start
    for j, signal in zip(ends.tolist(), signals(windows), strict=True):
        found[j - first] = signal
    return found
