"""ccxt price source against ccxt's real binance and kraken classes fed recorded HTTP responses (no network)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import ccxt
import pytest
import requests
from sqlalchemy import text
from support.ccxt_replay import binance_routes, kraken_routes, mount, recorded

from alphaloom.errors import ConfigError, VenueTemporaryError
from alphaloom.ingest.ccxt_prices import (
    Backoff,
    CcxtPriceSource,
    SeriesSpec,
    fetch_series,
    resume_points,
)
from alphaloom.ingest.prices import merge_bars
from alphaloom.records.runs import start_run
from alphaloom.venues.ccxt_exchange import make_exchange

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KLINES = recorded("binance_klines_BTCUSDT_1h.json")


def at_hour(h: float) -> datetime:
    return datetime.fromtimestamp(T0.timestamp() + h * 3600, UTC)


def binance(routes=None, *, now_hour: float = 7.5, local_hour: float | None = None, page_limit: int = 3,
            sleeps: list | None = None, venue=None):  # fmt: skip
    """A binance source whose venue time is ``now_hour`` and whose local clock reads ``local_hour`` (default: the
    same, no skew)."""
    exchange = make_exchange("binance", {"enableRateLimit": False, "options": {"fetchMarkets": {"types": ["spot"]}}})
    replay = mount(exchange, routes or binance_routes(server_time_ms=at_hour(now_hour).timestamp() * 1000))
    waits = sleeps if sleeps is not None else []
    local = now_hour if local_hour is None else local_hour
    source = CcxtPriceSource(
        exchange, page_limit=page_limit, clock=lambda: at_hour(local), venue=venue,
        backoff=Backoff(attempts=4, initial=0.5, maximum=4, sleep=waits.append),
    )  # fmt: skip
    return source, replay


def test_binance_pages_with_since_and_limit_and_drops_the_open_candle() -> None:
    source, replay = binance(now_hour=7.5)  # bar 7 (07:00-08:00) is still open
    frame = source.closed_bars("BTC/USDT", "1h", since=T0)
    assert list(frame["ts"]) == [at_hour(h) for h in range(7)]
    assert frame["close"].iloc[0] == float(KLINES[0][4]) and frame["volume"].iloc[6] == float(KLINES[6][5])
    pages = [q for path, q in replay.calls if path == "/api/v3/klines"]
    assert [int(q["startTime"]) for q in pages] == [int(at_hour(h).timestamp() * 1000) for h in (0, 3, 6)]
    assert {q["limit"] for q in pages} == {"3"} and {q["interval"] for q in pages} == {"1h"}


def test_kraken_ohlc_is_parsed_and_the_open_candle_dropped() -> None:
    exchange = make_exchange("kraken", {"enableRateLimit": False})
    mount(exchange, kraken_routes(server_time_s=int(at_hour(7.2).timestamp())))
    source = CcxtPriceSource(exchange, clock=lambda: at_hour(7.2))
    batch = source.batch("BTC/USD", "1h", since=T0)
    assert len(batch) == 7 and not batch.rejected
    rows = batch.table.to_pylist()
    assert rows[0]["exchange"] == "kraken" and rows[0]["symbol"] == "BTC/USD" and rows[0]["open"] == "87500.0"
    assert rows[-1]["ts"].startswith("2026-01-01T06:00:00")


def test_a_local_clock_ahead_of_the_venue_never_stores_the_forming_bar() -> None:
    """Closure is judged by the venue's time (issue 12 item 14): the local clock reads 08:20 (20 minutes fast), the
    venue says 07:30, so bar 7 (07:00-08:00) is still forming and is not returned."""
    source, replay = binance(now_hour=7.5, local_hour=8 + 1 / 3)
    frame = source.closed_bars("BTC/USDT", "1h", since=T0)
    assert list(frame["ts"]) == [at_hour(h) for h in range(7)]
    assert any(path == "/api/v3/time" for path, _ in replay.calls)


def test_a_local_clock_behind_the_venue_still_takes_every_closed_bar() -> None:
    source, _ = binance(now_hour=8.01, local_hour=5.5)  # venue 08:00:36, local clock 2.5 h slow
    frame = source.closed_bars("BTC/USDT", "1h", since=T0)
    assert list(frame["ts"]) == [at_hour(h) for h in range(8)]


def test_without_a_venue_time_only_bars_followed_by_a_newer_bar_are_closed() -> None:
    """A venue that cannot tell its time: a bar is closed when the same answer holds a newer bar, so the newest bar is
    left for the next run whatever the local clock (here 09:00, saying bar 7 ended) claims."""
    source, _ = binance(binance_routes(), local_hour=9.0, page_limit=10)
    frame = source.closed_bars("BTC/USDT", "1h", since=T0)
    assert list(frame["ts"]) == [at_hour(h) for h in range(7)]


def test_temporary_errors_are_retried_with_growing_backoff() -> None:
    routes = binance_routes(server_time_ms=at_hour(7.5).timestamp() * 1000)
    script = iter([(429, {"code": -1003, "msg": "Too many requests"}), (503, "Service Unavailable"), "timeout"])
    good = routes["/api/v3/klines"]

    def flaky(q):
        step = next(script, None)
        if step == "timeout":
            raise requests.exceptions.ReadTimeout("read timed out")
        return step if step is not None else good(q)

    routes["/api/v3/klines"] = flaky
    sleeps: list[float] = []
    source, _ = binance(routes, sleeps=sleeps, page_limit=10)
    assert len(source.closed_bars("BTC/USDT", "1h", since=T0)) == 7
    assert len(sleeps) == 3 and sleeps == sorted(sleeps) and sleeps[0] < sleeps[-1]


def test_retries_are_bounded_then_a_temporary_venue_error() -> None:
    routes = binance_routes(server_time_ms=at_hour(7.5).timestamp() * 1000)
    routes["/api/v3/klines"] = lambda q: (503, "Service Unavailable")
    sleeps: list[float] = []
    source, replay = binance(routes, sleeps=sleeps)
    with pytest.raises(VenueTemporaryError, match="after 4 attempts") as info:
        source.closed_bars("BTC/USDT", "1h", since=T0)
    assert isinstance(info.value.__cause__, ccxt.ExchangeNotAvailable)
    assert sum(1 for path, _ in replay.calls if path == "/api/v3/klines") == 4 and len(sleeps) == 3


def test_venue_bad_symbol_is_a_clear_error_and_not_retried() -> None:
    sleeps: list[float] = []
    source, replay = binance(sleeps=sleeps)  # LUNA/USDT is listed, but the venue answers -1121 Invalid symbol
    with pytest.raises(ConfigError, match="unknown symbol"):
        source.closed_bars("LUNA/USDT", "1h", since=T0)
    assert sum(1 for path, _ in replay.calls if path == "/api/v3/klines") == 1 and sleeps == []


def test_unknown_market_and_unknown_exchange_are_config_errors() -> None:
    source, replay = binance()
    with pytest.raises(ConfigError, match="no market 'DOGE/EUR'"):
        source.closed_bars("DOGE/EUR", "1h", since=T0)
    assert not [c for c in replay.calls if c[0] == "/api/v3/klines"]
    with pytest.raises(ConfigError, match="unknown exchange 'binanse'"):
        make_exchange("binanse")
    with pytest.raises(ConfigError, match="exchange:BASE/QUOTE:timeframe"):
        SeriesSpec.parse("binance-BTC/USDT")


def test_resume_from_last_stored_bar_and_many_series(engine) -> None:
    venue = f"binance-{uuid.uuid4().hex[:8]}"
    spec = SeriesSpec(venue, "BTC/USDT", "1h")
    run_id = start_run(engine, "test_ccxt", {})
    with engine.begin() as conn:
        assert resume_points(conn, [spec]) == {spec: None}
    first, _ = binance(now_hour=4.5, venue=venue)
    with engine.begin() as conn:
        assert merge_bars(conn, first.batch("BTC/USDT", "1h", since=T0), run_id).inserted == 4
        since = resume_points(conn, [spec])
    assert since == {spec: at_hour(4)}

    later, replay = binance(now_hour=7.5, venue=venue)
    broken = SeriesSpec(venue, "LUNA/USDT", "1h")
    results = fetch_series([spec, broken], since, source_for=lambda _: later, max_concurrency=2)
    ok, bad = results
    assert bad.error_type == "ConfigError" and "unknown symbol" in (bad.error or "")
    assert ok.batch is not None and len(ok.batch) == 3  # bars 4, 5, 6; nothing already stored is asked for again
    assert int(next(q for p, q in replay.calls if p == "/api/v3/klines")["startTime"]) == int(
        at_hour(4).timestamp() * 1000
    )
    with engine.begin() as conn:
        assert merge_bars(conn, ok.batch, run_id).inserted == 3
        stored = conn.execute(text("select count(*), max(ts) from raw.ohlcv where exchange = :v"), {"v": venue}).one()
    assert stored == (7, at_hour(6))


def test_prices_flow_reports_a_ccxt_source_that_cannot_load_and_completes(prefect_harness, engine) -> None:
    from flows.ingest_prices import ingest_prices

    bogus = f"nosuchexchange{uuid.uuid4().hex[:6]}:BTC/USDT:1h"
    (row,) = ingest_prices(ccxt_sources=[bogus])
    assert row["file"] == bogus and "unknown exchange" in str(row["error"]) and row["inserted"] == 0
