"""marts.features against TA-Lib: generated bars in raw.ohlcv, one `dbt build`, every indicator compared per series.

Each indicator must equal TA-Lib (default parameters) to 1e-8 relative where TA-Lib has a value, and be NULL where
TA-Lib has NaN. The oracle runs on the closes read back from marts.features, so both sides start from the same doubles.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib
from sqlalchemy import Engine, text

from alphaloom.errors import DbtError
from alphaloom.features.dbt_runner import DbtRun, build_features, run_dbt

EXCHANGE = "test-dbt"
RUN_ID = "test-run"
START = datetime(2024, 1, 1, tzinfo=UTC)

FEATURE_COLUMNS = [
    "exchange", "symbol", "timeframe", "ts", "known_at", "open", "high", "low", "close", "volume", "ret_1", "log_ret_1",
    "sma_10", "sma_20", "sma_50", "ema_10", "ema_20", "ema_50", "rsi_14", "macd", "macd_signal", "macd_hist",
    "bb_middle_20", "bb_upper_20", "bb_lower_20", "bb_pct_b_20", "realized_vol_20", "volume_z_20", "dbt_invocation_id",
    "bar_number", "atr_14", "stoch_k", "stoch_d", "obv", "price_z_20", "benchmark_symbol", "beta_to_benchmark",
    "corr_to_benchmark", "indicator_state",
]  # fmt: skip
BENCHMARK = "TREND/USD"
BETA_WINDOW = 30


def _trending(rng: np.random.Generator, n: int) -> np.ndarray:
    return 100.0 * np.exp(np.cumsum(0.002 + 0.004 * rng.standard_normal(n)))


def _random_walk_with_flat_stretch(rng: np.random.Generator, n: int) -> np.ndarray:
    steps = 0.01 * rng.standard_normal(n)
    steps[120:150] = 0.0  # 30 unchanged closes: zero-width bands, RSI decaying, zero returns
    return 50.0 * np.exp(np.cumsum(steps))


def _bars(symbol: str, timeframe: str, closes: np.ndarray, step: timedelta, rng: np.random.Generator, *, gap=None):
    closes = np.round(closes, 6)
    opens = np.round(np.concatenate([[closes[0]], closes[:-1]]), 6)
    spread = np.round(np.abs(rng.standard_normal(len(closes))) * 0.002 * closes, 6)
    volumes = np.round(rng.uniform(10, 1000, len(closes)), 3)
    if symbol == "WALK/USD":
        volumes[120:150] = 500.0  # a volume that does not vary: volume_z_20 must be NULL there, not a division by 0
    offsets = np.arange(len(closes))
    if gap is not None:  # skip `gap[1]` bar slots after bar `gap[0]`: indicators count bars, not clock time
        offsets = np.where(offsets >= gap[0], offsets + gap[1], offsets)
    return [
        {
            "exchange": EXCHANGE,
            "symbol": symbol,
            "timeframe": timeframe,
            "ts": START + int(k) * step,
            "open": float(o),
            "high": float(max(o, c) + s),
            "low": float(min(o, c) - s),
            "close": float(c),
            "volume": float(v),
            "run_id": RUN_ID,
        }
        for k, o, c, s, v in zip(offsets, opens, closes, spread, volumes, strict=True)
    ]


def _generated_bars() -> list[dict]:
    rng = np.random.default_rng(20240101)
    hour, day = timedelta(hours=1), timedelta(days=1)
    return [
        *_bars("TREND/USD", "1h", _trending(rng, 300), hour, rng),
        *_bars("TREND/USD", "1d", _trending(rng, 120)[::-1], day, rng),  # same symbol, another series (falling)
        *_bars("WALK/USD", "1h", _random_walk_with_flat_stretch(rng, 260), hour, rng),
        *_bars("GAP/USD", "1h", _trending(rng, 200), hour, rng, gap=(90, 17)),
        *_bars("SHORT/USD", "1h", _trending(rng, 30), hour, rng),  # fewer bars than SMA(50) or MACD's 34
    ]


@dataclass(frozen=True)
class Built:
    """One ``dbt build`` of the module: its result, the generated series' rows of marts.features, its wall time."""

    run: DbtRun
    features: pd.DataFrame
    seconds: float
    target_path: Path


@pytest.fixture(scope="module")
def built(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    with engine.begin() as conn:
        conn.execute(
            text("insert into audit.runs (run_id, flow) values (:run_id, 'test') on conflict do nothing"),
            {"run_id": RUN_ID},
        )
        conn.execute(
            text(
                "insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id) "
                "values (:exchange, :symbol, :timeframe, :ts, :open, :high, :low, :close, :volume, :run_id)"
            ),
            _generated_bars(),
        )
    target: Path = tmp_path_factory.mktemp("dbt-target")
    started = time.perf_counter()
    run = build_features(target_path=target, log_path=target / "logs", dbt_vars={"benchmark_symbol": BENCHMARK})
    elapsed = time.perf_counter() - started
    features = pd.read_sql_query(
        text("select * from marts.features where exchange = :exchange order by symbol, timeframe, ts"),
        engine,
        params={"exchange": EXCHANGE},
    )
    yield Built(run, features, elapsed, target)
    with engine.begin() as conn:
        conn.execute(text("delete from raw.ohlcv where exchange = :exchange"), {"exchange": EXCHANGE})
        # The mart is incremental: it keeps what it built, so remove our rows from it too.
        conn.execute(text("delete from marts.features where exchange = :exchange"), {"exchange": EXCHANGE})


def _series(features: pd.DataFrame) -> Iterator[tuple[tuple[str, str], pd.DataFrame]]:
    yield from features.groupby(["symbol", "timeframe"], sort=True)


def _rolling(values: np.ndarray, statistic, window: int = 20) -> np.ndarray:
    """``statistic`` over each full trailing window, NaN before; exact windows (not pandas' running sums), so a window
    of equal values has a standard deviation of exactly 0, as in PostgreSQL."""
    out = np.full(len(values), np.nan)
    if len(values) >= window:
        out[window - 1 :] = statistic(np.lib.stride_tricks.sliding_window_view(values, window), axis=1)
    return out


def _benchmark_log_returns(features: pd.DataFrame, series: pd.DataFrame) -> np.ndarray:
    """The benchmark's log return at each of ``series``' bar times (NaN where it has no bar then)."""
    bench = features[(features["symbol"] == BENCHMARK) & (features["timeframe"] == series["timeframe"].iloc[0])]
    bench_ret = np.log(bench["close"] / bench["close"].shift(1))
    return series["ts"].map(dict(zip(bench["ts"], bench_ret, strict=True))).to_numpy(dtype=float)


def _rolling_pairs(y: np.ndarray, x: np.ndarray, statistic, window: int) -> np.ndarray:
    out = np.full(len(y), np.nan)
    for end in range(window - 1, len(y)):
        wy, wx = y[end - window + 1 : end + 1], x[end - window + 1 : end + 1]
        if not (np.isnan(wy).any() or np.isnan(wx).any()):
            out[end] = statistic(wy, wx)
    return out


def _beta(y: np.ndarray, x: np.ndarray) -> float:
    with np.errstate(invalid="ignore", divide="ignore"):  # a flat benchmark window: the oracle's NaN, as SQL's null
        return float(np.cov(y, x, ddof=1)[0, 1] / np.var(x, ddof=1))


def _corr(y: np.ndarray, x: np.ndarray) -> float:
    with np.errstate(invalid="ignore", divide="ignore"):  # a flat window has no correlation: NaN, as SQL's null
        return float(np.corrcoef(y, x)[0, 1])


def _talib_oracle(series: pd.DataFrame, features: pd.DataFrame) -> dict[str, np.ndarray]:
    close = series["close"].to_numpy(dtype=float)
    high = series["high"].to_numpy(dtype=float)
    low = series["low"].to_numpy(dtype=float)
    volume = series["volume"].to_numpy(dtype=float)
    macd, signal, hist = talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)
    stoch_k, stoch_d = talib.STOCH(high, low, close, fastk_period=5, slowk_period=3, slowk_matype=0, slowd_period=3,
                                   slowd_matype=0)  # fmt: skip
    close_mean, close_std = _rolling(close, np.mean), _rolling(close, lambda w, axis: np.std(w, axis=axis, ddof=1))
    bench_ret = _benchmark_log_returns(features, series)
    upper, middle, lower = talib.BBANDS(close, timeperiod=20, nbdevup=2, nbdevdn=2, matype=0)
    width = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        pct_b = np.where(width == 0, np.nan, (close - lower) / width)
    previous = np.concatenate([[np.nan], close[:-1]])
    log_ret = np.log(close / previous)
    volume_mean, volume_std = _rolling(volume, np.mean), _rolling(volume, lambda w, axis: np.std(w, axis=axis, ddof=1))
    return {
        "ret_1": close / previous - 1,
        "log_ret_1": log_ret,
        **{f"sma_{n}": talib.SMA(close, timeperiod=n) for n in (10, 20, 50)},
        **{f"ema_{n}": talib.EMA(close, timeperiod=n) for n in (10, 20, 50)},
        "rsi_14": talib.RSI(close, timeperiod=14),
        "macd": macd,
        "macd_signal": signal,
        "macd_hist": hist,
        "bb_middle_20": middle,
        "bb_upper_20": upper,
        "bb_lower_20": lower,
        "bb_pct_b_20": pct_b,
        "realized_vol_20": _rolling(log_ret, lambda w, axis: np.std(w, axis=axis, ddof=1)),
        "volume_z_20": (volume - volume_mean) / np.where(volume_std == 0, np.nan, volume_std),
        "atr_14": talib.ATR(high, low, close, timeperiod=14),
        "stoch_k": stoch_k,
        "stoch_d": stoch_d,
        "obv": talib.OBV(close, volume),
        "price_z_20": (close - close_mean) / np.where(close_std <= 1e-10 * np.abs(close_mean), np.nan, close_std),
        "beta_to_benchmark": _rolling_pairs(log_ret, bench_ret, _beta, BETA_WINDOW),
        "corr_to_benchmark": _rolling_pairs(log_ret, bench_ret, _corr, BETA_WINDOW),
    }


# Columns TA-Lib computes: 1e-8 relative, nothing absolute. The others are ours (oracle: numpy/pandas), where values
# near zero come from a difference of nearly equal numbers computed in another order, hence a tiny absolute slack.
TALIB_COLUMNS = [
    "sma_10", "sma_20", "sma_50", "ema_10", "ema_20", "ema_50", "rsi_14", "macd", "macd_signal", "macd_hist",
    "bb_middle_20", "bb_upper_20", "bb_lower_20", "atr_14", "stoch_k", "stoch_d", "obv",
]  # fmt: skip
DERIVED_COLUMNS = [
    "ret_1", "log_ret_1", "bb_pct_b_20", "realized_vol_20", "volume_z_20", "price_z_20", "beta_to_benchmark",
    "corr_to_benchmark",
]  # fmt: skip


def test_build_ran_models_data_tests_and_unit_tests(built: Built) -> None:
    run, elapsed = built.run, built.seconds
    assert run.success and run.invocation_id
    models, tests, unit_tests = run.statuses("model"), run.statuses("test"), run.statuses("unit_test")
    assert models["model.alphaloom.features"] == "success"
    assert set(models.values()) == {"success"}
    assert len(tests) >= 10 and set(tests.values()) == {"pass"}, tests
    assert len(unit_tests) >= 4 and set(unit_tests.values()) == {"pass"}, unit_tests
    assert elapsed < 60, f"dbt build took {elapsed:.1f}s"


def test_features_has_exactly_the_agreed_columns(built: Built) -> None:
    run, features = built.run, built.features
    assert list(features.columns) == FEATURE_COLUMNS
    assert set(features["dbt_invocation_id"]) == {run.invocation_id}


def test_one_row_per_bar_known_when_it_closes(built: Built) -> None:
    features = built.features
    sizes = features.groupby(["symbol", "timeframe"]).size().to_dict()
    assert sizes == {
        ("GAP/USD", "1h"): 200, ("SHORT/USD", "1h"): 30, ("TREND/USD", "1d"): 120, ("TREND/USD", "1h"): 300,
        ("WALK/USD", "1h"): 260,
    }  # fmt: skip
    bar_length = features["timeframe"].map({"1h": pd.Timedelta(hours=1), "1d": pd.Timedelta(days=1)})
    assert (features["known_at"] - features["ts"]).equals(bar_length)


@pytest.mark.parametrize("column", TALIB_COLUMNS + DERIVED_COLUMNS)
def test_indicator_equals_oracle_and_is_null_where_oracle_is_nan(built: Built, column: str) -> None:
    features = built.features
    atol = 0.0 if column in TALIB_COLUMNS else 1e-9
    for key, series in _series(features):
        expected = _talib_oracle(series, features)[column]
        actual = series[column].to_numpy(dtype=float)  # SQL NULL reads back as NaN
        assert np.array_equal(np.isnan(actual), np.isnan(expected)), f"{key} {column}: NULLs differ from the oracle"
        present = ~np.isnan(expected)
        np.testing.assert_allclose(actual[present], expected[present], rtol=1e-8, atol=atol, err_msg=f"{key} {column}")


def test_short_series_has_no_long_lookback_values(built: Built) -> None:
    features = built.features
    short = features[features["symbol"] == "SHORT/USD"]
    for column in ("sma_50", "ema_50", "macd", "macd_signal", "macd_hist"):
        assert short[column].isna().all(), column
    assert short["sma_20"].notna().sum() == 11


def test_a_failing_node_raises_dbt_error_naming_it(built: Built) -> None:
    # Same target folder as the build: dbt parses partially, so this costs about a second.
    with pytest.raises(DbtError, match="division by zero"):
        run_dbt(["show", "--inline", "select 1 / 0 as x"], target_path=built.target_path)


def test_the_correlation_universe_is_the_traded_symbols_unless_configured(built: Built) -> None:
    import json

    from alphaloom.settings import Settings, get_settings

    assert Settings(symbols="A/USD,B/USD", correlation_symbols="").correlation_universe == ["A/USD", "B/USD"]
    assert Settings(correlation_symbols="*").correlation_universe == [], "dbt's empty list: every stored symbol"
    assert Settings(correlation_symbols="X/USD, Y/USD").correlation_universe == ["X/USD", "Y/USD"]
    # build_features handed the universe to dbt (the unit test correlations_universe_limits_the_pairs shows the var
    # limits the pairs; it ran in the same build).
    results = json.loads((built.target_path / "run_results.json").read_text())
    assert results["args"]["vars"]["correlation_symbols"] == get_settings().symbols
    unit = [r for r in results["results"] if "correlations_universe_limits_the_pairs" in r["unique_id"]]
    assert [r["status"] for r in unit] == ["pass"]
