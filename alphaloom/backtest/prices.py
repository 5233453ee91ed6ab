"""Bars for the vectorized path: open and close frames (index: bar open time, columns: symbols) from ``raw.ohlcv``."""

from __future__ import annotations

from datetime import datetime

import numpy as np
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


def price_frames_by_symbol(
    conn: Connection,
    *,
    exchange: str,
    timeframe: str,
    symbols: list[str],
    start: datetime | None = None,
    end: datetime | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``price_frames``, the same frames to the bit, read as one row per symbol (its times in microseconds and its
    prices as arrays, the prices cast to double by the server, as ``float`` casts their decimals here: both round
    correctly): a window of many bars is read in a fraction of the time. Raises ``DataUnavailableError`` when no bar
    matches."""
    rows = conn.execute(
        text(
            """select symbol, array_agg((extract(epoch from ts) * 1000000)::bigint order by ts) as us,
                      array_agg(cast(open as double precision) order by ts) as open,
                      array_agg(cast(close as double precision) order by ts) as close
               from raw.ohlcv
               where exchange = :e and timeframe = :tf and symbol = any(:s)
                 and (cast(:start as timestamptz) is null or ts >= :start)
                 and (cast(:end as timestamptz) is null or ts < :end)
               group by symbol"""
        ),
        {"e": exchange, "tf": timeframe, "s": symbols, "start": start, "end": end},
    ).all()
    if not rows:
        raise DataUnavailableError(f"no {timeframe} bars for {symbols} on {exchange} in [{start}, {end})")
    rows = sorted(rows, key=lambda row: row.symbol)
    times = np.unique(np.concatenate([np.asarray(row.us, dtype=np.int64) for row in rows]))
    opens, closes = np.full((len(times), len(rows)), np.nan), np.full((len(times), len(rows)), np.nan)
    for n, row in enumerate(rows):
        at = np.searchsorted(times, np.asarray(row.us, dtype=np.int64))
        opens[at, n], closes[at, n] = row.open, row.close
    index = pd.DatetimeIndex(times.astype("datetime64[us]"), name="ts").tz_localize("UTC")
    columns = pd.Index([row.symbol for row in rows], name="symbol")
    return pd.DataFrame(opens, index=index, columns=columns), pd.DataFrame(closes, index=index, columns=columns)
