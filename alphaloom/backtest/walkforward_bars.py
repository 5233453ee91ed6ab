"""The bars of a walk-forward's windows, read once per process and sweep: each window is sliced from what the process
has already read of its sweep, and only the bars it lacks are read (``SweepBars``).

A walk-forward's windows overlap (each reads its in-sample stretch and the warm-up bars before it, and the next window
starts one out-of-sample stretch later), so reading each window's bars on its own reads most bars several times over:
8 windows of 4,000 + 750 bars read 38,000 bars a symbol for 10,000 stored. Here a process keeps the bars of the sweep
it is running (``WindowSpec.sweep``, made afresh for each run by ``window_specs``, so a later run never sees bars read
for an earlier one) and reads only the time ranges it has not read yet; one sweep's bars at a time.

The bars come from the server one row per symbol (``read_bar_columns``): the symbol's bars packed by PostgreSQL into
one ``bytea`` of big-endian doubles (``float8send``; time, open and close of each bar, in time order), unpacked here
with numpy. The values
are the same doubles as ``alphaloom.backtest.bar_frames.price_frames`` reads (the server's cast to double and Python's
``float`` of the stored decimal both round correctly), so
a window's frames are the same to the bit, whichever way and in whatever pieces they were read.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from alphaloom.db.copy import fetch_binary

_BAR_COLUMNS = """select symbol,
       string_agg(float8send(date_part('epoch', ts)) || float8send(cast(open as double precision))
                  || float8send(cast(close as double precision)), ''::bytea order by ts)
from raw.ohlcv
where exchange = %(e)s and timeframe = %(tf)s and symbol = any(%(s)s)
  and (cast(%(start)s as timestamptz) is null or ts >= %(start)s)
  and (cast(%(end)s as timestamptz) is null or ts < %(end)s)
group by symbol"""


def read_bar_columns(
    conn: Connection,
    *,
    exchange: str,
    timeframe: str,
    symbols: list[str],
    start: datetime | None,
    end: datetime | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(open, close) of the stored bars with ``start <= ts < end`` (either bound open), columns ``symbols`` in that
    order (all NaN for a symbol without a bar there), index the times at which any of them has a bar (possibly
    none), as ``price_frames`` reads them to the bit."""
    _, rows = fetch_binary(
        conn, _BAR_COLUMNS, {"e": exchange, "tf": timeframe, "s": symbols, "start": start, "end": end}
    )
    column_of = {name: k for k, name in enumerate(symbols)}
    bars = [(column_of[symbol], np.frombuffer(packed, dtype=">f8").reshape(-1, 3)) for symbol, packed in rows]
    micros = [np.rint(values[:, 0] * 1e6).astype(np.int64) for _, values in bars]
    row_at, times = pd.factorize(np.concatenate(micros) if micros else np.empty(0, np.int64), sort=True)
    open_, close = np.full((len(times), len(symbols)), np.nan), np.full((len(times), len(symbols)), np.nan)
    offset = 0
    for column, values in bars:
        at = row_at[offset : offset + len(values)]
        open_[at, column], close[at, column] = values[:, 1], values[:, 2]
        offset += len(values)
    index = pd.DatetimeIndex(np.asarray(times).astype("datetime64[us]"), name="ts").tz_localize("UTC")
    labels = pd.Index(symbols, name="symbol")
    return pd.DataFrame(open_, index=index, columns=labels), pd.DataFrame(close, index=index, columns=labels)


@dataclass(frozen=True)
class _Held:
    """What a process holds of one sweep: the bars with ``start <= ts < end`` (``end`` None: open), and how many bar
    times it read from the server for the sweep so far (``read``: what it read again after dropping them counts
    again)."""

    key: tuple[str, str, str, tuple[str, ...]]
    start: datetime
    end: datetime | None
    open_: pd.DataFrame
    close: pd.DataFrame
    read: int


def _before(a: datetime | None, b: datetime | None) -> bool:
    """``a < b`` for range ends, None being the open end (after every time)."""
    return b is None if a is None else b is None or a < b


class SweepBars:
    """One process's bars of the sweep it runs (see the module docstring); safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: _Held | None = None

    def window_frames(
        self,
        conn: Connection,
        *,
        sweep: str,
        exchange: str,
        timeframe: str,
        symbols: list[str],
        start: datetime,
        end: datetime | None,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(open, close) of the bars ``start <= ts < end`` of ``symbols`` (columns in that order), read on ``conn``
        only where this process has not read them yet for ``sweep``."""
        key = (sweep, exchange, timeframe, tuple(symbols))
        with self._lock:
            held = self._held if self._held is not None and self._held.key == key else None
            if held is None or _before(held.end, start) or _before(end, held.start):  # not touching what is held
                open_, close = read_bar_columns(conn, exchange=exchange, timeframe=timeframe, symbols=symbols,
                                                start=start, end=end)  # fmt: skip
                earlier = self._held.read if self._held is not None and self._held.key == key else 0
                held = _Held(key, start, end, open_, close, earlier + len(close))
            else:
                held = self._extended(conn, held, start, end)
            self._held = held
        first, stop = held.close.index.searchsorted(pd.Timestamp(start)), len(held.close.index)
        if end is not None:
            stop = held.close.index.searchsorted(pd.Timestamp(end))
        return held.open_.iloc[first:stop], held.close.iloc[first:stop]

    @staticmethod
    def _extended(conn: Connection, held: _Held, start: datetime, end: datetime | None) -> _Held:
        """``held`` with the bars before its start back to ``start`` and after its end up to ``end`` read and added."""
        _, exchange, timeframe, symbols = held.key
        opens, closes, first, last = [held.open_], [held.close], held.start, held.end
        read = held.read
        if start < held.start:
            o, c = read_bar_columns(conn, exchange=exchange, timeframe=timeframe, symbols=list(symbols), start=start,
                                    end=held.start)  # fmt: skip
            opens.insert(0, o)
            closes.insert(0, c)
            first, read = start, read + len(c)
        if held.end is not None and _before(held.end, end):
            o, c = read_bar_columns(conn, exchange=exchange, timeframe=timeframe, symbols=list(symbols),
                                    start=held.end, end=end)  # fmt: skip
            opens.append(o)
            closes.append(c)
            last, read = end, read + len(c)
        if len(opens) == 1:
            return held
        return _Held(held.key, first, last, pd.concat(opens), pd.concat(closes), read)

    def bars_read(self, sweep: str) -> int:
        """How many bar times (rows of the frames) this process has read from the server for ``sweep``, the sweep it
        holds; 0 for any other."""
        with self._lock:
            held = self._held
        return held.read if held is not None and held.key[0] == sweep else 0

    def clear(self) -> None:
        """Forget the bars held (the next window reads its own)."""
        with self._lock:
            self._held = None


SWEEP_BARS = SweepBars()  # this process's
