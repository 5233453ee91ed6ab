"""Alpaca's bars and news through the real alpaca-py data clients against a local stand-in (``support.alpaca_standin``)
into the real PostgreSQL: closed bars only, on our grid, resumable, registered as the ``alpaca:`` series source; news
with symbols and first-seen times (assumed on the first backfill, the fetch time after), idempotent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, text
from support.alpaca_standin import (
    KEY,
    SECRET,
    AlpacaStandIn,
    hourly_bars,
    standin_credentials,
    standin_settings,
    story,
)

from alphaloom.errors import ConfigError, VenueError
from alphaloom.ingest.alpaca_prices import AlpacaPriceSource
from alphaloom.ingest.ccxt_prices import Backoff
from alphaloom.ops.secrets import Credentials, delete_credentials, store_credentials
from alphaloom.settings import get_settings
from alphaloom.venues.alpaca_client import stock_data_client, trading_client

T0 = datetime(2026, 1, 6, 14, tzinfo=UTC)


@pytest.fixture
def standin() -> Iterator[AlpacaStandIn]:
    server = AlpacaStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def alpaca_env(standin: AlpacaStandIn, monkeypatch: pytest.MonkeyPatch, engine: Engine) -> Iterator[str]:
    """Settings pointing at the stand-in, and keys stored for the account in force."""
    account = f"alpaca-{uuid.uuid4().hex[:8]}"
    for name, value in {"ALPHALOOM_ALPACA_DATA_URL": standin.url, "ALPHALOOM_ALPACA_TRADING_URL": standin.url,
                        "ALPHALOOM_SECRET_KEY": Fernet.generate_key().decode(), "ALPHALOOM_ACCOUNT": account,
                        "ALPHALOOM_SYMBOLS": "AAPL,MSFT"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    with engine.begin() as conn:
        store_credentials(conn, get_settings(), Credentials("alpaca", account, KEY, SECRET))
    yield account
    with engine.begin() as conn:  # no later test's broker factory meets keys encrypted with this throwaway key
        delete_credentials(conn, "alpaca", account)
    get_settings.cache_clear()


def _source(standin: AlpacaStandIn, now: datetime) -> AlpacaPriceSource:
    settings = standin_settings(standin)
    data = stock_data_client(standin_credentials(), settings)
    return AlpacaPriceSource(data, trading_client(standin_credentials(), settings), clock=lambda: now,
                             backoff=Backoff(attempts=2, sleep=lambda s: None))  # fmt: skip


def test_bars_are_paged_closed_only_and_on_our_grid(standin: AlpacaStandIn) -> None:
    standin.bars["AAPL"] = hourly_bars(T0, 6)  # the sixth opens at 19:00 and is still forming at 19:30
    frame = _source(standin, T0 + timedelta(hours=5, minutes=30)).closed_bars("AAPL", "1h", since=T0)
    assert list(frame["ts"]) == [T0 + timedelta(hours=n) for n in range(5)]
    assert (frame["exchange"].unique().tolist(), frame["close"].iloc[-1]) == (["alpaca"], "188.0")
    pages = [q for m, p, q, _ in standin.requests if p == "/v2/stocks/bars"]
    assert len(pages) == 3 and pages[0]["timeframe"] == ["1Hour"] and pages[0]["feed"] == ["iex"]
    standin.bars["AAPL"] = [{**hourly_bars(T0, 1)[0], "t": "2026-01-06T05:00:00Z"}]  # Alpaca's daily stamp
    daily = _source(standin, T0 + timedelta(days=2)).closed_bars("AAPL", "1d", since=datetime(2026, 1, 5, tzinfo=UTC))
    assert list(daily["ts"]) == [datetime(2026, 1, 6, tzinfo=UTC)]


def test_bad_timeframes_unknown_symbols_and_outages_are_clear_errors(standin: AlpacaStandIn) -> None:
    source = _source(standin, T0)
    with pytest.raises(ConfigError, match="timeframe '4h' is not offered"):
        source.closed_bars("AAPL", "4h", since=T0)
    with pytest.raises(ConfigError, match="alpaca asset NOPE: HTTP 404"):
        source.market_spec("NOPE")
    assert source.market_spec("AAPL").quantity_step == Decimal("0.000000001")
    assert source.market_spec("BRK.A").quantity_step == Decimal(1)
    standin.stop()
    with pytest.raises(VenueError, match="still failing after 2 attempts"):
        source.closed_bars("AAPL", "1h", since=T0)


def test_the_prices_flow_takes_alpaca_series_and_resumes_after_the_last_bar(
    prefect_harness, engine: Engine, standin: AlpacaStandIn, alpaca_env: str
) -> None:
    from flows.ingest_prices import ingest_prices

    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=8)
    standin.bars["AAPL"] = hourly_bars(first, 6)
    (row,) = ingest_prices(ccxt_sources=["alpaca:AAPL:1h"], quality=False)
    assert not row.get("error") and row["inserted"] == 6, row
    standin.bars["AAPL"] = hourly_bars(first, 8)
    (again,) = ingest_prices(ccxt_sources=["alpaca:AAPL:1h"], quality=False)
    assert again["inserted"] == 2 and again["staged"] == 2, again
    starts = [q["start"][0] for m, p, q, _ in standin.requests if p == "/v2/stocks/bars" and "page_token" not in q]
    assert datetime.fromisoformat(starts[-1].replace("Z", "+00:00")) == first + timedelta(hours=6)
    with engine.connect() as conn:
        stored = conn.execute(text("select count(*) from raw.ohlcv where exchange = 'alpaca' and symbol = 'AAPL'"))
        market = conn.execute(text("select asset_class, quantity_step from raw.markets where exchange = 'alpaca' "
                                   "and symbol = 'AAPL'")).one()  # fmt: skip
    assert stored.scalar() == 8 and (market.asset_class, Decimal(market.quantity_step)) == ("stocks", Decimal("1e-9"))


def test_news_lands_with_symbols_and_first_seen_times_and_resumes(
    engine: Engine, standin: AlpacaStandIn, alpaca_env: str
) -> None:
    from alphaloom.ingest.alpaca_news import alpaca_news_feed, feed_symbols
    from alphaloom.ingest.news_source import store_news

    now = datetime.now(UTC).replace(microsecond=0)
    standin.news = [story(9001, now - timedelta(days=2), ["AAPL"]), story(9002, now - timedelta(days=1),
                    ["AAPL", "MSFT"]), story(9003, now - timedelta(hours=20), ["MSFT"], headline=" ")]  # fmt: skip
    run_id = f"run-news-{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        backfill = alpaca_news_feed("alpaca:news", conn, now=now)
        first = store_news(conn, run_id, [backfill])
    assert feed_symbols("alpaca:news:TSLA, NVDA", ["AAPL"]) == ["TSLA", "NVDA"]
    assert (first.new_items, first.symbols_added, first.quarantined) == (2, 3, 1)
    latency = timedelta(minutes=get_settings().ingest.news_assumed_latency_minutes)
    assert all(i.first_seen_assumed and i.first_seen_at == i.published_at + latency for i in backfill.items)
    later = now + timedelta(seconds=1)
    standin.news.append(story(9004, now - timedelta(minutes=30), ["AAPL"]))
    with engine.begin() as conn:
        live = alpaca_news_feed("alpaca:news:AAPL", conn, now=later)
        second = store_news(conn, run_id, [live])
        row = conn.execute(text("select first_seen_at, first_seen_assumed from raw.news n join raw.news_symbols s "
                                "on s.news_id = n.id where n.title like 'Story 9004%' and s.symbol = 'AAPL'")).one()  # fmt: skip
    assert second.new_items == 1 and (row.first_seen_at, row.first_seen_assumed) == (later, False)
    news_requests = [q for m, p, q, _ in standin.requests if p == "/v1beta1/news"]
    assert datetime.fromisoformat(news_requests[-1]["start"][0].replace("Z", "+00:00")) == now - timedelta(days=1)


def test_the_news_flow_takes_an_alpaca_feed_through_the_quality_gate(
    prefect_harness, engine: Engine, standin: AlpacaStandIn, alpaca_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.ingest_news import ingest_news

    now = datetime.now(UTC).replace(microsecond=0)
    # newer than anything an earlier test stored from this source (each fetch resumes after the newest stored story)
    standin.news = [story(9101, now - timedelta(minutes=2), ["AAPL"]), story(9102, now - timedelta(minutes=1),
                                                                            ["MSFT"])]  # fmt: skip
    result = ingest_news(feeds=["alpaca:news:AAPL,MSFT"])
    assert (result["new_items"], result["broken_feeds"], result["quality"]) == (2, 0, True), result
    again = ingest_news(feeds=["alpaca:news:AAPL,MSFT"])
    assert again["new_items"] == 0
    with engine.connect() as conn:
        sources = set(conn.execute(text("select source from raw.news_sightings s join raw.news n on n.id = s.news_id "
                                        "where n.title like 'Story 91%'")).scalars())  # fmt: skip
    assert sources == {"alpaca-news"}
    monkeypatch.setenv("ALPHALOOM_ACCOUNT", "no-alpaca-keys")
    get_settings.cache_clear()
    keyless = ingest_news(feeds=["alpaca:news:AAPL"])
    assert (keyless["new_items"], keyless["broken_feeds"]) == (0, 1), keyless
