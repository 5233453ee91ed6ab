"""Live stream: ccxt.pro's real binance class against a local websocket server replaying recorded kline messages,
with a dropped connection; closed candles into PostgreSQL, latest quote into the real Redis at ALPHALOOM_REDIS_URL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus

import pytest
from sqlalchemy import text
from support.ccxt_replay import binance_routes, mount, recorded

from alphaloom.ingest.ccxt_prices import CcxtPriceSource, SeriesSpec
from alphaloom.ingest.stream import ClosedCandles, QuoteCache, run_stream
from alphaloom.records.runs import start_run
from alphaloom.venues.ccxt_exchange import make_exchange, make_pro_exchange

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


@dataclass
class Streamed:
    venue: str
    emitted: list[int]
    waits: list[float]
    subscriptions: list[list[str]]
    stored: list[tuple[int, str]]  # (bar open ms, close) rows in raw.ohlcv
    revisions: int
    rest_calls: list[tuple[str, dict[str, str]]]


def stream_replayed(engine, connections: list[list[dict]], *, rest_clock_ms: float, last_bar_ms: int,
                    redis_prefix: str | None = None) -> Streamed:  # fmt: skip
    """Stream BTC/USDT 1h from the replay server (connection 0 drops, the first reconnect is refused) until the bar
    opening at ``last_bar_ms`` is stored; REST backfill from the recorded klines with the venue's clock at
    ``rest_clock_ms``."""
    venue = f"binance-ws-{uuid.uuid4().hex[:8]}"
    run_id = start_run(engine, "test_stream", {})
    rest = make_exchange("binance", {"enableRateLimit": False, "options": {"fetchMarkets": {"types": ["spot"]}}})
    replay = mount(rest, binance_routes(server_time_ms=rest_clock_ms))
    rest.load_markets()
    backfill_source = CcxtPriceSource(
        rest, venue=venue, clock=lambda: datetime.fromtimestamp(rest_clock_ms / 1000, UTC)
    )
    calls_before = len(replay.calls)
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
            if int(candles[-1][0]) >= last_bar_ms:
                stop.set()

        async def record_wait(seconds: float) -> None:
            waits.append(seconds)
            await asyncio.sleep(0)

        try:
            await asyncio.wait_for(
                run_stream([SeriesSpec(venue, "BTC/USDT", "1h")], engine=engine, run_id=run_id,
                           redis_url=REDIS_URL if redis_prefix else None, redis_prefix=redis_prefix or "alphaloom:",
                           stop=stop, observe=observe, pro_factory=pro_factory, rest_factory=lambda _: backfill_source,
                           initial_backoff=0.5, sleep=record_wait),
                timeout=30,
            )  # fmt: skip
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main())
    with engine.begin() as conn:
        stored = conn.execute(text("select ts, close from raw.ohlcv where exchange = :v order by ts"), {"v": venue})
        stored_rows = [(int(r[0].timestamp() * 1000), str(r[1])) for r in stored]
        revisions = conn.execute(text("select count(*) from raw.quarantine where run_id = :r"), {"r": run_id}).scalar()
    return Streamed(venue, emitted, waits, subscriptions, stored_rows, revisions, replay.calls[calls_before:])


def test_stream_survives_a_drop_without_missing_or_duplicate_closed_candles(engine) -> None:
    prefix = f"alphaloom-test-{uuid.uuid4().hex[:8]}:"
    cache = redis_cache(prefix)
    connections = recorded("binance_ws_kline_BTCUSDT_1h.json")["connections"]  # type: ignore[index]
    result = stream_replayed(engine, connections, rest_clock_ms=T0_MS + 5.5 * H_MS, last_bar_ms=T0_MS + 5 * H_MS,
                             redis_prefix=prefix)  # fmt: skip
    try:
        assert result.emitted == [T0_MS + h * H_MS for h in range(6)]  # 0,1 live; 2,3,4 backfilled; 5 live
        assert result.waits == [0.5] and len(result.subscriptions) == 2
        assert result.subscriptions[0] == ["btcusdt@kline_1h"]
        klines = recorded("binance_klines_BTCUSDT_1h.json")
        assert [ts for ts, _ in result.stored] == result.emitted and result.revisions == 0
        assert [close for _, close in result.stored] == [str(float(k[4])) for k in klines[:6]]  # type: ignore[index]
        quote = cache.get(result.venue, "BTC/USDT")
        # The latest candle seen when bar 5 closed (its closing update, or the forming bar 6 in the same batch).
        latest = {T0_MS + 5 * H_MS: "87813.58", T0_MS + 6 * H_MS: "87877.82"}
        assert quote is not None and quote["price"] == latest[quote["ts"]]
    finally:
        cache.client.delete(cache.key(result.venue, "BTC/USDT"))  # type: ignore[union-attr]


def test_a_drop_exactly_at_a_bar_close_stores_the_venues_final_bar_not_the_last_update_seen(engine) -> None:
    """Connection 0 sends bar 0 (closing update included) and a mid-bar update of bar 1, then drops exactly when
    bar 1 closes: its closing update (``x``) is never received. The reconnect lands inside bar 2, so no bar is
    missing; bar 1 must still come from REST (the venue's final kline), not from its last seen update."""
    recorded_connections = recorded("binance_ws_kline_BTCUSDT_1h.json")["connections"]  # type: ignore[index]
    first = recorded_connections[0]
    bar1_mid, bar2_forming = first[2], first[4]
    assert (bar1_mid["k"]["t"], bar1_mid["k"]["x"], bar2_forming["k"]["t"]) == (T0_MS + H_MS, False, T0_MS + 2 * H_MS)
    result = stream_replayed(engine, [first[:3], [bar2_forming]], rest_clock_ms=T0_MS + 2.5 * H_MS,
                             last_bar_ms=T0_MS + H_MS)  # fmt: skip
    klines = recorded("binance_klines_BTCUSDT_1h.json")
    assert result.emitted == [T0_MS, T0_MS + H_MS] and result.waits == [0.5] and result.revisions == 0
    final = [(int(k[0]), str(float(k[4]))) for k in klines[:2]]  # type: ignore[index]
    assert result.stored == final and final[1][1] != str(float(bar1_mid["k"]["c"]))
    assert [q["startTime"] for path, q in result.rest_calls if path == "/api/v3/klines"] == [str(T0_MS + H_MS)]


def test_closed_candles_with_closing_flags_never_emit_a_bar_from_a_stale_update() -> None:
    tracker = ClosedCandles("1h", flagged=True)
    assert tracker.update([[0, 1, 1, 1, 1, 1]]) == []
    assert tracker.update([[0, 1, 1, 1, 1, 1]], finals=[[0, 1, 2, 1, 2, 3]]) == [[0, 1, 2, 1, 2, 3]]  # at its close
    assert tracker.update([[H_MS, 2, 2, 2, 2, 1]]) == []  # bar 1 forming
    assert tracker.update([[2 * H_MS, 3, 3, 3, 3, 1]]) == []  # bar 1 superseded, its close unseen: held back
    assert tracker.backfill_since() == datetime.fromtimestamp(H_MS / 1000, UTC)
    assert tracker.update([], finals=[[2 * H_MS, 3, 4, 3, 4, 2]]) == []  # bar 2 is final but waits behind bar 1
    tracker.skip_to(H_MS)  # REST stored bar 1
    assert tracker.backfill_since() is None and tracker.closed() == [[2 * H_MS, 3, 4, 3, 4, 2]]
    assert tracker.update([[2 * H_MS, 9, 9, 9, 9, 9]]) == []  # a late update of an emitted bar is ignored
