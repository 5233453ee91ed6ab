"""Live prices: ccxt.pro websocket candles -> closed bars in ``raw.ohlcv``, latest quote per symbol in Redis.

- ``ClosedCandles`` (pure) turns the successive candle lists ``watch_ohlcv`` returns into closed bars, each exactly
  once: a candle is closed when a later candle of the same series has been seen. The forming candle is never emitted.
- ``QuoteCache`` writes the latest price of each symbol to Redis (``ALPHALOOM_REDIS_URL``); without a URL there is no
  cache and nothing is written.
- ``stream_series`` watches one series and reconnects with exponential backoff after a dropped connection. After a
  reconnect (a missing bar between the last emitted one and the newest seen), the bars that closed meanwhile are
  fetched over REST (``CcxtPriceSource``, closed bars only) from the last emitted bar, so no closed candle goes
  missing and none is stored twice (``merge_bars`` is idempotent anyway). Known limit: a drop exactly at a bar's
  close, reconnecting inside the next bar, leaves no missing bar to detect, so that bar is stored with the last
  update seen; a later REST ingest then quarantines the final values as a revision rather than overwriting.
- ``run_stream(specs, engine=..., redis_url=...)`` runs all of that for many series until stopped (``alphaloom stream``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from alphaloom.domain import timeframe_delta
from alphaloom.errors import ConfigError
from alphaloom.ingest.ccxt_prices import SeriesSpec


@dataclass
class ClosedCandles:
    """Closed-candle detector for one series; ``last_closed_ms`` is the open time of the last bar emitted.

    ccxt.pro hands back only the candles updated since the previous call (``newUpdates``), so the latest version of
    every candle not yet emitted is kept here until a later candle proves it closed.
    """

    timeframe: str
    last_closed_ms: int | None = None
    _pending: dict[int, list[float]] = field(default_factory=dict, repr=False)

    def update(self, candles: Sequence[Sequence[float]]) -> list[list[float]]:
        """The candles now known closed and not emitted before, oldest first."""
        for candle in candles:
            ts = int(candle[0])
            if self.last_closed_ms is None or ts > self.last_closed_ms:
                self._pending[ts] = list(candle)
        if not self._pending:
            return []
        latest = max(self._pending)
        closed = [self._pending.pop(ts) for ts in sorted(self._pending) if ts < latest]
        if closed:
            self.last_closed_ms = int(closed[-1][0])
        return closed

    def has_gap(self, candles: Sequence[Sequence[float]]) -> bool:
        """Whether some bar between the last emitted one and the newest of ``candles`` was never seen (a reconnect
        or lost messages): those must come from a REST backfill."""
        known = set(self._pending) | {int(c[0]) for c in candles}
        if not known or self.last_closed_ms is None:
            return False
        step = int(timeframe_delta(self.timeframe).total_seconds() * 1000)
        return any(ts not in known for ts in range(self.last_closed_ms + step, max(known), step))

    def skip_to(self, last_closed_ms: int) -> None:
        """Bars up to ``last_closed_ms`` were stored another way (a REST backfill): forget them here."""
        self.last_closed_ms = max(self.last_closed_ms or last_closed_ms, last_closed_ms)
        self._pending = {ts: c for ts, c in self._pending.items() if ts > self.last_closed_ms}

    def missing_since(self) -> datetime | None:
        """Where a REST backfill should start after a reconnect (the bar after the last emitted)."""
        if self.last_closed_ms is None:
            return None
        step = int(timeframe_delta(self.timeframe).total_seconds() * 1000)
        return datetime.fromtimestamp((self.last_closed_ms + step) / 1000, UTC)


class QuoteCache:
    """Latest quote per symbol in Redis under ``{prefix}quote:{exchange}:{symbol}`` (a JSON object)."""

    def __init__(self, url: str | None, prefix: str = "alphaloom:") -> None:
        self.prefix = prefix
        self.client = None
        if url:
            import redis

            self.client = redis.Redis.from_url(url, socket_timeout=5, decode_responses=True)

    def key(self, exchange: str, symbol: str) -> str:
        return f"{self.prefix}quote:{exchange}:{symbol}"

    def put(self, exchange: str, symbol: str, price: float, ts_ms: int) -> bool:
        """Store the quote; ``False`` when there is no cache configured."""
        if self.client is None:
            return False
        payload = {"exchange": exchange, "symbol": symbol, "price": repr(float(price)), "ts": ts_ms,
                   "updated_at": datetime.now(UTC).isoformat()}  # fmt: skip
        self.client.set(self.key(exchange, symbol), json.dumps(payload))
        return True

    def get(self, exchange: str, symbol: str) -> dict | None:
        if self.client is None:
            return None
        raw = self.client.get(self.key(exchange, symbol))
        return None if raw is None else json.loads(raw)


def make_pro_exchange(exchange_id: str, config: dict | None = None):
    """A ccxt.pro (websocket) exchange by id; ``ConfigError`` when ccxt.pro has no such exchange."""
    import ccxt.pro as ccxtpro

    if exchange_id not in ccxtpro.exchanges:
        raise ConfigError(f"unknown exchange {exchange_id!r}: ccxt.pro has no websocket support for it")
    return getattr(ccxtpro, exchange_id)({"enableRateLimit": True, **(config or {})})


async def stream_series(
    exchange,
    symbol: str,
    timeframe: str,
    *,
    on_closed: Callable[[list[list[float]]], Awaitable[None]],
    on_quote: Callable[[float, int], Awaitable[None]],
    backfill: Callable[[datetime], Awaitable[list[list[float]]]] | None = None,
    stop: asyncio.Event | None = None,
    initial_backoff: float = 1.0,
    max_backoff: float = 60.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> ClosedCandles:
    """Watch one series until ``stop`` is set; reconnect after network errors with doubling waits."""
    import ccxt

    tracker = ClosedCandles(timeframe)
    wait = initial_backoff
    while stop is None or not stop.is_set():
        try:
            candles = await exchange.watch_ohlcv(symbol, timeframe)
        except ccxt.NetworkError:
            # ccxt.pro opens a new connection on the next watch call; wait first, doubling up to max_backoff.
            await sleep(wait)
            wait = min(wait * 2, max_backoff)
            continue
        wait = initial_backoff
        # A reconnect (ours, or one ccxt made quietly between two calls) loses the messages sent meanwhile: bars
        # that closed while away, and the final update of the bar that was forming. REST gives both, closed only.
        if backfill is not None and tracker.has_gap(candles):
            newest = max(int(c[0]) for c in candles)
            since = tracker.missing_since()
            missed = [c for c in await backfill(since) if int(c[0]) < newest] if since is not None else []
            if missed:
                tracker.skip_to(int(missed[-1][0]))
                await on_closed(missed)
        closed = tracker.update(candles)
        if closed:
            await on_closed(closed)
        last = candles[-1]
        await on_quote(float(last[4]), int(last[0]))
    return tracker


async def run_stream(
    specs: Sequence[SeriesSpec],
    *,
    engine: Engine,
    run_id: str,
    redis_url: str | None,
    redis_prefix: str = "alphaloom:",
    stop: asyncio.Event | None = None,
    observe: Callable[[SeriesSpec, list[list[float]], int], None] = lambda *_: None,
    pro_factory: Callable[[str], Any] = make_pro_exchange,
    rest_factory: Callable[[str], Any] | None = None,
    initial_backoff: float = 1.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Stream every series until ``stop`` is set: closed bars merged into ``raw.ohlcv`` under ``run_id``, quotes to
    Redis when ``redis_url`` is set. One ccxt.pro exchange per venue; REST backfill after reconnects. ``observe`` sees
    each stored group of closed bars with how many were new; the factories build the exchanges (ccxt.pro and
    ``CcxtPriceSource``) for a venue id."""
    from alphaloom.ingest.ccxt_prices import CcxtPriceSource, make_exchange
    from alphaloom.ingest.prices import frame_from_bars, merge_bars

    cache = QuoteCache(redis_url, prefix=redis_prefix)
    pro = {e: pro_factory(e) for e in sorted({s.exchange for s in specs})}
    rest = {e: (rest_factory or (lambda x: CcxtPriceSource(make_exchange(x))))(e) for e in pro}

    def store(spec: SeriesSpec, candles: list[list[float]]) -> None:
        frame = pd.DataFrame(candles, columns=["ts", "open", "high", "low", "close", "volume"])
        frame["ts"] = pd.to_datetime(frame["ts"], unit="ms", utc=True)
        frame = frame.assign(exchange=spec.exchange, symbol=spec.symbol, timeframe=spec.timeframe)
        with engine.begin() as conn:
            result = merge_bars(conn, frame_from_bars(frame, source=f"stream:{spec}"), run_id)
        observe(spec, candles, result.inserted)

    def series(spec: SeriesSpec) -> Awaitable[ClosedCandles]:
        async def on_closed(candles: list[list[float]]) -> None:
            await asyncio.to_thread(store, spec, candles)

        async def on_quote(price: float, ts: int) -> None:
            await asyncio.to_thread(cache.put, spec.exchange, spec.symbol, price, ts)

        async def backfill(since: datetime) -> list[list[float]]:
            frame = await asyncio.to_thread(rest[spec.exchange].closed_bars, spec.symbol, spec.timeframe, since=since)
            return [
                [int(t.timestamp() * 1000), o, h, lo, c, v]
                for t, o, h, lo, c, v in frame[["ts", "open", "high", "low", "close", "volume"]].itertuples(index=False)
            ]

        return stream_series(pro[spec.exchange], spec.symbol, spec.timeframe, on_closed=on_closed,
                             on_quote=on_quote, backfill=backfill, stop=stop, initial_backoff=initial_backoff, sleep=sleep)  # fmt: skip

    try:
        await asyncio.gather(*(series(s) for s in specs))
    finally:
        for exchange in pro.values():
            await exchange.close()
