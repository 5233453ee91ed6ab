"""Live stream: ccxt.pro's real binance class against a local websocket server replaying recorded kline messages,
with a dropped connection; closed candles into PostgreSQL, latest quote into the real Redis at ALPHALOOM_REDIS_URL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from datetime import UTC, datetime
from http import HTTPStatus

import pytest
from ccxt_replay import binance_routes, mount, recorded
from sqlalchemy import text

from alphaloom.audit import start_run
from alphaloom.ingest.ccxt_prices import CcxtPriceSource, SeriesSpec, make_exchange
from alphaloom.ingest.stream import ClosedCandles, QuoteCache, make_pro_exchange, run_stream

T0_MS = 1767225600000
H_MS = 3_600_000
REDIS_URL = os.environ.get("ALPHALOOM_REDIS_URL", "redis://127.0.0.1:6379/0")
START_REDIS = "redis-server --daemonize yes --port 6379 --save '' --appendonly no"


def test_closed_candles_emits_each_closed_bar_once() -> None:
    tracker = ClosedCandles("1h")
    assert tracker.update([[0, 1, 1, 1, 1, 1]]) == []  # forming
    assert tracker.update([[0, 1, 2, 1, 2, 3]]) == []  # still forming, updated
    assert tracker.update([[H_MS, 2, 2, 2, 2, 1]]) == [[0, 1, 2, 1, 2, 3]]  # the next bar proves bar 0 closed
    assert tracker.update([[H_MS, 2, 3, 2, 3, 2]]) == []
    tracker.skip_to(3 * H_MS)  # bars 1..3 came from a REST backfill
    assert tracker.update([[4 * H_MS, 1, 1, 1, 1, 1], [5 * H_MS, 1, 1, 1, 1, 1]]) == [[4 * H_MS, 1, 1, 1, 1, 1]]
    assert tracker.missing_since() == datetime.fromtimestamp(5 * H_MS / 1000, UTC)


def redis_cache(prefix: str) -> QuoteCache:
    cache = QuoteCache(REDIS_URL, prefix=prefix)
    try:
        cache.client.ping()  # type: ignore[union-attr]
    except Exception as exc:
        pytest.fail(f"no Redis at {REDIS_URL} ({exc}); start one with: {START_REDIS}")
    return cache


def test_quote_cache_roundtrip_and_no_cache_without_url() -> None:
    prefix = f"alphaloom-test-{uuid.uuid4().hex[:8]}:"
    cache = redis_cache(prefix)
    try:
        assert cache.put("binance", "BTC/USDT", 87342.78, T0_MS)
        assert cache.get("binance", "BTC/USDT")["price"] == "87342.78"  # type: ignore[index]
    finally:
        cache.client.delete(cache.key("binance", "BTC/USDT"))  # type: ignore[union-attr]
    assert not QuoteCache(None).put("binance", "BTC/USDT", 1.0, T0_MS) and QuoteCache(None).get("x", "y") is None


async def replay_server(connections: list[list[dict]], seen: list[list[str]]):
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    count = {"n": 0}

    async def handler(ws) -> None:
        index = count["n"]
        count["n"] += 1
        request = json.loads(await ws.recv())
        seen.append(request["params"])
        await ws.send(json.dumps({"result": None, "id": request["id"]}))
        for message in connections[min(index, len(connections) - 1)]:
            await ws.send(json.dumps(message))
        if index == 0:
            await ws.close(code=1011, reason="replayed drop")  # the venue drops the connection mid-candle
        else:  # like a venue, keep pushing updates of the forming candle (every 50 ms here) until the client leaves
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await asyncio.sleep(0.05)
                    await ws.send(json.dumps(connections[-1][-1]))

    attempts = {"n": 0}

    def refuse_first_reconnect(connection, request):  # the venue is briefly unavailable after the drop
        attempts["n"] += 1
        if attempts["n"] == 2:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "maintenance\n")
        return None

    return await serve(handler, "127.0.0.1", 0, process_request=refuse_first_reconnect)


def test_stream_survives_a_drop_without_missing_or_duplicate_closed_candles(engine) -> None:
    venue = f"binance-ws-{uuid.uuid4().hex[:8]}"
    prefix = f"alphaloom-test-{uuid.uuid4().hex[:8]}:"
    cache = redis_cache(prefix)
    run_id = start_run(engine, "test_stream", {})
    connections = recorded("binance_ws_kline_BTCUSDT_1h.json")["connections"]  # type: ignore[index]

    rest = make_exchange("binance", {"enableRateLimit": False, "options": {"fetchMarkets": {"types": ["spot"]}}})
    mount(rest, binance_routes())
    rest.load_markets()
    backfill_source = CcxtPriceSource(
        rest, venue=venue, clock=lambda: datetime.fromtimestamp((T0_MS + 5.5 * H_MS) / 1000, UTC)
    )

    emitted: list[int] = []
    waits: list[float] = []
    subscriptions: list[list[str]] = []

    async def main() -> None:
        server = await replay_server(connections, subscriptions)
        port = server.sockets[0].getsockname()[1]
        stop = asyncio.Event()

        def pro_factory(exchange_id: str):
            pro = make_pro_exchange("binance", {"enableRateLimit": False})  # stored under the test venue name
            pro.set_markets(list(rest.markets.values()))
            pro.urls["api"]["ws"]["spot"] = f"ws://127.0.0.1:{port}/ws"
            return pro

        def observe(spec: SeriesSpec, candles: list[list[float]], new: int) -> None:
            emitted.extend(int(c[0]) for c in candles)
            if int(candles[-1][0]) >= T0_MS + 5 * H_MS:
                stop.set()

        async def record_wait(seconds: float) -> None:
            waits.append(seconds)
            await asyncio.sleep(0)

        try:
            await asyncio.wait_for(
                run_stream([SeriesSpec(venue, "BTC/USDT", "1h")], engine=engine, run_id=run_id, redis_url=REDIS_URL,
                           redis_prefix=prefix, stop=stop, observe=observe, pro_factory=pro_factory,
                           rest_factory=lambda _: backfill_source, initial_backoff=0.5, sleep=record_wait),
                timeout=30,
            )  # fmt: skip
        finally:
            server.close()
            await server.wait_closed()

    try:
        asyncio.run(main())
        assert emitted == [T0_MS + h * H_MS for h in range(6)]  # 0,1 live; 2,3,4 backfilled; 5 live; no repeats
        assert waits == [0.5] and len(subscriptions) == 2 and subscriptions[0] == ["btcusdt@kline_1h"]
        with engine.begin() as conn:
            stored = conn.execute(
                text("select ts, close from raw.ohlcv where exchange = :v order by ts"), {"v": venue}
            ).all()
            revisions = conn.execute(
                text("select count(*) from raw.quarantine where run_id = :r"), {"r": run_id}
            ).scalar()
        klines = recorded("binance_klines_BTCUSDT_1h.json")
        assert [int(r[0].timestamp() * 1000) for r in stored] == emitted and revisions == 0
        assert [str(r[1]) for r in stored] == [str(float(k[4])) for k in klines[:6]]  # type: ignore[index]
        quote = cache.get(venue, "BTC/USDT")
        assert quote is not None and quote["ts"] == T0_MS + 6 * H_MS  # the forming bar 6 is the latest quote
    finally:
        cache.client.delete(cache.key(venue, "BTC/USDT"))  # type: ignore[union-attr]
