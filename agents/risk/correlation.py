"""Correlation clusters: symbols whose returns move together count as one exposure. Pure pandas / numpy.

The correlation source is a symmetric matrix (DataFrame indexed and columned by symbol); today it is computed from
``marts.features.ret_1`` by ``correlation_matrix``, later it can be read from ``marts.correlations`` unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

try:  # the routine DataFrame.corr runs (a private module: a pandas without it takes the frame's way, same values)
    from pandas._libs.algos import nancorr as _nancorr  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the pandas release (tested by setting it to None)
    _nancorr = None


def correlation_matrix(returns: pd.DataFrame, *, min_periods: int = 20) -> pd.DataFrame:
    """Pairwise Pearson correlation of the columns of ``returns`` (bars x symbols); NaN where too few bars overlap."""
    floats = returns if all(dtype == "float64" for dtype in returns.dtypes) else returns.astype(float)  # no copy
    return floats.corr(min_periods=min_periods)


def pearson(matrix: np.ndarray, *, min_periods: int = 20) -> np.ndarray:
    """``correlation_matrix`` of a float matrix (bars x symbols), as an array: the routine ``DataFrame.corr`` runs on
    the frame's values (``pandas._libs.algos.nancorr``), so equal to it bit for bit, without a frame built around the
    matrix and its result (a replay prepares one per step that proposes an order)."""
    floats = np.asarray(matrix, dtype=np.float64)
    if _nancorr is None:
        return pd.DataFrame(floats).corr(min_periods=min_periods).to_numpy()
    return np.asarray(_nancorr(floats, minp=min_periods))


def cluster_of(symbol: str, correlations: pd.DataFrame, threshold: float) -> frozenset[str]:
    """Every symbol linked to ``symbol`` by a chain of correlations >= ``threshold`` (single linkage), itself
    included. A symbol absent from the matrix is its own cluster."""
    return cluster_in(symbol, [str(s) for s in correlations.index], correlations.to_numpy(dtype=float), threshold)


def cluster_in(symbol: str, symbols: Sequence[str], correlations: np.ndarray, threshold: float) -> frozenset[str]:
    """``cluster_of`` on a correlation array whose rows and columns are ``symbols`` (``pearson``)."""
    position = {s: i for i, s in enumerate(symbols)}
    if symbol not in position:
        return frozenset({symbol})
    linked = correlations >= threshold  # NaN (too few bars overlap) links nothing
    cluster, frontier = {symbol}, [symbol]
    while frontier:
        current = frontier.pop()
        for k in np.flatnonzero(linked[position[current]]):
            other = symbols[int(k)]
            if other not in cluster:
                cluster.add(other)
                frontier.append(other)
    return frozenset(cluster)
