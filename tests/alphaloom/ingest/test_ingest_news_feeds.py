"""News feeds over HTTP from a local server on 127.0.0.1: conditional GET, cross-feed dedupe, broken feeds recorded."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from sqlalchemy import text

from alphaloom.ingest.feeds import fetch_feeds, load_states, parse_fetched, record_fetches
from alphaloom.ingest.news_source import store_news
from alphaloom.records.runs import start_run

LAST_MODIFIED = "Tue, 06 Oct 2026 12:00:00 GMT"


def rss(tag: str) -> bytes:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Wire {tag}</title><link>https://wire.example/</link><description>d</description>
<item><title>Bitcoin ETF sees record inflows ({tag})</title><link>https://wire.example/{tag}/btc-etf?utm_source=rss</link>
  <guid>wire-{tag}-1</guid><pubDate>Tue, 06 Oct 2026 10:00:00 GMT</pubDate><description>BTC demand</description></item>
<item><title>Ether upgrade scheduled ({tag})</title><link>https://wire.example/{tag}/eth</link>
  <guid>wire-{tag}-2</guid><pubDate>Tue, 06 Oct 2026 11:00:00 GMT</pubDate></item>
</channel></rss>""".encode()


def atom(tag: str) -> bytes:
    # The first entry is wire's story under another tracking parameter; the second the same story as wire's second
    # entry, syndicated under its own link with the title in other punctuation and case.
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Markets {tag}</title><id>urn:m</id><updated>2026-10-06T12:00:00Z</updated>
<entry><title>Bitcoin ETF sees record inflows ({tag})</title><link href="https://WIRE.example/{tag}/btc-etf/?fbclid=1"/>
  <id>urn:markets:{tag}:1</id><updated>2026-10-06T10:05:00Z</updated></entry>
<entry><title>ETHER UPGRADE SCHEDULED — ({tag})!</title><link href="https://markets.example/{tag}/ether-upgrade"/>
  <id>urn:markets:{tag}:2</id><updated>2026-10-06T11:20:00Z</updated></entry>
</feed>""".encode()


class FeedServer(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, dict[str, str]]]] = []
    tag = "x"

    def do_GET(self) -> None:
        FeedServer.requests.append((self.path, dict(self.headers)))
        if self.path == "/wire.rss":
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.end_headers()
                return
            body, kind = rss(self.tag), "application/rss+xml"
            self.send_response(200)
            self.send_header("ETag", '"v1"')
            self.send_header("Last-Modified", LAST_MODIFIED)
        elif self.path == "/markets.atom":
            body, kind = atom(self.tag), "application/atom+xml"
            self.send_response(200)
        elif self.path == "/down.rss":
            body, kind = b"oops", "text/plain"
            self.send_response(503)
        else:  # a web page where a feed should be: feedparser flags it bozo
            body, kind = b"<html><body><p>Moved<p></body", "text/html"
            self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def feed_server() -> Iterator[str]:
    FeedServer.requests = []
    FeedServer.tag = uuid.uuid4().hex[:8]
    server = ThreadingHTTPServer(("127.0.0.1", 0), FeedServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def ingest(engine, urls: list[str], aliases=None):
    run_id = start_run(engine, "test_feeds", {})
    with engine.begin() as conn:
        states = load_states(conn, urls)
    fetches = fetch_feeds(urls, states, timeout=5)
    parsed = [parse_fetched(f, aliases=aliases) for f in fetches]
    with engine.begin() as conn:
        broken = record_fetches(conn, run_id, fetches, parsed)
        result = store_news(conn, run_id, [p for p in parsed if p is not None])
    return run_id, fetches, parsed, broken, result


def test_feeds_load_dedupe_and_broken_ones_are_recorded(engine, feed_server: str) -> None:
    urls = [f"{feed_server}/{name}" for name in ("wire.rss", "markets.atom", "down.rss", "page.rss")]
    aliases = {"bitcoin": "BTC/USDT", "btc": "BTC/USDT", "ether": "ETH/USDT"}
    run_id, fetches, _parsed, broken, result = ingest(engine, urls, aliases)

    assert [f.status for f in fetches] == [200, 200, 503, 200]
    assert result.new_items == 2 and result.duplicate_items == 2 and result.sightings_added == 4
    assert dict(broken).keys() == {urls[2], urls[3]}
    assert "HTTP 503" in dict(broken)[urls[2]] and "page.rss" in dict(broken)[urls[3]]
    with engine.begin() as conn:
        failures = conn.execute(
            text("select feed, http_status, reason from raw.feed_failures where run_id = :r order by feed"),
            {"r": run_id},
        ).all()
        stories = conn.execute(
            text(
                "select n.title, n.published_at, n.first_seen_at, n.first_seen_assumed, array_agg(distinct s.source),"
                " array_agg(distinct y.symbol) from raw.news n join raw.news_sightings s on s.news_id = n.id"
                " left join raw.news_symbols y on y.news_id = n.id where n.run_id = :r group by n.id order by n.title"
            ),
            {"r": run_id},
        ).all()
    assert [(f[0], f[1]) for f in failures] == [(urls[2], 503), (urls[3], 200)]
    btc, eth = stories
    assert btc[0].startswith("Bitcoin ETF") and sorted(btc[4]) == sorted(urls[:2]) == sorted(eth[4])
    assert btc[5] == ["BTC/USDT"] and eth[5] == ["ETH/USDT"] and len(eth[4]) == 2
    # published_at is the feed's date; first_seen_at is when we fetched it, kept apart and not assumed.
    assert btc[1].isoformat() == "2026-10-06T10:00:00+00:00" and btc[2] == fetches[0].fetched_at and not btc[3]


def test_second_fetch_is_conditional_and_not_reparsed(engine, feed_server: str) -> None:
    url = f"{feed_server}/wire.rss"
    ingest(engine, [url])
    _, fetches, parsed, broken, result = ingest(engine, [url])
    sent = FeedServer.requests[-1][1]
    assert sent.get("If-None-Match") == '"v1"' and sent.get("If-Modified-Since") == LAST_MODIFIED
    assert fetches[0].status == 304 and fetches[0].not_modified and parsed == [None] and broken == []
    assert result.new_items == 0
    with engine.begin() as conn:
        state = conn.execute(
            text("select etag, last_modified, last_status, last_error from raw.feed_state where feed = :f"), {"f": url}
        ).one()
    assert state == ('"v1"', LAST_MODIFIED, 304, None)


def test_parse_of_fetched_document_keeps_first_seen_at_fetch_time(feed_server: str) -> None:
    (fetch,) = fetch_feeds([f"{feed_server}/markets.atom"], {})
    feed = parse_fetched(fetch, assumed_latency=timedelta(minutes=15))
    assert feed is not None and len(feed.items) == 2
    assert all(i.first_seen_at == fetch.fetched_at and not i.first_seen_assumed for i in feed.items)


def test_news_flow_fetches_urls_records_broken_feeds_and_checks_quality(
    prefect_harness, engine, feed_server: str
) -> None:
    from flows.ingest_news import ingest_news

    urls = [f"{feed_server}/wire.rss", f"{feed_server}/markets.atom", f"{feed_server}/down.rss"]
    first = ingest_news(urls)
    assert first["new_items"] == 2 and first["broken_feeds"] == 1 and first["quality"] is True
    again = ingest_news(urls)  # wire.rss answers 304 now; markets.atom is parsed again and adds nothing
    assert again["new_items"] == 0 and again["broken_feeds"] == 1
    with engine.begin() as conn:
        states = dict(
            conn.execute(text("select feed, last_status from raw.feed_state where feed = any(:u)"), {"u": urls}).all()
        )
        suites = (
            conn.execute(
                text(
                    "select q.suite from raw.quality_results q join audit.runs r using (run_id) where r.flow = 'ingest_news'"
                )
            )
            .scalars()
            .all()
        )
    assert states == {urls[0]: 304, urls[1]: 200, urls[2]: 503} and "alphaloom_news" in suites
