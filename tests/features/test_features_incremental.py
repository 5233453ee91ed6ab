"""marts.features built incrementally: one new bar per series computes only that bar, continuing the recursive state,
and equals a full rebuild; a late bar inside a series' history recomputes that series alone. marts.correlations built
incrementally equals a full rebuild too, with and without late data, and leaves stored matrices alone.

dbt runs of `+correlations` (staging views, features and correlations, no tests): the first build, the incremental one
after new bars (and a late one), a full refresh as the reference; then one more bar per series, an incremental build
and a full refresh again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, text

from alphaloom.features.dbt_runner import DbtRun, run_dbt

EXCHANGE = "test-incremental"
RUN_ID = "test-incremental-run"
START = datetime(2024, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
BARS = 80
SYMBOLS = ("BENCH/USD", "ALT/USD", "LATE/USD")
LATE_SLOT = 70  # LATE/USD has no bar in this slot at first; it arrives after the first build, inside the
# correlation window (30 bars) of the matrices stored by then

SELECT = ["--select", "+correlations", "--vars", '{"benchmark_symbol": "BENCH/USD", "beta_window": 30}']
VALUE_COLUMNS = [
    "ret_1", "log_ret_1", "sma_10", "sma_20", "sma_50", "ema_10", "ema_20", "ema_50", "rsi_14", "macd", "macd_signal",
    "macd_hist", "bb_middle_20", "bb_upper_20", "bb_lower_20", "bb_pct_b_20", "realized_vol_20", "volume_z_20",
    "bar_number", "atr_14", "stoch_k", "stoch_d", "obv", "price_z_20", "beta_to_benchmark", "corr_to_benchmark",
]  # fmt: skip


def _bar(symbol: str, slot: int, rng: np.random.Generator, close: float) -> dict:
    spread = float(round(abs(rng.standard_normal()) * 0.01 * close, 6))
    return {
        "exchange": EXCHANGE, "symbol": symbol, "timeframe": "1h", "ts": START + slot * HOUR, "open": close,
        "high": round(close + spread, 6), "low": round(close - spread, 6), "close": close,
        "volume": float(round(rng.uniform(10, 100), 3)), "run_id": RUN_ID,
    }  # fmt: skip


def _series(symbol: str, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    closes = np.round(100 * np.exp(np.cumsum(0.01 * rng.standard_normal(BARS + 2))), 6)
    return [_bar(symbol, slot, rng, float(c)) for slot, c in enumerate(closes)]


def _insert(engine: Engine, rows: list[dict]) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id) "
                "values (:exchange, :symbol, :timeframe, :ts, :open, :high, :low, :close, :volume, :run_id)"
            ),
            rows,
        )


def _read(engine: Engine) -> pd.DataFrame:
    return pd.read_sql_query(
        text("select * from marts.features where exchange = :e order by symbol, ts"), engine, params={"e": EXCHANGE}
    )


def _read_correlations(engine: Engine) -> pd.DataFrame:
    # xmin: the transaction that wrote the row, to tell a kept row from a rewritten one
    return pd.read_sql_query(
        text("select *, xmin::text as written_by from marts.correlations where exchange = :e "
             "order by ts, symbol_a, symbol_b"),
        engine, params={"e": EXCHANGE},
    )  # fmt: skip


@dataclass(frozen=True)
class Builds:
    first: DbtRun
    incremental: DbtRun
    before: pd.DataFrame
    after: pd.DataFrame
    rebuilt: pd.DataFrame
    # marts.correlations: after the incremental build with a late bar and its full refresh; after one more bar per
    # series (no late data) incrementally, before that build, and its full refresh
    correlations_after: pd.DataFrame
    correlations_rebuilt: pd.DataFrame
    correlations_next: pd.DataFrame
    correlations_next_rebuilt: pd.DataFrame


@pytest.fixture(scope="module")
def builds(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Builds]:
    with engine.begin() as conn:
        conn.execute(
            text("insert into audit.runs (run_id, flow) values (:r, 'test') on conflict do nothing"), {"r": RUN_ID}
        )
    full = {symbol: _series(symbol, seed) for seed, symbol in enumerate(SYMBOLS)}
    # First load: every series but its last two bars; LATE/USD also lacks slot LATE_SLOT.
    _insert(engine, [b for s, rows in full.items() for b in rows[:BARS] if not (s == "LATE/USD" and b["ts"] ==
                                                                                 START + LATE_SLOT * HOUR)])  # fmt: skip
    target: Path = tmp_path_factory.mktemp("dbt-incremental")
    first = run_dbt(["run", *SELECT], target_path=target)
    before = _read(engine)
    # One new bar per series, and LATE/USD's missing bar arrives late.
    _insert(engine, [rows[BARS] for rows in full.values()] + [full["LATE/USD"][LATE_SLOT]])
    incremental = run_dbt(["run", *SELECT], target_path=target)
    after, correlations_after = _read(engine), _read_correlations(engine)
    run_dbt(["run", *SELECT, "--full-refresh"], target_path=target)
    rebuilt, correlations_rebuilt = _read(engine), _read_correlations(engine)
    # One more bar per series, nothing late: only the new bar time's matrix is computed.
    _insert(engine, [rows[BARS + 1] for rows in full.values()])
    run_dbt(["run", *SELECT], target_path=target)
    correlations_next = _read_correlations(engine)
    run_dbt(["run", *SELECT, "--full-refresh"], target_path=target)
    correlations_next_rebuilt = _read_correlations(engine)
    yield Builds(first, incremental, before, after, rebuilt, correlations_after, correlations_rebuilt,
                 correlations_next, correlations_next_rebuilt)  # fmt: skip
    with engine.begin() as conn:
        conn.execute(text("delete from raw.ohlcv where exchange = :e"), {"e": EXCHANGE})
        # The mart is incremental: it keeps what it built, so remove our rows from it too.
        conn.execute(text("delete from marts.features where exchange = :e"), {"e": EXCHANGE})
        conn.execute(text("delete from marts.correlations where exchange = :e"), {"e": EXCHANGE})


def test_incremental_result_equals_a_full_rebuild(builds: Builds) -> None:
    after, rebuilt = builds.after, builds.rebuilt
    assert len(after) == len(rebuilt) == 3 * (BARS + 1)
    assert after[["symbol", "ts"]].equals(rebuilt[["symbol", "ts"]])
    for column in VALUE_COLUMNS:
        a, b = after[column].to_numpy(dtype=float), rebuilt[column].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), column
        np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-9, atol=1e-12, err_msg=column)


def test_one_new_bar_per_series_leaves_old_rows_untouched(builds: Builds) -> None:
    first_id, second_id = builds.first.invocation_id, builds.incremental.invocation_id
    assert first_id and second_id and first_id != second_id
    after = builds.after.set_index(["symbol", "ts"])
    before = builds.before.set_index(["symbol", "ts"])
    last_ts = START + BARS * HOUR
    for symbol in ("BENCH/USD", "ALT/USD"):
        rows = after.loc[symbol]
        new = rows.index == last_ts
        assert set(rows.loc[new, "dbt_invocation_id"]) == {second_id}
        assert set(rows.loc[~new, "dbt_invocation_id"]) == {first_id}, f"{symbol}: old rows were rewritten"
        old = before.loc[symbol]
        pd.testing.assert_frame_equal(rows.loc[~new, VALUE_COLUMNS], old[VALUE_COLUMNS])
        # The state moved on to the new newest row; the previous newest keeps the one it was built with.
        assert rows.loc[new, "indicator_state"].notna().all()
        assert rows["bar_number"].tolist() == list(range(1, BARS + 2))


def test_a_late_bar_recomputes_only_its_series(builds: Builds) -> None:
    late = builds.after[builds.after["symbol"] == "LATE/USD"]
    assert len(late) == BARS + 1 and late["bar_number"].tolist() == list(range(1, BARS + 2))
    assert set(late["dbt_invocation_id"]) == {builds.incremental.invocation_id}


def test_incremental_run_computed_only_the_new_rows(builds: Builds) -> None:
    # dbt reports rows affected by the incremental insert: 2 new bars + LATE/USD's whole series (81 bars).
    assert builds.incremental.statuses("model")["model.alphaloom.features"] == "success"
    changed = builds.after.merge(builds.before, on=["symbol", "ts"], how="left", suffixes=("", "_before"))
    rewritten = changed[changed["dbt_invocation_id"] == builds.incremental.invocation_id]
    assert sorted(rewritten.groupby("symbol").size().to_dict().items()) == [
        ("ALT/USD", 1), ("BENCH/USD", 1), ("LATE/USD", BARS + 1),
    ]  # fmt: skip


def _assert_same_correlations(incremental: pd.DataFrame, rebuilt: pd.DataFrame) -> None:
    key = ["ts", "symbol_a", "symbol_b"]
    assert incremental[key].equals(rebuilt[key])
    assert incremental["observations"].tolist() == rebuilt["observations"].tolist()
    a, b = incremental["correlation"].to_numpy(dtype=float), rebuilt["correlation"].to_numpy(dtype=float)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-12, atol=1e-14)


def test_incremental_correlations_equal_a_full_rebuild(builds: Builds) -> None:
    # The newest 3 bar times (correlation_bars), 3 pairs each; the oldest matrix time of the first build was dropped.
    newest = [START + slot * HOUR for slot in (BARS - 2, BARS - 1, BARS)]
    assert sorted(set(builds.correlations_after["ts"])) == newest
    assert len(builds.correlations_after) == 3 * 3
    # Full 30-bar windows: real numbers, not only NULLs compared with NULLs.
    assert builds.correlations_after["correlation"].notna().all()
    _assert_same_correlations(builds.correlations_after, builds.correlations_rebuilt)
    assert sorted(set(builds.correlations_next["ts"])) == [*newest[1:], START + (BARS + 1) * HOUR]
    _assert_same_correlations(builds.correlations_next, builds.correlations_next_rebuilt)


def test_incremental_correlations_compute_only_the_new_bar_time(builds: Builds) -> None:
    # Without late data, the matrices already stored stay the rows the full refresh wrote; the new time's are new.
    rebuilt = builds.correlations_rebuilt.set_index(["ts", "symbol_a", "symbol_b"])["written_by"]
    following = builds.correlations_next.set_index(["ts", "symbol_a", "symbol_b"])["written_by"]
    kept = following.index.intersection(rebuilt.index)
    assert len(kept) == 2 * 3
    assert (following.loc[kept] == rebuilt.loc[kept]).all()
    assert not set(following.drop(kept)).intersection(set(rebuilt))
