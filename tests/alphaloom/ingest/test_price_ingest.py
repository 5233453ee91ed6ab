from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, text

from alphaloom.errors import SchemaError
from alphaloom.ingest.prices import merge_bars, read_price_file

HEADER = "exchange,symbol,timeframe,ts,open,high,low,close,volume\n"
GOOD = [
    "t,{s},1h,2025-01-01T00:00:00Z,100,101,99,100.5,10",
    "t,{s},1h,2025-01-01T01:00:00Z,100.5,102,100,101.25,12",
    "t,{s},1h,2025-01-01T02:00:00+00:00,101.25,101.5,98.125,99,8.5",
]
BAD = [
    ("t,{s},1h,2025-01-01T03:00:00Z,abc,101,99,100,1", "open 'abc' is not a finite number"),
    ("t,{s},1h,2025-01-01T04:00:00Z,100,101,99,NaN,1", "close 'NaN' is not a finite number"),
    ("t,{s},1h,2025-01-01T05:00:00Z,-1,101,-2,100,1", "open -1 is not positive"),
    ("t,{s},1h,2025-01-01T06:00:00Z,100,99,101,100,1", "high 99 is below low 101"),
    ("t,{s},1h,2025-01-01T07:00:00Z,100,101,99", "close is empty"),
    ("t,{s},1h,2025-01-01T08:30:00Z,100,101,99,100,1", "not aligned to the start of a 1h bar"),
    ("t,{s},1h,not-a-date,100,101,99,100,1", "'not-a-date' is not a valid timestamp"),
    ("t,{s},1h,2025-01-01T09:00:00Z,100,101,99,100,-5", "volume -5 is negative"),
]


def _new_run(engine: Engine, run_id: str) -> str:
    with engine.begin() as conn:
        conn.execute(
            text("insert into audit.runs (run_id, flow) values (:r, 'test') on conflict do nothing"), {"r": run_id}
        )
    return run_id


def _write(path: Path, symbol: str, lines: list[str]) -> Path:
    path.write_text(HEADER + "\n".join(line.format(s=symbol) for line in lines) + "\n")
    return path


def _count(engine: Engine, symbol: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text("select count(*) from raw.ohlcv where symbol = :s"), {"s": symbol}).scalar_one()


def test_bad_rows_are_quarantined_with_file_line_and_reason_and_the_rest_ingested(engine, tmp_path) -> None:
    lines = [GOOD[0], BAD[0][0], GOOD[1], *[b for b, _ in BAD[1:]], GOOD[2]]
    path = _write(tmp_path / "bars.csv", "Q1/USD", lines)
    batch = read_price_file(path)
    assert len(batch) == 3
    reasons = {r.location: r.reason for r in batch.rejected}
    assert reasons["line 3"] == BAD[0][1]  # header is line 1, first bar line 2
    assert all(str(path) in str(r) for r in batch.rejected)
    assert sorted(r.reason.split(" ")[0] for r in batch.rejected)  # every reject has a reason
    for (_, expected), rejected in zip(
        BAD, sorted(batch.rejected, key=lambda r: int(r.location.split()[1])), strict=True
    ):
        assert expected in rejected.reason, (expected, rejected.reason)

    run = _new_run(engine, "price-run-1")
    with engine.begin() as conn:
        result = merge_bars(conn, batch, run)
    assert (result.inserted, result.quarantined) == (3, len(BAD))
    assert _count(engine, "Q1/USD") == 3
    with engine.connect() as conn:
        rows = conn.execute(
            text("select location, reason, payload from raw.quarantine where source = :s and run_id = :r"),
            {"s": str(path), "r": run},
        ).all()
        stored = conn.execute(text("select close from raw.ohlcv where symbol = 'Q1/USD' order by ts")).scalars().all()
    assert len(rows) == len(BAD)
    assert {r.location for r in rows} == set(reasons)
    assert [str(v) for v in stored] == ["100.5", "101.25", "99"]  # exact decimal text, no float round-trip


def test_reingest_adds_nothing_and_a_changed_bar_is_a_revision_not_an_overwrite(engine, tmp_path) -> None:
    path = _write(tmp_path / "bars.csv", "Q2/USD", GOOD)
    with engine.begin() as conn:
        first = merge_bars(conn, read_price_file(path), _new_run(engine, "price-run-2a"))
    with engine.begin() as conn:
        again = merge_bars(conn, read_price_file(path), _new_run(engine, "price-run-2b"))
    assert (first.inserted, again.inserted, again.unchanged, again.revisions) == (3, 0, 3, 0)
    assert _count(engine, "Q2/USD") == 3

    revised = [GOOD[0], GOOD[1].replace("101.25,12", "101.75,12"), GOOD[2]]
    revised_path = _write(tmp_path / "revised.csv", "Q2/USD", revised)
    with engine.begin() as conn:
        result = merge_bars(conn, read_price_file(revised_path), _new_run(engine, "price-run-2c"))
    assert (result.inserted, result.unchanged, result.revisions) == (0, 2, 1)
    with engine.connect() as conn:
        close = conn.execute(
            text("select close from raw.ohlcv where symbol = 'Q2/USD' and ts = '2025-01-01T01:00:00Z'")
        ).scalar_one()
        reason = conn.execute(text("select reason from raw.quarantine where run_id = 'price-run-2c'")).scalar_one()
    assert str(close) == "101.25"
    assert "revision of a stored bar" in reason and "close 101.25 -> 101.75" in reason


def test_duplicate_keys_in_one_file(tmp_path) -> None:
    lines = [GOOD[0], GOOD[0], GOOD[0].replace(",10", ",11")]
    batch = read_price_file(_write(tmp_path / "dup.csv", "Q3/USD", lines))
    assert len(batch) == 1 and batch.duplicates == 1
    assert [r.reason for r in batch.rejected] == ["duplicate bar with different values"]


def test_parquet_and_defaults_from_arguments(engine, tmp_path) -> None:
    frame = pd.DataFrame(
        {
            "ts": pd.date_range("2025-02-01", periods=4, freq="h", tz="UTC"),
            "open": [10.0, 10.5, 11.0, 10.0],
            "high": [11.0, 11.0, 11.5, 9.0],
            "low": [9.5, 10.0, 10.5, 9.5],
            "close": [10.5, 11.0, 11.0, 9.6],
            "volume": [1.0, 2.0, 3.0, 4.0],
        }
    )
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path)
    batch = read_price_file(path, exchange="t", symbol="Q4/USD", timeframe="1h")
    assert len(batch) == 3
    assert [(r.location, r.reason) for r in batch.rejected] == [("row 4", "high 9.0 is below low 9.5")]
    with engine.begin() as conn:
        assert merge_bars(conn, batch, _new_run(engine, "price-run-4")).inserted == 3


def test_schema_problems_name_the_file(tmp_path) -> None:
    path = tmp_path / "nohigh.csv"
    path.write_text("symbol,timeframe,ts,open,low,close,volume\nX,1h,2025-01-01T00:00:00Z,1,1,1,1\n")
    with pytest.raises(SchemaError, match=r"nohigh\.csv:header: missing required column\(s\) high"):
        read_price_file(path, exchange="t")
    with pytest.raises(SchemaError, match="no 'exchange' column"):
        read_price_file(path)
    with pytest.raises(SchemaError, match="no such file"):
        read_price_file(tmp_path / "absent.csv")
