"""Every ccxt timeframe (issue 12 item 17): bar grid and bar end (months end at the next month's start), session
calendars, decision times, file ingest (an unsupported timeframe is one error naming it) and a monthly file through the
real ingest flow and the dbt build."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import ccxt
import pandas as pd
import pytest
from sqlalchemy import text

from alphaloom.domain import Bar, timeframe_delta
from alphaloom.errors import SchemaError
from alphaloom.ingest.calendars import calendar_for
from alphaloom.ingest.prices import read_price_file
from flows.decide import decision_times

CCXT_TIMEFRAMES = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def _bar(timeframe: str, ts: datetime) -> Bar:
    one = Decimal(1)
    return Bar("x", "A/B", timeframe, ts, one, one, one, one, one)


def test_every_ccxt_timeframe_is_supported_with_ccxts_length() -> None:
    from alphaloom.domain import TIMEFRAMES

    assert TIMEFRAMES == CCXT_TIMEFRAMES
    for timeframe in CCXT_TIMEFRAMES:
        assert timeframe_delta(timeframe).total_seconds() == ccxt.Exchange.parse_timeframe(timeframe), timeframe
    with pytest.raises(ValueError, match="unknown timeframe '7m'; supported: 1m 3m"):
        timeframe_delta("7m")


def test_a_monthly_bar_is_known_at_the_next_months_start() -> None:
    assert _bar("1M", utc(2024, 2, 1)).known_at == utc(2024, 3, 1)  # 29 days (leap year)
    assert _bar("1M", utc(2023, 2, 1)).known_at == utc(2023, 3, 1)  # 28 days
    assert _bar("1M", utc(2023, 12, 1)).known_at == utc(2024, 1, 1)
    assert _bar("1M", utc(2024, 1, 1)).known_at == utc(2024, 2, 1)  # 31 days
    assert _bar("1w", utc(2024, 1, 1)).known_at == utc(2024, 1, 8)
    assert _bar("3d", utc(2024, 1, 1)).known_at == utc(2024, 1, 4)
    assert _bar("1M", utc(2024, 2, 1)).known_at - utc(2024, 2, 1) == timedelta(days=29)


def test_bar_grids_are_epoch_iso_weeks_and_calendar_months() -> None:
    from alphaloom.domain import bar_open

    moment = utc(2024, 3, 14, 17, 42)  # a Thursday
    assert bar_open(moment, "30m") == utc(2024, 3, 14, 17, 30)
    assert bar_open(moment, "8h") == utc(2024, 3, 14, 16)
    assert bar_open(moment, "1w") == utc(2024, 3, 11)  # Monday 00:00 UTC
    assert bar_open(moment, "1M") == utc(2024, 3, 1)


def test_decision_times_step_over_calendar_months_and_iso_weeks() -> None:
    assert decision_times(utc(2024, 3, 15, 10), 3, "1M") == [utc(2024, 1, 1), utc(2024, 2, 1), utc(2024, 3, 1)]
    assert decision_times(utc(2024, 1, 1), 2, "1M") == [utc(2023, 12, 1), utc(2024, 1, 1)]
    assert decision_times(utc(2024, 3, 14, 17), 2, "1w") == [utc(2024, 3, 4), utc(2024, 3, 11)]
    assert decision_times(utc(2024, 3, 14, 17, 42), 2, "2h") == [utc(2024, 3, 14, 14), utc(2024, 3, 14, 16)]


def test_session_calendars_list_month_and_week_opens_and_find_no_false_gaps() -> None:
    crypto, stocks = calendar_for("crypto"), calendar_for("stocks")
    months = list(crypto.expected_opens(utc(2023, 11, 15), utc(2024, 3, 1), "1M"))
    assert months == [pd.Timestamp(utc(2023, 12, 1)), pd.Timestamp(utc(2024, 1, 1)), pd.Timestamp(utc(2024, 2, 1)),
                      pd.Timestamp(utc(2024, 3, 1))]  # fmt: skip
    weeks = list(stocks.expected_opens(utc(2024, 3, 1), utc(2024, 3, 20), "1w"))
    assert weeks == [pd.Timestamp(utc(2024, 3, 4)), pd.Timestamp(utc(2024, 3, 11)), pd.Timestamp(utc(2024, 3, 18))]
    opens = [utc(2023, m, 1) for m in range(1, 13)]
    assert crypto.find_gaps(opens, "1M") == []
    (gap,) = crypto.find_gaps([o for o in opens if o.month not in (5, 6)], "1M")
    assert (gap.first_missing, gap.missing) == (utc(2023, 5, 1), 2)
    # One monthly bar is open a whole month of the session (not 30 days of it).
    assert crypto.session_time_between(utc(2024, 2, 1), utc(2024, 3, 1), "1M") == timedelta(days=29)


def test_a_file_with_an_unsupported_timeframe_is_one_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "sevens.csv"
    rows = [f"t,X/USD,7m,2025-01-01T00:{7 * k:02d}:00Z,1,1,1,1,1" for k in range(8)]
    path.write_text("exchange,symbol,timeframe,ts,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    with pytest.raises(SchemaError, match=r"sevens\.csv:timeframe: unsupported timeframe '7m'") as info:
        read_price_file(path)
    assert str(info.value).count("7m") == 1 and "1M" in str(info.value)  # the supported ones are listed once
    every = tmp_path / "every.csv"  # and every supported one is accepted at its own grid
    every.write_text(
        "exchange,symbol,timeframe,ts,open,high,low,close,volume\n"
        + "\n".join(f"t,X/USD,{tf},2024-01-0{3 if tf == '3d' else 1}T00:00:00Z,1,1,1,1,1" for tf in CCXT_TIMEFRAMES)
        + "\n"
    )
    batch = read_price_file(every)
    # 2024-01-01 is a Monday and a month start; 3d bars open every third day from the epoch (2024-01-03 is one)
    assert len(batch) == len(CCXT_TIMEFRAMES) and not batch.rejected, batch.rejected
    misaligned = tmp_path / "mid-month.csv"
    misaligned.write_text(
        "exchange,symbol,timeframe,ts,open,high,low,close,volume\n"
        "t,X/USD,1M,2024-01-15T00:00:00Z,1,1,1,1,1\nt,X/USD,1w,2024-01-04T00:00:00Z,1,1,1,1,1\n"
    )
    reasons = sorted(r.reason for r in read_price_file(misaligned).rejected)
    assert reasons == [
        "ts 2024-01-04T00:00:00Z is not aligned to the start of a 1w bar",
        "ts 2024-01-15T00:00:00Z is not aligned to the start of a 1M bar",
    ]


def test_a_monthly_file_ingests_and_builds_features(engine, prefect_harness, tmp_path: Path) -> None:
    from flows.build_features import build_features
    from flows.ingest_prices import ingest_prices

    exchange = f"monthly-{uuid.uuid4().hex[:8]}"
    opens = pd.date_range("2020-01-01", periods=40, freq="MS", tz="UTC")
    lines = [
        f"{exchange},MON/USD,1M,{ts:%Y-%m-%dT%H:%M:%SZ},{100 + k},{102 + k},{99 + k},{101 + k},{1000 + k}"
        for k, ts in enumerate(opens)
    ]
    path = tmp_path / "monthly.csv"
    path.write_text("exchange,symbol,timeframe,ts,open,high,low,close,volume\n" + "\n".join(lines) + "\n")
    sevens = tmp_path / "sevens.csv"  # in the same command: one error for the file, the monthly file still loads
    sevens.write_text(
        "exchange,symbol,timeframe,ts,open,high,low,close,volume\n"
        + "\n".join(f"{exchange},SEV/USD,7m,2025-01-01T00:{7 * k:02d}:00Z,1,1,1,1,1" for k in range(8))
        + "\n"
    )
    try:
        result, rejected = ingest_prices([str(path), str(sevens)])
        assert result.get("error") is None and result["inserted"] == 40 and result["quarantined"] == 0, result
        assert "unsupported timeframe '7m' (8 rows)" in str(rejected["error"]) and rejected["quarantined"] == 1
        with engine.connect() as conn:
            reasons = (
                conn.execute(text("select reason from raw.quarantine where source = :s"), {"s": str(sevens)})
                .scalars()
                .all()
            )
        assert len(reasons) == 1 and "'7m'" in reasons[0]
        built = build_features()
        assert built, built
        with engine.connect() as conn:
            rows = conn.execute(
                text("select ts, known_at, sma_20 from marts.features where exchange = :e order by ts"), {"e": exchange}
            ).all()
        assert len(rows) == 40
        known = {ts: known_at for ts, known_at, _ in rows}
        assert known[utc(2020, 2, 1)] == utc(2020, 3, 1)  # a February bar (leap year) is known on March 1st
        assert known[utc(2021, 2, 1)] == utc(2021, 3, 1)
        assert known[utc(2020, 12, 1)] == utc(2021, 1, 1)
        assert rows[19].sma_20 == pytest.approx(sum(101 + k for k in range(20)) / 20)
    finally:
        with engine.begin() as conn:
            if conn.execute(text("select to_regclass('marts.features')")).scalar() is not None:
                conn.execute(text("delete from marts.features where exchange = :e"), {"e": exchange})
            conn.execute(text("delete from raw.ohlcv where exchange = :e"), {"e": exchange})


def test_dbt_knows_the_same_timeframes_as_python() -> None:
    import re

    import yaml
    from support.paths import ROOT

    from alphaloom.domain import TIMEFRAMES

    dbt = ROOT / "dbt"
    macros = (dbt / "macros" / "timeframes.sql").read_text()
    listed = re.search(r"return\(\[([^\]]*)\]\)", macros)
    assert listed is not None
    assert tuple(re.findall(r"'([^']+)'", listed.group(1))) == TIMEFRAMES
    staging = yaml.safe_load((dbt / "models" / "staging" / "stg_ohlcv.yml").read_text())
    (column,) = [c for c in staging["models"][0]["columns"] if c["name"] == "timeframe"]
    (accepted,) = [t["accepted_values"] for t in column["data_tests"] if isinstance(t, dict)]
    assert tuple(accepted["arguments"]["values"]) == TIMEFRAMES
