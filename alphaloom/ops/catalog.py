"""What is stored, for the operator's arguments to be checked against: symbols with bars, their time ranges,
accounts (a run is found by ``alphaloom.records.runs.find_run``). Read-only queries; nothing here decides or writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from alphaloom.domain import timeframe_delta


@dataclass(frozen=True)
class SeriesRange:
    """One stored series: its symbol and when its first and last bars closed (a bar is known at ts + bar length)."""

    symbol: str
    first_close: datetime
    last_close: datetime
    bars: int


def stored_series(conn: Connection, exchange: str, timeframe: str) -> dict[str, SeriesRange]:
    """Every symbol with bars on ``exchange`` at ``timeframe``, with the range of its bar closes."""
    bar = timeframe_delta(timeframe)
    rows = conn.execute(
        text(
            """select symbol, min(ts) as first_ts, max(ts) as last_ts, count(*) as bars from raw.ohlcv
               where exchange = :e and timeframe = :tf group by symbol order by symbol"""
        ),
        {"e": exchange, "tf": timeframe},
    ).all()
    return {r.symbol: SeriesRange(r.symbol, r.first_ts + bar, r.last_ts + bar, int(r.bars)) for r in rows}


def account_ids(conn: Connection) -> list[str]:
    return [r[0] for r in conn.execute(text("select id from audit.accounts order by id"))]
