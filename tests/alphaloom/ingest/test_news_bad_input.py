"""Bad news input never costs good data (issue 13 items 1, 2, 7, 9, 10, 11, 15 and the bozo file feed; issue 12 item 13).

Every case runs through the real ``ingest_news`` flow on the real database, with file feeds in a temporary folder and
URL feeds served by a local HTTP server on 127.0.0.1; each batch also carries good feeds that must be stored in full.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import Engine, text

from agents.news import recent_news_by_symbol

pytestmark = pytest.mark.usefixtures("prefect_harness")


def rss(*items: str, channel: str = "Wire") -> bytes:
    body = "".join(items)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{channel}</title><link>https://wire.example/</link><description>d</description>{body}"
        "</channel></rss>"
    ).encode()


def item(title: str, *, link: str | None = None, guid: str | None = None, date: str | None = "Tue, 06 Oct 2026 10:00:00 GMT",
         extra: str = "") -> str:  # fmt: skip
    parts = [f"<title>{title}</title>"]
    if link is not None:
        parts.append(f"<link>{link}</link>")
    if guid is not None:
        parts.append(f'<guid isPermaLink="false">{guid}</guid>')
    if date is not None:
        parts.append(f"<pubDate>{date}</pubDate>")
    return "<item>" + "".join(parts) + extra + "</item>"


def good_feed(tag: str, name: str) -> tuple[bytes, set[str]]:
    """A clean feed of two stories and the canonical URLs that must be stored from it."""
    urls = {f"https://good.example/{tag}/{name}/{n}" for n in (1, 2)}
    items = [item(f"Good story {n} of {name} {tag}", link=f"https://good.example/{tag}/{name}/{n}") for n in (1, 2)]
    return rss(*items), urls


class Feeds(BaseHTTPRequestHandler):
    """Serves ``routes``: path -> (status, body)."""

    routes: ClassVar[dict[str, tuple[int, bytes]]] = {}

    def do_GET(self) -> None:
        status, body = self.routes.get(self.path, (404, b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    Feeds.routes = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Feeds)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture()
def tag() -> str:
    return uuid.uuid4().hex[:10]


def run(feeds: list[str]) -> dict[str, object]:
    from flows.ingest_news import ingest_news

    return ingest_news([str(f) for f in feeds])


def stored_urls(engine: Engine, urls: set[str]) -> set[str]:
    with engine.begin() as conn:
        return set(conn.execute(text("select url from raw.news where url = any(:u)"), {"u": list(urls)}).scalars())


def quarantined(engine: Engine, source: str) -> list[tuple[str, str]]:
    with engine.begin() as conn:
        rows = conn.execute(
            text("select location, reason from raw.quarantine where source = :s order by id"), {"s": source}
        )
        return [tuple(r) for r in rows]


def failures(engine: Engine, feed: str) -> list[tuple[int | None, str]]:
    with engine.begin() as conn:
        rows = conn.execute(text("select http_status, reason from raw.feed_failures where feed = :f order by id"),
                            {"f": feed})  # fmt: skip
        return [tuple(r) for r in rows]


def story(engine: Engine, url: str):
    with engine.begin() as conn:
        return conn.execute(text("select * from raw.news where url = :u"), {"u": url}).one()


def test_a_nul_byte_quarantines_only_its_item_and_every_good_feed_loads(
    engine: Engine, server: str, tmp_path: Path, tag: str
) -> None:
    good, good_urls = good_feed(tag, "file")
    (tmp_path / "good.rss").write_bytes(good)
    nul_file = tmp_path / "nul.rss"
    nul_file.write_bytes(
        rss(
            item(f"Clean neighbour {tag}", link=f"https://nul.example/{tag}/clean"),
            item(f"Broken \x00 headline {tag}", link=f"https://nul.example/{tag}/broken"),
        )
    )
    http_good, http_good_urls = good_feed(tag, "http")
    Feeds.routes = {
        "/good.rss": (200, http_good),
        "/nul.rss": (200, rss(item(f"Web story {tag}", link=f"https://nul.example/{tag}/web",
                                   extra="<description>text with a \x00 inside</description>"))),
    }  # fmt: skip
    run([tmp_path / "good.rss", nul_file, f"{server}/nul.rss", f"{server}/good.rss"])

    assert stored_urls(engine, good_urls | http_good_urls) == good_urls | http_good_urls
    assert stored_urls(engine, {f"https://nul.example/{tag}/clean"}) == {f"https://nul.example/{tag}/clean"}
    assert not stored_urls(engine, {f"https://nul.example/{tag}/broken", f"https://nul.example/{tag}/web"})
    (file_item,) = quarantined(engine, str(nul_file))
    (web_item,) = quarantined(engine, f"{server}/nul.rss")
    assert file_item[0].startswith("item 2") and "NUL" in file_item[1]
    assert web_item[0].startswith("item 1") and "NUL" in web_item[1]


def test_an_empty_feed_is_recorded_and_the_others_load(engine: Engine, server: str, tmp_path: Path, tag: str) -> None:
    empty = tmp_path / "empty.rss"
    empty.write_bytes(b"")
    good, good_urls = good_feed(tag, "file")
    (tmp_path / "good.rss").write_bytes(good)
    http_good, http_good_urls = good_feed(tag, "http")
    Feeds.routes = {"/empty.rss": (200, b""), "/good.rss": (200, http_good)}
    result = run([empty, f"{server}/empty.rss", tmp_path / "good.rss", f"{server}/good.rss"])

    assert stored_urls(engine, good_urls | http_good_urls) == good_urls | http_good_urls
    assert result["broken_feeds"] == 2
    ((status, reason),) = failures(engine, f"{server}/empty.rss")
    assert status == 200 and "empty" in reason
    ((location, why),) = quarantined(engine, str(empty))
    assert location == "feed" and "empty" in why and str(empty) in why


def test_a_guid_is_unique_within_its_feed_only(engine: Engine, tmp_path: Path, tag: str) -> None:
    # Two feeds both number their link-less stories from 1: two different stories, both kept.
    one, two = tmp_path / "one.rss", tmp_path / "two.rss"
    one.write_bytes(rss(item(f"Fed holds rates {tag}", guid="1"),
                        item(f"Shared permalink story {tag}", guid=f"https://perma.example/{tag}/s")))  # fmt: skip
    two.write_bytes(rss(item(f"Oil slides on supply {tag}", guid="1"),
                        item(f"Shared permalink story, syndicated {tag}", guid=f"https://perma.example/{tag}/s/",
                             date="Tue, 06 Oct 2026 18:00:00 GMT")))  # fmt: skip
    run([one, two])

    with engine.begin() as conn:
        rows = conn.execute(
            text(
                "select n.title, array_agg(s.source order by s.source) from raw.news n"
                " join raw.news_sightings s on s.news_id = n.id where n.title like :t group by n.id order by n.title"
            ),
            {"t": f"%{tag}"},
        ).all()
    assert [tuple(r) for r in rows] == [
        (f"Fed holds rates {tag}", ["one.rss"]),
        (f"Oil slides on supply {tag}", ["two.rss"]),
        # A guid that is a URL names the story wherever it appears: one row, two sightings.
        (f"Shared permalink story {tag}", ["one.rss", "two.rss"]),
    ]


def test_relative_links_in_http_feeds_resolve_against_the_feed_url(engine: Engine, server: str, tag: str) -> None:
    http_good, http_good_urls = good_feed(tag, "http")
    Feeds.routes = {
        f"/feeds/{tag}.rss": (200, rss(item(f"Rooted link {tag}", link=f"/story/{tag}/1"),
                                       item(f"Relative link {tag}", link=f"story/{tag}/2"))),
        "/good.rss": (200, http_good),
    }  # fmt: skip
    run([f"{server}/feeds/{tag}.rss", f"{server}/good.rss"])

    expected = {f"{server}/story/{tag}/1", f"{server}/feeds/story/{tag}/2"}
    assert stored_urls(engine, expected | http_good_urls) == expected | http_good_urls
    assert quarantined(engine, f"{server}/feeds/{tag}.rss") == []


def test_markup_is_stripped_by_an_html_parser_not_a_pattern(engine: Engine, tmp_path: Path, tag: str) -> None:
    path = tmp_path / "markup.rss"
    link = f"https://markup.example/{tag}/pe"
    path.write_bytes(
        rss(
            item(
                f"Stocks with P/E &lt; 10 and yield &gt; 5% rally {tag}",
                link=link,
                extra="<description><![CDATA[<p>Shares <b>up</b> when x < 3 &amp; y > 2</p>"
                "<script>track()</script><style>p {color: red}</style>]]></description>",
            )
        )
    )
    run([path])

    row = story(engine, link)
    assert row.title == f"Stocks with P/E < 10 and yield > 5% rally {tag}"
    assert row.summary == "Shares up when x < 3 & y > 2"


def test_file_feed_dates_outside_the_sanity_window_are_quarantined(engine: Engine, tmp_path: Path, tag: str) -> None:
    path = tmp_path / "dates.rss"
    path.write_bytes(
        rss(
            item(f"On time {tag}", link=f"https://dates.example/{tag}/ok", date="Wed, 07 Oct 2026 10:00:00 GMT"),
            item(f"From the future {tag}", link=f"https://dates.example/{tag}/2099", date="Thu, 01 Jan 2099 00:00:00 GMT"),
            item(f"From the epoch {tag}", link=f"https://dates.example/{tag}/1970", date="Thu, 01 Jan 1970 00:00:00 GMT"),
        )
    )  # fmt: skip
    written = datetime(2026, 10, 7, 12, tzinfo=UTC)
    os.utime(path, (written.timestamp(), written.timestamp()))
    good, good_urls = good_feed(tag, "file")
    (tmp_path / "good.rss").write_bytes(good)
    run([path, tmp_path / "good.rss"])

    ok = f"https://dates.example/{tag}/ok"
    assert stored_urls(engine, good_urls | {ok}) == good_urls | {ok}
    assert not stored_urls(engine, {f"https://dates.example/{tag}/2099", f"https://dates.example/{tag}/1970"})
    rows = quarantined(engine, str(path))
    assert [r[0] for r in rows] == ["item 2 (link https://dates.example/" + tag + "/2099)",
                                    "item 3 (link https://dates.example/" + tag + "/1970)"]  # fmt: skip
    assert "2099-01-01" in rows[0][1] and "1970-01-01" in rows[1][1]


def test_undated_items_from_url_feeds_are_kept_and_flagged(
    engine: Engine, server: str, tmp_path: Path, tag: str
) -> None:
    link = f"https://undated.example/{tag}/1"
    Feeds.routes = {f"/undated-{tag}.rss": (200, rss(item(f"No date given {tag}", link=link, date=None)))}
    file_feed = tmp_path / "undated.rss"
    file_feed.write_bytes(rss(item(f"No date in a file {tag}", link=f"https://undated.example/{tag}/f", date=None)))
    good, good_urls = good_feed(tag, "file")
    (tmp_path / "good.rss").write_bytes(good)
    run([f"{server}/undated-{tag}.rss", file_feed, tmp_path / "good.rss"])

    assert stored_urls(engine, good_urls) == good_urls
    row = story(engine, link)
    with engine.begin() as conn:
        seen = conn.execute(text("select seen_at from raw.news_sightings where news_id = :i"), {"i": row.id}).scalar()
    assert row.published_unknown and not row.first_seen_assumed and row.first_seen_at == seen
    # A file has no fetch time that could stand for first sight: its undated items still need a date.
    ((_, reason),) = quarantined(engine, str(file_feed))
    assert "no parseable date" in reason


def test_a_malformed_file_feed_that_still_yields_items_is_recorded(engine: Engine, tmp_path: Path, tag: str) -> None:
    path = tmp_path / "truncated.rss"
    whole = rss(item(f"Survivor {tag}", link=f"https://trunc.example/{tag}/1"))
    path.write_bytes(whole[: whole.index(b"</channel>")])  # cut off mid-document
    good, good_urls = good_feed(tag, "file")
    (tmp_path / "good.rss").write_bytes(good)
    result = run([path, tmp_path / "good.rss"])

    assert stored_urls(engine, good_urls | {f"https://trunc.example/{tag}/1"}) == good_urls | {
        f"https://trunc.example/{tag}/1"
    }
    ((status, reason),) = failures(engine, str(path))
    assert status is None and "malformed" in reason and str(path) in reason
    assert result["broken_feeds"] == 1


def test_a_symbol_linked_by_a_later_sighting_is_not_seen_before_it(engine: Engine, server: str, tag: str) -> None:
    link = f"https://late.example/{tag}/story"
    title = f"Exchange lists new pairs {tag}"
    Feeds.routes = {
        f"/btc-{tag}.rss": (200, rss(item(title, link=link, extra="<category>BTC/USDT</category>"))),
        f"/eth-{tag}.rss": (200, rss(item(title, link=link, extra="<category>ETH/USDT</category>"))),
    }
    run([f"{server}/btc-{tag}.rss"])
    run([f"{server}/eth-{tag}.rss"])

    with engine.begin() as conn:
        news_id = story(engine, link).id
        seen = dict(
            conn.execute(
                text("select source, seen_at from raw.news_sightings where news_id = :i"), {"i": news_id}
            ).all()
        )
        t1, t2 = seen[f"{server}/btc-{tag}.rss"], seen[f"{server}/eth-{tag}.rss"]
        assert t1 < t2
        between = t1 + (t2 - t1) / 2
        symbols = ["BTC/USDT", "ETH/USDT"]
        before = recent_news_by_symbol(conn, symbols, between, timedelta(days=3650))
        after = recent_news_by_symbol(conn, symbols, t2, timedelta(days=3650))
    assert news_id in {i.id for i in before["BTC/USDT"]}
    assert news_id not in {i.id for i in before["ETH/USDT"]}
    (eth,) = [i for i in after["ETH/USDT"] if i.id == news_id]
    # For ETH the story became known at the later sighting, and that is the time a decision sees it at.
    assert eth.first_seen_at == t2
