"""The correlation arrays the portfolio checks read (``pearson``, ``cluster_in``, ``returns_inputs``) equal what
pandas' ``DataFrame.corr`` and the frame-based ``cluster_of`` give, bit for bit, over random data with NaN gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agents.risk.correlation import cluster_in, cluster_of, correlation_matrix, pearson
from agents.risk.portfolio import MIN_VAR_OBSERVATIONS, returns_inputs


def _frame(rng: np.random.Generator, bars: int, symbols: int, gaps: float) -> pd.DataFrame:
    common = rng.normal(0, 0.01, (bars, 1))
    values = common * rng.uniform(0, 2, symbols) + rng.normal(0, 0.01, (bars, symbols))
    values[rng.random((bars, symbols)) < gaps] = np.nan
    if symbols > 2:
        values[: bars // 2, 1] = np.nan  # a late listing: too few bars overlap for some pairs
        values[:, 2] = 0.0125  # constant: no variance
    names = pd.Index([f"S{k:02d}/USDT" for k in range(symbols)], name="symbol")
    return pd.DataFrame(values, index=pd.date_range("2026-01-01", periods=bars, freq="h", tz="UTC", name="ts"),
                        columns=names)  # fmt: skip


def _cluster_by_frame(symbol: str, correlations: pd.DataFrame, threshold: float) -> frozenset[str]:
    """The frame walk ``cluster_of`` did before it read arrays (the reference)."""
    if symbol not in correlations.index:
        return frozenset({symbol})
    cluster, frontier = {symbol}, [symbol]
    while frontier:
        row = correlations.loc[frontier.pop()]
        for other, value in row.items():
            if other not in cluster and pd.notna(value) and value >= threshold:
                cluster.add(str(other))
                frontier.append(str(other))
    return frozenset(cluster)


@pytest.mark.parametrize("seed", range(12))
def test_pearson_and_clusters_equal_pandas_bit_for_bit_over_nan_gaps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    returns = _frame(rng, bars=int(rng.integers(5, 260)), symbols=int(rng.integers(1, 12)), gaps=rng.uniform(0, 0.4))
    for min_periods in (1, 5, MIN_VAR_OBSERVATIONS, 150):
        expected = returns.corr(min_periods=min_periods).to_numpy()
        got = pearson(returns.to_numpy(), min_periods=min_periods)
        assert got.tobytes() == expected.tobytes()  # NaNs and signed zeros included
    inputs = returns_inputs(returns)
    expected_frame = correlation_matrix(returns, min_periods=MIN_VAR_OBSERVATIONS)
    assert inputs.correlation_values.tobytes() == expected_frame.to_numpy().tobytes()
    pd.testing.assert_frame_equal(inputs.correlations, expected_frame)
    assert inputs.matrix.tobytes() == returns.to_numpy(dtype=float).tobytes()
    for threshold in (-1.0, 0.0, 0.3, 0.7, 1.0):
        for symbol in [*inputs.symbols, "NEW/USDT"]:
            reference = _cluster_by_frame(symbol, expected_frame, threshold)
            assert cluster_in(symbol, inputs.symbols, inputs.correlation_values, threshold) == reference
            assert cluster_of(symbol, expected_frame, threshold) == reference


def test_returns_inputs_of_a_frame_not_of_floats_equal_its_float_copy() -> None:
    returns = _frame(np.random.default_rng(3), bars=80, symbols=4, gaps=0.1)
    mixed = returns.astype(object).where(returns.notna(), None)
    got, expected = returns_inputs(mixed), returns_inputs(returns)
    assert got.symbols == expected.symbols
    assert got.correlation_values.tobytes() == expected.correlation_values.tobytes()
    assert got.matrix.tobytes() == expected.matrix.tobytes()


def test_pearson_without_pandas_private_routine_takes_the_frames_way_with_the_same_values(monkeypatch) -> None:
    import agents.risk.correlation as correlation

    returns = _frame(np.random.default_rng(3), bars=120, symbols=6, gaps=0.2)
    fast = pearson(returns.to_numpy(), min_periods=MIN_VAR_OBSERVATIONS)
    monkeypatch.setattr(correlation, "_nancorr", None)
    slow = pearson(returns.to_numpy(), min_periods=MIN_VAR_OBSERVATIONS)
    assert slow.tobytes() == fast.tobytes()


def test_returns_inputs_compute_their_correlations_once_and_only_when_read(monkeypatch) -> None:
    """A step whose intents are all sells never reads the correlations: ``returns_inputs`` leaves them to the first
    read (the same values), and keeps them."""
    import agents.risk.portfolio as portfolio

    returns = _frame(np.random.default_rng(5), bars=90, symbols=5, gaps=0.1)
    calls: list[int] = []

    def counted(matrix: np.ndarray, *, min_periods: int) -> np.ndarray:
        calls.append(min_periods)
        return pearson(matrix, min_periods=min_periods)

    monkeypatch.setattr(portfolio, "pearson", counted)
    inputs = returns_inputs(returns)
    assert calls == [] and inputs.observations == 90
    first = inputs.correlation_values
    assert inputs.correlation_values is first and calls == [MIN_VAR_OBSERVATIONS]
    assert first.tobytes() == correlation_matrix(returns, min_periods=MIN_VAR_OBSERVATIONS).to_numpy().tobytes()
