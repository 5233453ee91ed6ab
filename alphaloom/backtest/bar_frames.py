"""Bars for the vectorized path: open and close frames (index: bar open time, columns: symbols) from ``raw.ohlcv``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from alphaloom.errors import DataUnavailableError

if TYPE_CHECKING:
    import psycopg


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


def price_frames_binary(
    conn: Connection,
    *,
    exchange: str,
    timeframe: str,
    symbols: list[str],
    start: datetime | None = None,
    end: datetime | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``price_frames``, the same frames to the bit, read in psycopg's binary format, unsorted, and laid out with
    numpy: the times as epoch seconds (a double that holds every microsecond of these centuries exactly after
    rounding), the prices cast to double by the server as ``float`` casts their decimals here (both round correctly).
    A window of many bars is read in a fraction of the time. Raises ``DataUnavailableError`` when no bar matches."""
    # The engines are built on the psycopg 3 driver, and a connection in use is checked out: never None here.
    dbapi = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
    with dbapi.cursor(binary=True) as cur:
        cur.execute(
            """select array_position(%(s)s, symbol), date_part('epoch', ts), cast(open as double precision),
                      cast(close as double precision)
               from raw.ohlcv
               where exchange = %(e)s and timeframe = %(tf)s and symbol = any(%(s)s)
                 and (cast(%(start)s as timestamptz) is null or ts >= %(start)s)
                 and (cast(%(end)s as timestamptz) is null or ts < %(end)s)""",
            {"e": exchange, "tf": timeframe, "s": symbols, "start": start, "end": end},
        )
        rows = cur.fetchall()
    if not rows:
        raise DataUnavailableError(f"no {timeframe} bars for {symbols} on {exchange} in [{start}, {end})")
    positions, epochs, opens, closes = zip(*rows, strict=True)
    found = sorted({symbols[p - 1] for p in set(positions)})  # the columns, ordered by name as ``price_frames``'
    column_of = np.full(len(symbols) + 1, -1)
    column_of[[symbols.index(name) + 1 for name in found]] = np.arange(len(found))
    column_at = column_of[np.array(positions)]
    row_at, times = pd.factorize(np.rint(np.array(epochs) * 1e6).astype(np.int64), sort=True)
    columns = found
    open_, close = np.full((len(times), len(columns)), np.nan), np.full((len(times), len(columns)), np.nan)
    open_[row_at, column_at], close[row_at, column_at] = opens, closes
    index = pd.DatetimeIndex(times.astype("datetime64[us]"), name="ts").tz_localize("UTC")
    labels = pd.Index(columns, name="symbol")
    return pd.DataFrame(open_, index=index, columns=labels), pd.DataFrame(close, index=index, columns=labels)
