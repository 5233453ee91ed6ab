"""Bars for the vectorized path: open and close frames (index: bar open time, columns: symbols) from ``raw.ohlcv``."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, text

from alphaloom.errors import DataUnavailableError


def price_frames(
    conn: Connection,
    *,
    exchange: str,
    timeframe: str,
    symbols: list[str],
    start: datetime | None = None,
    end: datetime | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(open, close) of the bars with ``start <= ts < end`` (either bound optional), as floats; a symbol with no bar
    at some time has NaN there. Raises ``DataUnavailableError`` when no bar matches."""
    rows = conn.execute(
        text(
            """select symbol, ts, open, close from raw.ohlcv
               where exchange = :e and timeframe = :tf and symbol = any(:s)
                 and (cast(:start as timestamptz) is null or ts >= :start)
                 and (cast(:end as timestamptz) is null or ts < :end)
               order by ts"""
        ),
        {"e": exchange, "tf": timeframe, "s": symbols, "start": start, "end": end},
    ).all()
    if not rows:
        raise DataUnavailableError(f"no {timeframe} bars for {symbols} on {exchange} in [{start}, {end})")
    bars = pd.DataFrame(rows, columns=["symbol", "ts", "open", "close"])
    bars["ts"] = pd.to_datetime(bars["ts"], utc=True)
    open_ = bars.pivot(index="ts", columns="symbol", values="open").astype(float)
    close = bars.pivot(index="ts", columns="symbol", values="close").astype(float)
    return open_, close
