"""Price bars from exchanges through ccxt's unified REST API: the one wrapper around ccxt for prices (the exchange
itself is built by ``alphaloom.venues.ccxt_exchange.make_exchange``, as the live brokers' are).

- ``CcxtPriceSource(exchange).closed_bars(symbol, timeframe, since=...)`` pages through ``fetch_ohlcv`` with
  ``since``/``limit`` until it reaches the present, and returns only closed bars: the still-open last candle is dropped,
  never stored as final. Closure is judged by the venue's clock, never the local one (a few seconds of local skew
  would otherwise store a forming bar for good): the venue's time is read (``fetch_time``) before the first page, so
  every candle fetched after it is at least that old, and a bar is closed when it ends by then or when the same
  answer holds a newer bar of the series. A venue that cannot tell its time (no ``fetchTime``, or it refuses) is
  judged by newer bars alone: its newest bar waits for the next run.
- Vendor errors are translated through the one ccxt error table (``alphaloom.venues.ccxt_errors``, column
  ``INGEST``): ``NetworkError`` (which in ccxt covers ``RateLimitExceeded``, ``ExchangeNotAvailable`` and
  ``RequestTimeout``) is retried with exponential backoff through tenacity and, once the attempts are spent, raised as
  ``VenueTemporaryError`` (retry later); an unknown symbol (``BadSymbol``) is a ``ConfigError`` raised at once, without
  retries (retrying will not help); any other exchange error is a ``VenueError``.
- ``fetch_series(specs, ...)`` fetches many (exchange, symbol, timeframe) series with bounded concurrency: one worker
  per exchange at a time (rate limits are per exchange), at most ``max_concurrency`` exchanges in parallel, resuming
  each series after its last stored bar (``resume_points``). Each result carries its market's metadata
  (``market_spec``: class, quantity step, minimum amount from ccxt ``markets``), which the ingest stores in
  ``raw.markets`` (``alphaloom.markets``) so sizing never guesses them from a symbol's spelling.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import NamedTuple, TypeVar

import ccxt
import pandas as pd
from sqlalchemy import Connection, text
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from alphaloom.domain import bar_close, check_timeframe
from alphaloom.errors import ConfigError, VenueError, VenueTemporaryError
from alphaloom.ingest.price_sources import SeriesSource
from alphaloom.ingest.prices import COLUMNS, PriceBatch, frame_from_bars
from alphaloom.markets import MarketSpec, spec_from_ccxt
from alphaloom.venues.ccxt_errors import TEMPORARY, Call, venue_error

# Local clock skew against the venue worth a warning (it is never used to judge a bar, but it hints at a host problem).
SKEW_WARNING_SECONDS = 5.0

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SeriesSpec:
    """One price series at one venue: ``exchange`` is a ccxt id (``binance``), ``symbol`` unified (``BTC/USDT``)."""

    exchange: str
    symbol: str
    timeframe: str

    @classmethod
    def parse(cls, spec: str) -> SeriesSpec:
        """``"binance:BTC/USDT:1h"`` -> ``SeriesSpec``; ``ConfigError`` naming the spec when it has another shape."""
        parts = spec.split(":")
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise ConfigError(f"price source {spec!r} must look like 'exchange:BASE/QUOTE:timeframe'")
        exchange, symbol, timeframe = (p.strip() for p in parts)
        try:
            check_timeframe(timeframe)
        except ValueError as exc:
            raise ConfigError(f"price source {spec!r}: {exc}") from None
        return cls(exchange.lower(), symbol, timeframe)

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol}:{self.timeframe}"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry policy for temporary venue errors: ``attempts`` tries, waits doubling from ``initial`` up to ``maximum``
    seconds. ``sleep`` is how waiting happens (tests pass a recorder, so no test sleeps)."""

    attempts: int = 5
    initial: float = 1.0
    maximum: float = 30.0
    sleep: Callable[[float], None] = time.sleep


class CcxtPriceSource:
    """Closed OHLCV bars of one exchange. Not thread-safe: use one instance per thread (``fetch_series`` does).
    ``clock`` is the local clock, read only to report its skew against the venue's (never to judge a bar closed)."""

    def __init__(self, exchange: ccxt.Exchange, *, page_limit: int = 1000, backoff: Backoff | None = None,
                 clock: Callable[[], datetime] | None = None, max_pages: int = 10_000,
                 venue: str | None = None) -> None:  # fmt: skip
        self.exchange = exchange
        self.venue = venue or str(exchange.id)  # the ``exchange`` stored in raw.ohlcv
        self.page_limit = page_limit
        self.backoff = backoff or Backoff()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.max_pages = max_pages

    @property
    def exchange_id(self) -> str:
        return str(self.exchange.id)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        retrying = Retrying(
            retry=retry_if_exception_type(TEMPORARY),
            stop=stop_after_attempt(self.backoff.attempts),
            wait=wait_exponential(multiplier=self.backoff.initial, max=self.backoff.maximum),
            sleep=self.backoff.sleep,
            reraise=True,
        )
        try:
            return retrying(fn)
        except ccxt.BaseError as exc:
            spent = f": still failing after {self.backoff.attempts} attempts" if isinstance(exc, TEMPORARY) else ""
            raise venue_error(exc, Call.INGEST, f"{self.exchange_id} {what}{spent}") from exc

    def load_markets(self) -> None:
        self._call("load_markets", self.exchange.load_markets)

    def market_spec(self, symbol: str) -> MarketSpec:
        """The venue's own description of ``symbol`` (class, quantity step, minimum amount) for ``raw.markets``."""
        self.load_markets()
        market = (self.exchange.markets or {}).get(symbol)
        if market is None:
            raise ConfigError(f"{self.exchange_id} has no market {symbol!r}; check the configured symbol")
        return spec_from_ccxt(symbol, market, int(self.exchange.precisionMode))

    def venue_time_ms(self) -> int | None:
        """The venue's clock in epoch milliseconds (``fetch_time``), or ``None`` when the venue cannot tell it (no
        ``fetchTime``, or a non-temporary refusal). A temporary failure, once retried, is a ``VenueTemporaryError``."""
        if not self.exchange.has.get("fetchTime"):
            return None
        try:
            venue_ms = self._call("fetch_time", self.exchange.fetch_time)
        except VenueError as exc:
            if isinstance(exc, VenueTemporaryError):
                raise
            log.warning("%s: no venue time (%s); judging bar closure by newer bars only", self.exchange_id, exc)
            return None
        if venue_ms is None:
            return None
        skew = self.clock().timestamp() - int(venue_ms) / 1000
        if abs(skew) > SKEW_WARNING_SECONDS:
            log.warning("%s: local clock is %+.1f s off the venue's; bars are judged by the venue's", self.exchange_id,
                        skew)  # fmt: skip
        return int(venue_ms)

    def closed_bars(self, symbol: str, timeframe: str, *, since: datetime | None) -> pd.DataFrame:
        """Closed bars with open time >= ``since`` (all the venue gives when ``None``), oldest first, as a frame of
        ``COLUMNS`` (numbers as ccxt parsed them, ``ts`` UTC). Pages forward until the venue has nothing newer."""
        self.load_markets()
        if symbol not in (self.exchange.markets or {}):
            raise ConfigError(f"{self.exchange_id} has no market {symbol!r}; check the configured symbol")
        venue_ms = self.venue_time_ms()  # read before any page: every candle below was fetched at or after it
        cursor = None if since is None else int(since.timestamp() * 1000)
        rows: dict[int, list[float]] = {}
        for _ in range(self.max_pages):
            page = self._call(
                f"fetch_ohlcv {symbol} {timeframe}",
                partial(self.exchange.fetch_ohlcv, symbol, timeframe, since=cursor, limit=self.page_limit),
            )
            fresh = [r for r in page if (cursor is None or r[0] >= cursor) and r[0] not in rows]
            if not fresh:
                break
            for candle in fresh:
                rows[int(candle[0])] = candle
            cursor = _close_ms(max(rows), timeframe)
            if venue_ms is not None and _close_ms(cursor, timeframe) > venue_ms:  # the next bar had not closed by then
                break
        opens = sorted(rows)
        newest = opens[-1] if opens else None
        closed = [
            rows[t] for t in opens if t != newest or (venue_ms is not None and _close_ms(t, timeframe) <= venue_ms)
        ]
        frame = pd.DataFrame(closed, columns=["ts", "open", "high", "low", "close", "volume"])
        frame["ts"] = pd.to_datetime(frame["ts"].astype("int64"), unit="ms", utc=True)
        frame.insert(0, "timeframe", timeframe)
        frame.insert(0, "symbol", symbol)
        frame.insert(0, "exchange", self.venue)
        return frame[list(COLUMNS)]

    def batch(self, symbol: str, timeframe: str, *, since: datetime | None) -> PriceBatch:
        """``closed_bars`` validated like a file (``frame_from_bars``), ready for quality checks and ``merge_bars``."""
        frame = self.closed_bars(symbol, timeframe, since=since)
        for column in ("open", "high", "low", "close", "volume"):
            frame[column] = frame[column].map(_decimal_text)
        return frame_from_bars(frame, source=f"ccxt:{self.venue}:{symbol}:{timeframe}")


def _close_ms(open_ms: int, timeframe: str) -> int:
    """Epoch ms at which the bar opening at ``open_ms`` closes (a month bar: the next month's start)."""
    return int(bar_close(datetime.fromtimestamp(open_ms / 1000, UTC), timeframe).timestamp() * 1000)


def _decimal_text(value: float | None) -> str:
    # ccxt parses the venue's decimal strings into floats; repr gives back the shortest text that round-trips.
    return "" if value is None else repr(float(value))


class _StoredEnd(NamedTuple):
    """A series and the open time of its last stored bar (``None`` when none is stored)."""

    exchange: str
    symbol: str
    timeframe: str
    last_open: datetime | None


def resume_points(conn: Connection, specs: Iterable[SeriesSpec]) -> dict[SeriesSpec, datetime | None]:
    """The open time of the bar after the last stored one, per series (``None`` when nothing is stored yet)."""
    specs = list(specs)
    if not specs:
        return {}
    rows = conn.execute(
        text(
            "select r.exchange, r.symbol, r.timeframe, (select max(o.ts) from raw.ohlcv o where o.exchange = r.exchange"
            " and o.symbol = r.symbol and o.timeframe = r.timeframe) "
            "from unnest(cast(:e as text[]), cast(:s as text[]), cast(:t as text[])) as r(exchange, symbol, timeframe)"
        ),
        {"e": [s.exchange for s in specs], "s": [s.symbol for s in specs], "t": [s.timeframe for s in specs]},
    ).all()
    last = {SeriesSpec(r.exchange, r.symbol, r.timeframe): r.last_open for r in map(_StoredEnd._make, rows)}
    return {s: (None if (ts := last[s]) is None else bar_close(ts, s.timeframe)) for s in specs}


@dataclass
class SeriesResult:
    """What one series fetch gave: a ``batch`` or the ``error`` that stopped it (the other series still load)."""

    spec: SeriesSpec
    since: datetime | None
    batch: PriceBatch | None = None
    error: str | None = None
    error_type: str | None = None
    extra: dict[str, object] = field(default_factory=dict)
    market: MarketSpec | None = None  # the venue's metadata of the series' market, stored in raw.markets


def fetch_series(
    specs: Sequence[SeriesSpec],
    since: Mapping[SeriesSpec, datetime | None],
    *,
    source_for: Callable[[str], SeriesSource],
    max_concurrency: int = 4,
    default_since: datetime | None = None,
) -> list[SeriesResult]:
    """Fetch every series; series of one exchange run one after another on one source (``CcxtPriceSource``, or the
    venue's own: ``price_sources.series_source``), exchanges run in
    parallel up to ``max_concurrency``. An error stops only its own series (a bad exchange id, all of that exchange)."""
    by_exchange: dict[str, list[SeriesSpec]] = defaultdict(list)
    for spec in specs:
        by_exchange[spec.exchange].append(spec)

    def run(exchange: str, group: list[SeriesSpec]) -> list[SeriesResult]:
        results = []
        try:
            source = source_for(exchange)
        except ConfigError as exc:
            return [SeriesResult(s, since.get(s), error=str(exc), error_type="ConfigError") for s in group]
        for spec in group:
            start = since.get(spec) or default_since
            try:
                batch = source.batch(spec.symbol, spec.timeframe, since=start)
                results.append(SeriesResult(spec, start, batch=batch, market=source.market_spec(spec.symbol)))
            except (ConfigError, VenueError) as exc:
                results.append(SeriesResult(spec, start, error=str(exc), error_type=type(exc).__name__))
        return results

    with ThreadPoolExecutor(max_workers=max(1, max_concurrency), thread_name_prefix="ccxt") as pool:
        futures = [pool.submit(run, exchange, group) for exchange, group in by_exchange.items()]
        return [result for future in futures for result in future.result()]
