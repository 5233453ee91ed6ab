"""Correlation clusters: symbols whose returns move together count as one exposure. Pure pandas.

The correlation source is a symmetric matrix (DataFrame indexed and columned by symbol); today it is computed from
``marts.features.ret_1`` by ``correlation_matrix``, later it can be read from ``marts.correlations`` unchanged.
"""

from __future__ import annotations

import pandas as pd


def correlation_matrix(returns: pd.DataFrame, *, min_periods: int = 20) -> pd.DataFrame:
    """Pairwise Pearson correlation of the columns of ``returns`` (bars x symbols); NaN where too few bars overlap."""
    floats = returns if all(dtype == "float64" for dtype in returns.dtypes) else returns.astype(float)  # no copy
    return floats.corr(min_periods=min_periods)


def cluster_of(symbol: str, correlations: pd.DataFrame, threshold: float) -> frozenset[str]:
    """Every symbol linked to ``symbol`` by a chain of correlations >= ``threshold`` (single linkage), itself
    included. A symbol absent from the matrix is its own cluster."""
    if symbol not in correlations.index:
        return frozenset({symbol})
    cluster, frontier = {symbol}, [symbol]
    while frontier:
        current = frontier.pop()
        row = correlations.loc[current]
        for other, value in row.items():
            if other not in cluster and pd.notna(value) and value >= threshold:
                cluster.add(str(other))
                frontier.append(str(other))
    return frozenset(cluster)
