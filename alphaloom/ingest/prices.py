"""Price bars from files (CSV or Parquet) into ``raw.ohlcv``.

``read_price_file`` (a path) and ``read_price_bytes`` (a file's content, e.g. fetched from a URL) parse and validate a
file: rows that are malformed or impossible (a CSV line with too many fields, empty or non-numeric or non-finite values,
non-positive prices, a price or volume outside the sane range of ``BarLimits``, negative volume, high below low,
open/close outside the high-low range, a timestamp not at the start of a bar of its timeframe) come back as
``Rejected`` naming the file, line and reason; the rest form a ``PriceBatch``. CSV line ends may be LF, CRLF or CR.
A timeframe outside ``TIMEFRAMES`` (every ccxt timeframe, 1m to 1M) is one ``SchemaError`` for the whole file naming it.
``merge_bars`` stores a batch: first a close that jumps more than ``BarLimits.max_close_jump`` times from the series'
previous close (stored, or earlier in the batch) is quarantined (``price_jumps``); then series with no stored bars in
the batch's time range are COPYed straight into ``raw.ohlcv``; the others go through a temporary table and
``INSERT ... ON CONFLICT`` on the natural key, where identical bars are left alone and a bar whose values differ from
the stored one (stored by any run, this one included: an earlier file of the same command) is quarantined as a
revision, never overwritten. Re-ingesting a file therefore adds nothing.

Values are kept as the exact decimal text of the input, so ``numeric`` columns store what the source said.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import Connection

from alphaloom.domain import TIMEFRAMES, bar_grid
from alphaloom.errors import SchemaError
from alphaloom.ingest.price_jumps import close_jumps
from alphaloom.ingest.price_sources import local_file_problem
from alphaloom.ingest.quarantine import Rejected, quarantine
from alphaloom.settings import get_settings

if TYPE_CHECKING:
    import psycopg
    from psycopg import Cursor
    from pyarrow.lib import StringType

    TextColumn = pa.ChunkedArray[pa.Scalar[StringType]]  # a column of text (nulls made empty by ``_text``)

KEY_COLUMNS = ("exchange", "symbol", "timeframe", "ts")
VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
COLUMNS = KEY_COLUMNS + VALUE_COLUMNS
PRICE_COLUMNS = ("open", "high", "low", "close")
_MERGE_LOCK_KEY = 0x4F484C43  # serialises merges into raw.ohlcv so the overlap check below stays true until commit

Locator = Callable[[int], str]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Arrow's bundled mimalloc hands the pages of one batch back and faults them in again for the next; the C library's
# allocator keeps them. Reading and validating 1M bars: 0.78 s -> 0.60 s for the first batch of a process (bench/ingest).
# Set once, for this process, when price ingest is first imported; ARROW_DEFAULT_MEMORY_POOL still overrides it.
if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
    pa.set_memory_pool(pa.system_memory_pool())


@dataclass(frozen=True)
class BarLimits:
    """The sane range of a bar (settings ``ingest_*``): prices in ``[min_price, max_price]``, volume at most
    ``max_volume``, a close within ``max_close_jump`` times the series' previous close (0: no jump check)."""

    min_price: float = 1e-12
    max_price: float = 1e12
    max_volume: float = 1e18
    max_close_jump: float = 10.0

    @classmethod
    def from_settings(cls) -> BarLimits:
        s = get_settings()
        return cls(s.ingest.min_price, s.ingest.max_price, s.ingest.max_volume, s.ingest.max_close_jump)


@dataclass(frozen=True)
class PriceBatch:
    """Validated bars of one source: ``table`` has ``COLUMNS`` as text (``ts`` ISO-8601 with an offset)."""

    source: str
    table: pa.Table
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: int = 0

    def __len__(self) -> int:
        return self.table.num_rows


@dataclass(frozen=True)
class MergeResult:
    staged: int
    inserted: int
    unchanged: int
    revisions: int
    quarantined: int


def read_price_file(
    path: Path | str,
    *,
    exchange: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
    limits: BarLimits | None = None,
) -> PriceBatch:
    """Read and validate a CSV or Parquet file of bars.

    Required columns: ``ts, open, high, low, close, volume``; ``exchange``, ``symbol`` and ``timeframe`` come from
    columns of those names or from the arguments (a column wins). Timestamps without an offset are taken as UTC.
    Raises ``SchemaError`` when the file is missing ("no such file"), a directory ("is a directory"), unreadable or
    lacks a required column.
    """
    path = Path(path)
    if problem := local_file_problem(path):
        raise SchemaError(str(path), "file", problem)
    names = {"exchange": exchange, "symbol": symbol, "timeframe": timeframe}
    return read_price_bytes(path.read_bytes(), source=str(path), suffix=path.suffix, limits=limits, **names)


def read_price_bytes(
    data: bytes,
    *,
    source: str,
    suffix: str,
    exchange: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
    limits: BarLimits | None = None,
) -> PriceBatch:
    """``read_price_file`` for a file's content: ``suffix`` (``.csv``, ``.parquet``, ``.pq``) says how to parse it and
    ``source`` names it in every ``Rejected`` and error."""
    suffix = suffix.lower()
    line_rejects: list[Rejected] = []
    if suffix == ".csv":
        table, line_rejects = _read_csv(data, source)
        locate: Locator = lambda i: f"line {i + 2}"  # noqa: E731 - header is line 1
    elif suffix in (".parquet", ".pq"):
        try:
            table = pa.Table.from_pandas(pd.read_parquet(io.BytesIO(data)).astype(str), preserve_index=False)
        except Exception as exc:  # pyarrow raises many types for a corrupt file
            raise SchemaError(source, "file", f"not a readable Parquet file: {exc}") from None
        locate = lambda i: f"row {i + 1}"  # noqa: E731
    else:
        raise SchemaError(source, "file", f"unsupported file type {suffix!r}; expected .csv or .parquet")
    table = table.rename_columns([str(c).strip().lower() for c in table.column_names])
    for name, default in (("exchange", exchange), ("symbol", symbol), ("timeframe", timeframe)):
        if name not in table.column_names:
            if default is None:
                raise SchemaError(source, "header", f"no {name!r} column and no {name} given for the file")
            table = table.append_column(name, _constant(default, table.num_rows))
    missing = [c for c in ("ts", *VALUE_COLUMNS) if c not in table.column_names]
    if missing:
        raise SchemaError(source, "header", f"missing required column(s) {', '.join(missing)}")
    batch = validate_bars(table.select(list(COLUMNS)), source=source, locate=locate, limits=limits)
    if line_rejects:
        batch = dataclasses.replace(batch, rejected=[*line_rejects, *batch.rejected])
    return batch


def frame_from_bars(frame: pd.DataFrame, *, source: str) -> PriceBatch:
    """Validate an in-memory DataFrame of bars (any dtypes, ``COLUMNS`` present) the same way files are validated."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(source, "columns", f"missing required column(s) {', '.join(missing)}")
    text = frame[list(COLUMNS)].copy()
    if pd.api.types.is_datetime64_any_dtype(text["ts"]):
        text["ts"] = text["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    table = pa.Table.from_pandas(text.astype(str), preserve_index=False)
    return validate_bars(table, source=source, locate=lambda i: f"row {i + 1}")


def _constant(value: str, n: int) -> pa.StringArray:
    return pa.array([value], type=pa.string()).take(pa.array(np.zeros(n, dtype=np.int32), type=pa.int32()))


_LINE_END = re.compile(r"\r\n|\r|\n")
_LINE_BREAK = re.compile(rb"[\r\n]")


def _read_csv(data: bytes, source: str) -> tuple[pa.Table, list[Rejected]]:
    """All text columns, row ``i`` from line ``i + 2``; lines with more fields than the header come back rejected (their
    row left empty, so it is skipped like a blank line and the row -> line mapping holds)."""
    if not data.strip():
        raise SchemaError(source, "header", "the file is empty")
    # Fast path: Arrow's native reader (LF, CRLF or CR line ends). It skips blank lines and refuses rows with the wrong
    # number of fields, either of which would break the row -> line mapping, so such files take the line-by-line path.
    if b"\n\n" not in data and b"\n\r\n" not in data and b"\r\r" not in data:
        try:
            names = next(csv.reader([_LINE_BREAK.split(data, maxsplit=1)[0].decode("utf-8-sig").strip()]))
            table = pa_csv.read_csv(
                io.BytesIO(data),
                convert_options=pa_csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
            )
            return table, []
        except (pa.ArrowInvalid, UnicodeDecodeError, StopIteration, csv.Error):
            pass
    return _read_csv_lines(data, source)


def _read_csv_lines(data: bytes, source: str) -> tuple[pa.Table, list[Rejected]]:
    try:
        lines = _LINE_END.split(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise SchemaError(source, "file", f"not a readable CSV file: {exc}") from None
    if lines and lines[-1] == "":
        lines.pop()
    header = [name.strip() for name in next(csv.reader(lines[:1]), [])]
    if not any(header):
        raise SchemaError(source, "header", "the first line is empty; expected the column names")
    width = len(header)
    rows: list[list[str]] = []
    rejected: list[Rejected] = []
    for number, line in enumerate(lines[1:], start=2):
        problem: str | None
        try:
            fields = next(csv.reader([line]), [])
        except csv.Error as exc:
            fields, problem = [], f"not a readable CSV line: {exc}"
        else:
            problem = f"expected {width} fields, saw {len(fields)}" if len(fields) > width else None
        if problem:
            rejected.append(Rejected(source, f"line {number}", line, problem))
            fields = []
        rows.append(fields + [""] * (width - len(fields)))  # a short line: its missing fields are empty
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    table = pa.table([pa.array(list(col), type=pa.string()) for col in columns], names=header)
    return table, rejected


class _Reasons:
    """The first problem found per row; messages are built only for the rows that have one."""

    def __init__(self, text: pa.Table) -> None:
        self.text = text
        self.values = np.full(text.num_rows, None, dtype=object)
        self.bad = np.zeros(text.num_rows, dtype=bool)

    def add(self, mask: np.ndarray, message: str | Callable[[pd.DataFrame], pd.Series]) -> None:
        rows = np.flatnonzero(np.asarray(mask, dtype=bool) & ~self.bad)
        if rows.size:
            self.bad[rows] = True
            if isinstance(message, str):
                self.values[rows] = message
            else:
                subset = self.text.take(rows).to_pandas()
                self.values[rows] = list(message(subset))


def _as_float(column: TextColumn) -> np.ndarray:
    try:
        return pc.cast(column, pa.float64()).to_numpy()
    except pa.ArrowInvalid:  # some value is not a number: find which, slowly
        return pd.to_numeric(column.to_pandas(), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _as_epoch_seconds(column: TextColumn) -> tuple[np.ndarray, bool]:
    """Seconds since the epoch (NaN where unparseable) and whether the text was already ISO-8601 with an offset."""
    try:
        parsed = pc.cast(column, pa.timestamp("s", tz="UTC"))
        return parsed.to_numpy().astype("int64").astype("float64"), True
    except pa.ArrowInvalid:  # naive or unusual timestamps: pandas parses them (naive = UTC) and NaT marks the bad ones
        moments = pd.to_datetime(column.to_pandas(), utc=True, errors="coerce", format="ISO8601")
        seconds = (moments - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        return seconds.to_numpy(dtype="float64", na_value=np.nan), False


def validate_bars(raw: pa.Table, *, source: str, locate: Locator, limits: BarLimits | None = None) -> PriceBatch:
    """Split ``raw`` (text columns ``COLUMNS``) into valid bars and ``Rejected`` rows naming ``source`` and location.
    ``limits``: the sane range (default: the settings in force)."""
    limits = limits or BarLimits.from_settings()
    text = pa.Table.from_arrays([_text(raw[c]) for c in COLUMNS], names=list(COLUMNS))
    missing_markers = pa.array(["", "nan", "None", "NaT", "<NA>"])
    blank = {c: pc.is_in(text[c], value_set=missing_markers).to_numpy(zero_copy_only=False) for c in COLUMNS}
    empty_line = np.logical_and.reduce(list(blank.values()))
    _check_timeframes(text["timeframe"], source)
    reasons = _Reasons(text)
    for column in COLUMNS:
        reasons.add(blank[column], f"{column} is empty")

    seconds, iso_with_offset = _as_epoch_seconds(text["ts"])
    reasons.add(np.isnan(seconds), lambda t: "ts " + t["ts"].map(repr) + " is not a valid timestamp")
    numbers = {column: _as_float(text[column]) for column in VALUE_COLUMNS}
    for column in VALUE_COLUMNS:
        reasons.add(~np.isfinite(numbers[column]), partial(_said, column, " is not a finite number", as_repr=True))
    with np.errstate(invalid="ignore"):
        for column in PRICE_COLUMNS:
            reasons.add(numbers[column] <= 0, partial(_said, column, " is not positive"))
        reasons.add(numbers["volume"] < 0, lambda t: "volume " + t["volume"] + " is negative")
        for column in PRICE_COLUMNS:
            reasons.add(
                numbers[column] > limits.max_price,
                partial(_said, column, f" is above the sane maximum {limits.max_price:g}"),
            )
            reasons.add(
                numbers[column] < limits.min_price,
                partial(_said, column, f" is below the sane minimum {limits.min_price:g}"),
            )
        reasons.add(
            numbers["volume"] > limits.max_volume,
            lambda t: "volume " + t["volume"] + f" is above the sane maximum {limits.max_volume:g}",
        )
        o, h, low, c = (numbers[k] for k in PRICE_COLUMNS)
        reasons.add(h < low, lambda t: "high " + t["high"] + " is below low " + t["low"])
        reasons.add(h < np.maximum(o, c), lambda t: "high " + t["high"] + " is below open/close")
        reasons.add(low > np.minimum(o, c), lambda t: "low " + t["low"] + " is above open/close")

        misaligned = _misaligned(text["timeframe"], seconds)
    reasons.add(misaligned, lambda t: "ts " + t["ts"] + " is not aligned to the start of a " + t["timeframe"] + " bar")

    bad = reasons.bad & ~empty_line
    rejected = [_rejected(text, source, locate, int(i), reasons.values[i]) for i in np.flatnonzero(bad)]
    good = ~bad & ~empty_line
    all_good = bool(good.all())  # the usual case: no copy of the table
    if not iso_with_offset:  # normalise what pandas parsed, so PostgreSQL reads the instant we validated
        iso = pd.to_datetime(seconds[good], unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = (text if all_good else text.filter(pa.array(good))).set_column(3, "ts", pa.array(iso, type=pa.string()))
    elif not all_good:
        text = text.filter(pa.array(good))
    good_rows = np.flatnonzero(good)

    # The same key twice in one input: identical copies collapse; differing copies keep the first and reject the rest.
    key = (_series_codes(text).astype(np.int64) << 40) + seconds[good].astype(np.int64)
    dup_key = pd.Series(key).duplicated(keep="first").to_numpy()
    duplicates = 0
    if dup_key.any():
        values = text.select(list(VALUE_COLUMNS)).to_pandas()
        dup_exact = values.assign(key=key).duplicated(keep="first").to_numpy()
        for i in np.flatnonzero(dup_key & ~dup_exact):
            rejected.append(_rejected(raw, source, locate, int(good_rows[i]), "duplicate bar with different values"))
        duplicates = int(dup_exact.sum())
        text = text.filter(pa.array(~dup_key))
    return PriceBatch(source=source, table=text, rejected=rejected, duplicates=duplicates)


def _said(column: str, problem: str, rows: pd.DataFrame, *, as_repr: bool = False) -> pd.Series:
    """Per row of ``rows``: ``column``, its value (``repr`` of it with ``as_repr``) and ``problem``."""
    values = rows[column].map(repr) if as_repr else rows[column]
    return column + " " + values + problem


def _text(column: pa.ChunkedArray[Any]) -> TextColumn:
    """Trimmed text; a null cell (Parquet, DataFrames) becomes empty, so it is reported as such, never crashes."""
    trimmed = pc.utf8_trim_whitespace(column.cast(pa.string()))
    return trimmed.fill_null(pa.scalar("", type=pa.string())) if trimmed.null_count else trimmed


def _rejected(text: pa.Table, source: str, locate: Locator, i: int, reason: str) -> Rejected:
    row = text.slice(i, 1).to_pylist()[0]
    return Rejected(source, locate(i), ",".join(str(row.get(c, "")) for c in COLUMNS), reason)


def _series_keys(table: pa.Table) -> TextColumn:
    """Per row, its series as one text: exchange, symbol and timeframe joined by ``\\x1f``."""
    columns = table["exchange"], table["symbol"], table["timeframe"]
    # pyarrow-stubs wants the separator (the last argument) to be of the columns' type; Arrow takes a str.
    keys: TextColumn = pc.binary_join_element_wise(*columns, "\x1f")  # type: ignore[call-overload]
    return keys


def _dictionary(column: pa.ChunkedArray[Any]) -> pa.DictionaryArray[Any, Any]:
    """``column`` dictionary-encoded in one chunk: ``indices`` per row into the distinct values, ``dictionary``."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    if not isinstance(encoded, pa.DictionaryArray):
        raise TypeError(f"dictionary_encode gave {type(encoded).__name__}")
    return encoded


def _series_codes(table: pa.Table) -> np.ndarray:
    codes: np.ndarray = _dictionary(_series_keys(table)).indices.to_numpy()
    return codes


def _check_timeframes(column: TextColumn, source: str) -> None:
    """An unsupported timeframe is the file's problem, not each row's: one ``SchemaError`` naming it (and the rows it
    covers), so nothing of the file is stored and the operator gets one line, not one per row. A blank timeframe
    stays a per-row "missing value"."""
    counts = pc.value_counts(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)
    unknown = {}
    for value, count in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True):
        if value not in ("", "nan", "None", "NaT") and value is not None and value not in TIMEFRAMES:
            unknown[value] = count
    if unknown:
        named = ", ".join(f"{tf!r} ({n} row{'s' if n != 1 else ''})" for tf, n in sorted(unknown.items()))
        raise SchemaError(source, "timeframe", f"unsupported timeframe {named}; supported: {' '.join(TIMEFRAMES)}")


def _misaligned(timeframes: TextColumn, seconds: np.ndarray) -> np.ndarray:
    """Rows whose ``ts`` is not a bar open of their timeframe (``bar_grid``: epoch multiples, Mondays for 1w, the 1st
    00:00 UTC for 1M); rows with no valid ts or timeframe are left to their own reasons."""
    codes = _dictionary(timeframes)
    index = codes.indices.to_numpy(zero_copy_only=False)
    result = np.zeros(len(seconds), dtype=bool)
    valid = ~np.isnan(seconds)
    for code, timeframe in enumerate(codes.dictionary.to_pylist()):
        if timeframe not in TIMEFRAMES:
            continue
        rows = (index == code) & valid
        grid = bar_grid(timeframe)
        if grid is None:  # months: the first instant of a calendar month (UTC)
            moments = pd.DatetimeIndex(pd.to_datetime(seconds[rows], unit="s", utc=True))
            result[rows] = (moments.day != 1) | (moments != moments.normalize())
        else:
            origin, step = grid
            result[rows] = np.fmod(seconds[rows] - origin, step) != 0
    return result


def _csv_chunks(table: pa.Table, rows: int = 65_536) -> Iterator[bytes]:
    """The table as header-less CSV, in pieces: the server parses one piece while the next is written."""
    options = pa_csv.WriteOptions(include_header=False)
    for batch in table.to_batches(max_chunksize=rows):
        buffer = io.BytesIO()
        pa_csv.write_csv(batch, buffer, write_options=options)
        yield buffer.getvalue()


_STAGE_DDL = """
create temporary table _ohlcv_in (
    exchange text not null, symbol text not null, timeframe text not null, ts timestamptz not null,
    open numeric not null, high numeric not null, low numeric not null, close numeric not null,
    volume numeric not null
) on commit drop
"""

_MERGE = """
insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id)
select exchange, symbol, timeframe, ts, open, high, low, close, volume, %(run_id)s from _ohlcv_in
on conflict (exchange, symbol, timeframe, ts) do nothing
"""

# Bars already stored whose values differ: revisions, never silent overwrites. Bars this statement just inserted are
# equal to themselves; a bar an earlier file of the same run stored counts like any other.
_REVISIONS = """
select i.exchange, i.symbol, i.timeframe, i.ts, i.open, i.high, i.low, i.close, i.volume,
       o.open, o.high, o.low, o.close, o.volume
from _ohlcv_in i
join raw.ohlcv o using (exchange, symbol, timeframe, ts)
where (o.open, o.high, o.low, o.close, o.volume) is distinct from (i.open, i.high, i.low, i.close, i.volume)
order by i.exchange, i.symbol, i.timeframe, i.ts
"""

# Per series: the stored close just before the batch's first bar of it (the reference of the jump check).
_PREVIOUS_CLOSES = """
select r.code, p.close::text
from unnest(%(code)s::int[], %(exchange)s::text[], %(symbol)s::text[], %(timeframe)s::text[], %(lo)s::timestamptz[])
     as r(code, exchange, symbol, timeframe, lo)
cross join lateral (
    select o.close from raw.ohlcv o
    where o.exchange = r.exchange and o.symbol = r.symbol and o.timeframe = r.timeframe and o.ts < r.lo
    order by o.ts desc
    limit 1
) p
"""

_OVERLAPPING_SERIES = """
select r.exchange, r.symbol, r.timeframe
from unnest(%(exchange)s::text[], %(symbol)s::text[], %(timeframe)s::text[], %(lo)s::timestamptz[], %(hi)s::timestamptz[])
     as r(exchange, symbol, timeframe, lo, hi)
where exists (
    select 1 from raw.ohlcv o
    where o.exchange = r.exchange and o.symbol = r.symbol and o.timeframe = r.timeframe and o.ts between r.lo and r.hi
)
"""


def _series_ranges(table: pa.Table) -> pa.Table:
    with_ts = table.select(["exchange", "symbol", "timeframe"]).append_column(
        "t", pc.cast(table["ts"], pa.timestamp("us", tz="UTC"))
    )
    return with_ts.group_by(["exchange", "symbol", "timeframe"]).aggregate([("t", "min"), ("t", "max")])


def _drop_jumps(cur: Cursor, table: pa.Table, source: str, max_jump: float) -> tuple[pa.Table, list[Rejected]]:
    """The batch without closes that jump more than ``max_jump`` times from their series' previous close, and those
    bars as ``Rejected`` naming the previous close. Run under the merge lock, so the stored history cannot move."""
    if max_jump <= 0 or table.num_rows == 0:
        return table, []
    joined = _dictionary(_series_keys(table))
    # A dictionary holds no nulls (a null row is a null index), so every key is a text.
    keys = [key for key in joined.dictionary.to_pylist() if key is not None]
    codes, series = joined.indices.to_numpy(), [key.split("\x1f") for key in keys]
    ts = pc.cast(table["ts"], pa.timestamp("us", tz="UTC")).to_numpy().astype("int64")
    close = pc.cast(table["close"], pa.float64()).to_numpy()
    first = np.full(len(series), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, codes, ts)
    stored = _previous_closes(cur, series, first)
    reference = np.array([float(stored[i]) if i in stored else np.nan for i in range(len(series))])
    jumps = close_jumps(codes, ts, close, reference, max_jump)
    if not jumps.flagged.any():
        return table, []
    rejected = []
    for row in np.flatnonzero(jumps.flagged):
        ref = int(jumps.reference[row])
        previous = stored[int(codes[row])] if ref < 0 else str(table["close"][ref])
        relation = f"more than {max_jump:g}x" if close[row] > float(previous) else f"less than 1/{max_jump:g} of"
        reason = f"close {table['close'][int(row)]} is {relation} the previous close {previous}"
        location = f"{' '.join(series[codes[row]])} {(_EPOCH + timedelta(microseconds=int(ts[row]))).isoformat()}"
        payload = ",".join(str(table[c][int(row)]) for c in COLUMNS)
        rejected.append(Rejected(source, location, payload, f"{reason} (ALPHALOOM_INGEST_MAX_CLOSE_JUMP)"))
    return table.filter(pa.array(~jumps.flagged)), rejected


def _previous_closes(cur: Cursor, series: list[list[str]], first_us: np.ndarray) -> dict[int, str]:
    """Series index -> the exact text of the stored close just before ``first_us[index]`` (absent: none stored)."""
    params = {
        "code": list(range(len(series))),
        "exchange": [s[0] for s in series],
        "symbol": [s[1] for s in series],
        "timeframe": [s[2] for s in series],
        "lo": [_EPOCH + timedelta(microseconds=int(t)) for t in first_us],
    }
    cur.execute(_PREVIOUS_CLOSES, params)
    return {code: close for code, close in cur.fetchall()}


def merge_bars(conn: Connection, batch: PriceBatch, run_id: str, *, limits: BarLimits | None = None) -> MergeResult:
    """Merge a validated batch into ``raw.ohlcv`` inside the caller's transaction; quarantine rejects, closes that jump
    beyond ``limits.max_close_jump`` (default: the settings in force) and revisions."""
    quarantined = quarantine(conn, run_id, batch.rejected)
    if len(batch) == 0:
        return MergeResult(0, 0, 0, 0, quarantined)
    limits = limits or BarLimits.from_settings()
    # The engines are built on the psycopg 3 driver, and a connection in use is checked out: never None here.
    dbapi = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
    with dbapi.cursor() as cur:
        cur.execute("select pg_advisory_xact_lock(%s)", (_MERGE_LOCK_KEY,))
        table, jumps = _drop_jumps(cur, batch.table, batch.source, limits.max_close_jump)
        ranges = _series_ranges(table).to_pydict()
        cur.execute(
            _OVERLAPPING_SERIES,
            {
                "exchange": ranges["exchange"], "symbol": ranges["symbol"], "timeframe": ranges["timeframe"],
                "lo": ranges["t_min"], "hi": ranges["t_max"],
            },
        )  # fmt: skip
        overlapping = {"\x1f".join(row) for row in cur.fetchall()}
        if overlapping:
            joined = _series_keys(table)
            to_merge = pc.is_in(joined, value_set=pa.array(sorted(overlapping)))
            fresh, existing = table.filter(pc.invert(to_merge)), table.filter(to_merge)
        else:
            fresh, existing = table, table.slice(0, 0)

        # No stored bar in these series' ranges: COPY straight into raw.ohlcv, as fast as a plain COPY.
        if fresh.num_rows:
            rows = fresh.append_column("run_id", _constant(run_id, fresh.num_rows))
            with cur.copy(f"copy raw.ohlcv ({', '.join(COLUMNS)}, run_id) from stdin (format csv)") as copy:
                for chunk in _csv_chunks(rows):
                    copy.write(chunk)
        inserted, revisions = fresh.num_rows, []
        if existing.num_rows:
            cur.execute(_STAGE_DDL)
            with cur.copy(f"copy _ohlcv_in ({', '.join(COLUMNS)}) from stdin (format csv)") as copy:
                for chunk in _csv_chunks(existing):
                    copy.write(chunk)
            cur.execute(_MERGE, {"run_id": run_id})
            merged = cur.rowcount
            inserted += merged
            if merged < existing.num_rows:
                cur.execute(_REVISIONS)
                revisions = [_revision(batch.source, row) for row in cur.fetchall()]
            cur.execute("drop table _ohlcv_in")
    quarantined += quarantine(conn, run_id, [*jumps, *revisions])
    return MergeResult(
        staged=len(batch),
        inserted=inserted,
        unchanged=table.num_rows - inserted - len(revisions),
        revisions=len(revisions),
        quarantined=quarantined,
    )


def _revision(source: str, row: tuple[Any, ...]) -> Rejected:
    key, new, old = row[:4], row[4:9], row[9:]
    changes = ", ".join(f"{name} {o} -> {n}" for name, o, n in zip(VALUE_COLUMNS, old, new, strict=True) if o != n)
    return Rejected(
        source,
        f"{key[0]} {key[1]} {key[2]} {key[3].isoformat()}",
        ",".join(str(v) for v in (*key, *new)),
        f"revision of a stored bar (not overwritten): {changes}",
    )
