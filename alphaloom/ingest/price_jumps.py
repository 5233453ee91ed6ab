"""Implausible close-to-close jumps within price series (pure: arrays in, a mask out).

A bar whose close is more than ``max_jump`` times, or less than ``1 / max_jump`` of, the series' previous close is
flagged. The previous close is the last *accepted* one: the stored bar just before the input's first bar of that series,
then each bar of the input that was not flagged. So a lone outlier (a misplaced decimal point) is flagged and the bar
after it, back in line, is not; a genuine level shift beyond the limit flags every later bar of the input too, which
is what a careful integrator wants: a human decides (raise the limit, re-ingest) rather than the pipeline trading on it.
The first bar of a series with nothing stored before it has no reference and is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Jumps:
    """``flagged``: per input row (input order); ``reference``: the row index of the accepted previous close a flagged
    row was compared with, or -1 when that was the stored close before the input."""

    flagged: np.ndarray
    reference: np.ndarray


def close_jumps(
    series: np.ndarray, ts: np.ndarray, close: np.ndarray, stored_previous: np.ndarray, max_jump: float
) -> Jumps:
    """Flag jumps. ``series``: per row, a code ``0..k-1``; ``ts``: per row, a sortable time; ``close``: per row;
    ``stored_previous``: per series code, the stored close before the input's first bar of it (NaN: none)."""
    n = len(close)
    flagged = np.zeros(n, dtype=bool)
    reference = np.full(n, -1, dtype=np.int64)
    if n == 0 or max_jump <= 0:
        return Jumps(flagged, reference)
    # Inputs usually come sorted by series, then time (series codes number series in order of first appearance).
    in_order = bool(np.all((series[1:] > series[:-1]) | ((series[1:] == series[:-1]) & (ts[1:] > ts[:-1]))))
    order = np.arange(n) if in_order else np.lexsort((ts, series))
    s, c = series[order], close[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = s[1:] != s[:-1]
    previous = np.empty(n, dtype=np.float64)
    previous[1:] = c[:-1]
    previous[starts] = stored_previous[s[starts]]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = c / previous
    suspicious = (ratio > max_jump) | (ratio < 1.0 / max_jump)  # NaN (no reference) compares False
    if not suspicious.any():
        return Jumps(flagged, reference)
    # Only the series with a suspicious step are walked bar by bar, comparing with the last accepted close.
    for code in np.unique(s[suspicious]):
        rows = order[s == code]
        ref_close, ref_row = stored_previous[code], -1
        for row in rows:
            value = close[row]
            if np.isnan(ref_close) or (1.0 / max_jump <= value / ref_close <= max_jump):
                ref_close, ref_row = value, row
            else:
                flagged[row], reference[row] = True, ref_row
    return Jumps(flagged, reference)
