"""Live prices: ccxt.pro websocket candles -> closed bars in ``raw.ohlcv``, latest quote per symbol in Redis.

- ``ClosedCandles`` (pure) turns the successive candle lists ``watch_ohlcv`` returns into closed bars, each exactly
  once, never the forming one. On binance a candle is final only from its closing kline update (``x``), which
  ccxt.pro's unified candles drop: ``hook_kline_closes`` keeps it from the raw messages. Elsewhere a candle is
  closed when a later candle of the same series has been seen.
- ``QuoteCache`` writes the latest price of each symbol to Redis (``ALPHALOOM_REDIS_URL``); without a URL there is no
  cache and nothing is written.
- ``stream_series`` watches one series and reconnects with exponential backoff after a dropped connection. After a
  reconnect (a missing bar between the last emitted one and the newest seen), the bars that closed meanwhile are
  fetched over REST (``CcxtPriceSource``, closed bars only) from the last emitted bar, so no closed candle goes
  missing and none is stored twice (``merge_bars`` is idempotent anyway). A bar whose closing update was not seen
  (a drop exactly at its close, reconnecting inside the next bar) is fetched over REST the same way rather than
  stored from its last seen update. Venues without a closing flag keep that limit: such a bar is stored with the
  last update seen, and a later REST ingest quarantines the final values as a revision rather than overwriting.
- ``run_stream(specs, engine=..., redis_url=...)`` runs all of that for many series until stopped (``alphaloom stream``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Engine

from alphaloom.domain import bar_close
from alphaloom.ingest.ccxt_prices import SeriesSpec
from alphaloom.venues.ccxt_exchange import make_exchange, make_pro_exchange

if TYPE_CHECKING:
    import ccxt.pro


@dataclass
class ClosedCandles:
    """Closed-candle detector for one series; ``last_closed_ms`` is the open time of the last bar emitted.

    ccxt.pro hands back only the candles updated since the previous call (``newUpdates``), so the latest version of
    every candle not yet emitted is kept here until it is known closed:

    - ``flagged=False`` (venues whose stream does not mark a candle's closing update): a later candle of the series
      proves a candle closed, and it is emitted with the last update seen of it.
    - ``flagged=True`` (binance's kline ``x``, see ``KlineCloses``): a candle is emitted only from its closing update
      (``finals``). A candle superseded by a later one whose closing update was never seen (a drop exactly at its
      close, reconnecting inside the next bar) is not emitted from the stream: ``backfill_since`` points at it, so
      that it is stored from the venue's REST candles instead of from a stale update.
    """

    timeframe: str
    flagged: bool = False
    last_closed_ms: int | None = None
    _pending: dict[int, list[float]] = field(default_factory=dict, repr=False)
    _final: set[int] = field(default_factory=set, repr=False)

    def _next_ms(self, open_ms: int) -> int:
        """The open of the bar after the one opening at ``open_ms`` (a month bar: the next month's start)."""
        return int(bar_close(datetime.fromtimestamp(open_ms / 1000, UTC), self.timeframe).timestamp() * 1000)

    def observe(self, candles: Sequence[Sequence[float]], finals: Sequence[Sequence[float]] = ()) -> None:
        """Take the candles of one watch call and the closing updates (final values) seen meanwhile."""
        for candle in candles:
            ts = int(candle[0])
            if (self.last_closed_ms is None or ts > self.last_closed_ms) and ts not in self._final:
                self._pending[ts] = list(candle)
        for candle in finals:
            ts = int(candle[0])
            if self.last_closed_ms is None or ts > self.last_closed_ms:
                self._pending[ts] = list(candle)
                self._final.add(ts)

    def closed(self) -> list[list[float]]:
        """The candles now known closed with final values and not emitted before, oldest first. With flagged closes
        it stops at the first superseded candle whose closing update was not seen (a REST backfill must give it)."""
        if not self._pending:
            return []
        latest = max(self._pending)
        emitted: list[list[float]] = []
        for ts in sorted(self._pending):
            if self.flagged:
                if ts not in self._final:
                    break
            elif ts >= latest:
                break
            emitted.append(self._pending.pop(ts))
            self._final.discard(ts)
        if emitted:
            self.last_closed_ms = int(emitted[-1][0])
        return emitted

    def update(self, candles: Sequence[Sequence[float]], finals: Sequence[Sequence[float]] = ()) -> list[list[float]]:
        """``observe`` then ``closed``."""
        self.observe(candles, finals)
        return self.closed()

    def newest_ms(self) -> int | None:
        return max(self._pending) if self._pending else None

    def backfill_since(self) -> datetime | None:
        """Where a REST backfill must start, or None: the first bar after the last emitted one, older than the newest
        seen, whose final values the stream did not give: never seen at all (a reconnect, lost messages) or, with
        flagged closes, seen only while forming."""
        if not self._pending:
            return None
        newest = max(self._pending)
        ts = self._next_ms(self.last_closed_ms) if self.last_closed_ms is not None else min(self._pending)
        while ts < newest:
            if ts not in self._pending or (self.flagged and ts not in self._final):
                return datetime.fromtimestamp(ts / 1000, UTC)
            ts = self._next_ms(ts)
        return None

    def skip_to(self, last_closed_ms: int) -> None:
        """Bars up to ``last_closed_ms`` were stored another way (a REST backfill): forget them here."""
        self.last_closed_ms = max(self.last_closed_ms or last_closed_ms, last_closed_ms)
        self._pending = {ts: c for ts, c in self._pending.items() if ts > self.last_closed_ms}
        self._final = {ts for ts in self._final if ts > self.last_closed_ms}

    def missing_since(self) -> datetime | None:
        """The bar after the last emitted one (where a backfill after a reconnect starts)."""
        if self.last_closed_ms is None:
            return None
        return datetime.fromtimestamp(self._next_ms(self.last_closed_ms) / 1000, UTC)


class KlineCloses:
    """Closing updates of candles, taken from the raw messages ccxt.pro's binance handler receives.

    ccxt.pro's unified ``watch_ohlcv`` drops binance's kline ``x`` flag (the update that closes a candle), so
    ``hook_kline_closes`` wraps the exchange's ``handle_ohlcv`` to remember each closing update's values here, keyed
    by the unified symbol and timeframe ccxt files the candle under, until ``take`` collects them."""

    def __init__(self) -> None:
        self._closes: dict[tuple[str, str], dict[int, list[float]]] = {}

    def record(self, symbol: str, timeframe: str, candle: list[float]) -> None:
        self._closes.setdefault((symbol, timeframe), {})[int(candle[0])] = candle

    def take(self, symbol: str, timeframe: str) -> list[list[float]]:
        """The closing updates recorded for the series since the last call, oldest first."""
        closes = self._closes.pop((symbol, timeframe), {})
        return [closes[ts] for ts in sorted(closes)]


def hook_kline_closes(exchange: Any) -> KlineCloses | None:
    """Record the closing kline updates ``exchange`` receives, when it is a ccxt.pro binance(-family) exchange;
    ``None`` for venues whose stream has no closing flag (their candles close when the next one appears)."""
    import ccxt.pro as ccxtpro

    if not isinstance(exchange, ccxtpro.binance):
        return None
    closes = KlineCloses()
    handle_ohlcv = exchange.handle_ohlcv  # looked up per message by the exchange's message router

    def handle_ohlcv_remembering_closes(client: Any, message: dict[str, Any]) -> None:
        handle_ohlcv(client, message)
        kline = message.get("k") or {}
        if message.get("e") != "kline" or kline.get("x") is not True:
            return
        market_type = "spot" if exchange.is_spot_url(client) else "contract"  # as the handler resolves it
        symbol = exchange.safe_symbol(exchange.safe_string_2(kline, "s", "ps"), None, None, market_type)
        timeframe = exchange.find_timeframe(exchange.safe_string(kline, "i"))
        candle = [exchange.safe_integer(kline, "t"), *(exchange.safe_float(kline, k) for k in "ohlcv")]
        closes.record(symbol, timeframe, candle)

    exchange.handle_ohlcv = handle_ohlcv_remembering_closes
    return closes


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

    def get(self, exchange: str, symbol: str) -> dict[str, Any] | None:
        if self.client is None:
            return None
        raw = self.client.get(self.key(exchange, symbol))
        return None if raw is None else json.loads(raw)


async def stream_series(
    exchange: ccxt.pro.Exchange,
    symbol: str,
    timeframe: str,
    *,
    on_closed: Callable[[list[list[float]]], Awaitable[None]],
    on_quote: Callable[[float, int], Awaitable[None]],
    backfill: Callable[[datetime], Awaitable[list[list[float]]]] | None = None,
    closes: KlineCloses | None = None,
    stop: asyncio.Event | None = None,
    initial_backoff: float = 1.0,
    max_backoff: float = 60.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> ClosedCandles:
    """Watch one series until ``stop`` is set; reconnect after network errors with doubling waits. With ``closes``
    (the exchange's closing updates, ``hook_kline_closes``) a bar is stored only from its closing update or, when
    that was never seen, from REST."""
    import ccxt

    tracker = ClosedCandles(timeframe, flagged=closes is not None)
    wait = initial_backoff
    backfilled_up_to: int | None = None  # newest bar seen at the last backfill: at most one REST call per new bar
    while stop is None or not stop.is_set():
        try:
            candles = await exchange.watch_ohlcv(symbol, timeframe)
        except ccxt.NetworkError:
            # ccxt.pro opens a new connection on the next watch call; wait first, doubling up to max_backoff.
            await sleep(wait)
            wait = min(wait * 2, max_backoff)
            continue
        wait = initial_backoff
        tracker.observe(candles, closes.take(symbol, timeframe) if closes is not None else ())
        # A reconnect (ours, or one ccxt made quietly between two calls) loses the messages sent meanwhile: bars
        # that closed while away, and the final update of the bar that was forming. REST gives both, closed only.
        since = tracker.backfill_since() if backfill is not None else None
        newest = tracker.newest_ms()
        if since is not None and newest is not None and newest != backfilled_up_to:
            backfilled_up_to = newest
            missed = [c for c in await backfill(since) if int(c[0]) < newest]  # type: ignore[misc]
            if missed:
                tracker.skip_to(int(missed[-1][0]))
                await on_closed(missed)
        closed = tracker.closed()
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
    from alphaloom.ingest.ccxt_prices import CcxtPriceSource
    from alphaloom.ingest.prices import frame_from_bars, merge_bars

    cache = QuoteCache(redis_url, prefix=redis_prefix)
    pro = {e: pro_factory(e) for e in sorted({s.exchange for s in specs})}
    closes = {e: hook_kline_closes(exchange) for e, exchange in pro.items()}
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
                             on_quote=on_quote, backfill=backfill, closes=closes[spec.exchange], stop=stop,
                             initial_backoff=initial_backoff, sleep=sleep)  # fmt: skip

    try:
        await asyncio.gather(*(series(s) for s in specs))
    finally:
        for exchange in pro.values():
            await exchange.close()
