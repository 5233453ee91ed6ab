"""News ingest: feeds parsed into items (with point-in-time first-seen times) and merged idempotently into raw."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text

from alphaloom.domain import NewsId, NewsItem, stable_hash
from alphaloom.ingest.feed_entries import canonical_url, news_id, source_name
from alphaloom.ingest.news_source import ParsedFeed, parse_feed, store_news
from alphaloom.ingest.sampledata import DEFAULT_END, generate

LATENCY = timedelta(minutes=15)

RSS_WITH_BAD_ENTRIES = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Mixed</title><link>https://example.com/</link><description>d</description>
<item><title>Bitcoin surges past resistance</title><link>https://Example.com/a/?utm_source=x&amp;b=2&amp;a=1#top</link>
  <guid>g-1</guid><pubDate>Tue, 06 Oct 2026 10:00:00 GMT</pubDate><description>&lt;p&gt;Up &amp;amp; away&lt;/p&gt;</description>
  <category>Crypto</category><category>eth/usdt</category></item>
<item><link>https://example.com/no-title</link><guid>g-2</guid><pubDate>Tue, 06 Oct 2026 11:00:00 GMT</pubDate></item>
<item><title>No date here</title><link>https://example.com/no-date</link><guid>g-3</guid></item>
<item><title>Only a guid</title><guid>urn:story:4</guid><pubDate>Tue, 06 Oct 2026 12:00:00 +0200</pubDate></item>
</channel></rss>
"""


def _new_run(conn: Connection) -> str:
    run_id = f"test-{uuid.uuid4()}"
    conn.execute(text("insert into audit.runs (run_id, flow) values (:id, 'test')"), {"id": run_id})
    return run_id


def _counts(conn: Connection, ids: set[str]) -> dict[str, int]:
    """Rows in each table for the given story ids (the session database is shared between tests)."""
    params = {"ids": list(ids)}
    return {
        table: conn.execute(text(f"select count(*) from raw.{table} where {key} = any(:ids)"), params).scalar_one()
        for table, key in (("news", "id"), ("news_sightings", "news_id"), ("news_symbols", "news_id"))
    }


@pytest.fixture(scope="module")
def sample_feeds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    # A stretch of time no other test's data covers (the demo's 400 days and the modules' 45 end at DEFAULT_END): the
    # session database is shared, and a same-titled story within the hour would be merged into another test's story.
    data = generate(tmp_path_factory.mktemp("news"), days=30, seed=11, end=DEFAULT_END - timedelta(days=600))
    wire, markets = data.news_files
    return wire, markets


def _parse_sample(sample_feeds: tuple[Path, Path]) -> list[ParsedFeed]:
    return [parse_feed(p, fetched_at=None, assumed_latency=LATENCY) for p in sample_feeds]


# --- canonical URLs and ids (no database) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://News.Example.COM/a/b/", "https://news.example.com/a/b"),
        ("https://news.example.com/a?utm_source=x&utm_medium=feed", "https://news.example.com/a"),
        ("https://news.example.com/a?b=2&fbclid=zz&a=1&gclid=q", "https://news.example.com/a?a=1&b=2"),
        ("https://news.example.com/a#comments", "https://news.example.com/a"),
        ("https://news.example.com:443/a", "https://news.example.com/a"),
        ("http://news.example.com:8080/a", "http://news.example.com:8080/a"),
        ("https://news.example.com/", "https://news.example.com"),
        ("https://news.example.com/Path/Case?Q=Keep", "https://news.example.com/Path/Case?Q=Keep"),
        ("https://news.example.com/a?empty=&x=1", "https://news.example.com/a?empty=&x=1"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_news_id_prefers_the_canonical_url_then_the_guid() -> None:
    a = news_id("https://x.example/story?utm_source=rss", "guid-1")
    assert a == news_id("https://X.example/story/", "guid-2") == stable_hash("https://x.example/story")
    assert news_id(None, " guid-1 ") == stable_hash("guid-1")
    with pytest.raises(ValueError, match="no link or guid"):
        news_id("", None)


def test_source_names() -> None:
    assert source_name(Path("/tmp/a/wire.rss")) == "wire.rss"
    assert source_name("https://Feeds.Example.com/rss?key=1#x") == "https://feeds.example.com/rss"


# --- parsing (no database) --------------------------------------------------------------------------------------------


def test_file_feeds_assume_first_seen_after_publication(sample_feeds: tuple[Path, Path]) -> None:
    wire, markets = _parse_sample(sample_feeds)
    assert wire.source == "wire.rss" and markets.source == "markets.atom"
    assert wire.items and markets.items and not wire.rejected and not markets.rejected
    for item in wire.items + markets.items:
        assert item.first_seen_assumed
        assert item.first_seen_at == item.published_at + LATENCY
        assert item.url is not None and "utm_" not in item.url
    assert any(item.symbols for item in wire.items)


def test_live_fetch_uses_the_fetch_time(sample_feeds: tuple[Path, Path]) -> None:
    fetched = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    feed = parse_feed(sample_feeds[0], fetched_at=fetched, assumed_latency=LATENCY)
    assert all(i.first_seen_at == fetched and not i.first_seen_assumed for i in feed.items)
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_feed(sample_feeds[0], fetched_at=datetime(2026, 11, 1), assumed_latency=LATENCY)


def test_bad_entries_are_rejected_by_name_while_the_rest_load(data_dir: Path) -> None:
    path = data_dir / "mixed.rss"
    path.write_text(RSS_WITH_BAD_ENTRIES)
    feed = parse_feed(path, fetched_at=None, assumed_latency=LATENCY, aliases={"Bitcoin": "BTC/USDT"})
    assert [i.title for i in feed.items] == ["Bitcoin surges past resistance", "Only a guid"]
    first, guid_only = feed.items
    assert first.url == "https://example.com/a?a=1&b=2"
    assert first.id == stable_hash("https://example.com/a?a=1&b=2")
    assert first.summary == "Up & away"
    assert first.symbols == ("BTC/USDT", "ETH/USDT")  # alias in the title + a symbol-shaped category; "Crypto" ignored
    # A guid that is no URL is unique within its feed only (issue 13.7): the story is keyed by (feed, guid).
    assert guid_only.url is None and guid_only.id == stable_hash("mixed.rss\nurn:story:4")
    assert guid_only.published_at == datetime(2026, 10, 6, 10, tzinfo=UTC)
    assert [(r.source, r.location) for r in feed.rejected] == [
        (str(path), "item 2 (guid g-2)"),
        (str(path), "item 3 (guid g-3)"),
    ]
    assert "no title" in feed.rejected[0].reason and str(path) in feed.rejected[0].reason
    assert "no parseable date" in feed.rejected[1].reason
    assert "no-date" in feed.rejected[1].payload


def test_aliases_match_whole_words_and_category_terms_case_insensitively(data_dir: Path) -> None:
    path = data_dir / "alias.atom"
    path.write_text(
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>f</id>'
        "<updated>2026-10-01T00:00:00Z</updated>"
        '<entry><title>SOLANA and Applesauce news</title><id>e1</id><link href="https://e.example/1"/>'
        '<updated>2026-10-01T00:00:00Z</updated><category term="aapl"/></entry></feed>'
    )
    aliases = {"solana": "SOL/USDT", "apple": "AAPL/USD", "AAPL": "AAPL/USD"}
    (item,) = parse_feed(path, fetched_at=None, assumed_latency=LATENCY, aliases=aliases).items
    assert item.symbols == ("AAPL/USD", "SOL/USDT")  # "Applesauce" is not "Apple"; the category "aapl" is


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"this is not xml <<< at all >>>", "not a readable RSS/Atom feed"),
        (b"<html><body>a web page</body></html>", "not a readable RSS/Atom feed"),
        (None, "does not exist"),
    ],
)
def test_an_unreadable_feed_is_one_rejection(data_dir: Path, content: bytes | None, problem: str) -> None:
    path = data_dir / "broken.rss"
    if content is not None:
        path.write_bytes(content)
    feed = parse_feed(path, fetched_at=None, assumed_latency=LATENCY)
    assert feed.items == []
    (rejected,) = feed.rejected
    assert rejected.source == str(path) and rejected.location == "feed"
    assert problem in rejected.reason and str(path) in rejected.reason


# --- storing ----------------------------------------------------------------------------------------------------------


def test_generated_feeds_ingest_and_rerun_adds_nothing(engine: Engine, sample_feeds: tuple[Path, Path]) -> None:
    feeds = _parse_sample(sample_feeds)
    ids = {i.id for f in feeds for i in f.items}
    parsed = sum(len(f.items) for f in feeds)
    with engine.begin() as conn:
        result = store_news(conn, _new_run(conn), feeds)
        assert result.new_items == len(ids)
        assert result.duplicate_items == parsed - len(ids) > 0  # the stories syndicated to both feeds
        assert result.sightings_added == parsed
        assert result.symbols_added == sum(len(i.symbols) for i in {i.id: i for f in feeds for i in f.items}.values())
        assert result.quarantined == 0
        before = _counts(conn, ids)
        assert before == {"news": len(ids), "news_sightings": parsed, "news_symbols": result.symbols_added}
    with engine.begin() as conn:
        again = store_news(conn, _new_run(conn), _parse_sample(sample_feeds))
        assert (again.new_items, again.sightings_added, again.symbols_added) == (0, 0, 0)
        assert again.duplicate_items == parsed
        assert _counts(conn, ids) == before


def test_one_story_in_two_feeds_is_one_row_with_two_sightings(engine: Engine, sample_feeds: tuple[Path, Path]) -> None:
    wire, markets = _parse_sample(sample_feeds)
    shared = {i.id for i in wire.items} & {i.id for i in markets.items}
    assert shared
    story = sorted(shared)[0]
    with engine.begin() as conn:
        store_news(conn, _new_run(conn), [wire, markets])
        row = conn.execute(
            text("select url, first_seen_at, first_seen_assumed from raw.news where id = :id"), {"id": story}
        ).one()
        sightings = conn.execute(
            text("select source, seen_at from raw.news_sightings where news_id = :id order by source"), {"id": story}
        ).all()
    wire_item = next(i for i in wire.items if i.id == story)
    markets_item = next(i for i in markets.items if i.id == story)
    assert "utm_" not in row.url
    assert [s.source for s in sightings] == ["markets.atom", "wire.rss"]
    # The wire published first, so its (assumed) first-seen time is the story's.
    assert row.first_seen_at == min(wire_item.first_seen_at, markets_item.first_seen_at) == wire_item.first_seen_at
    assert row.first_seen_assumed


def test_an_earlier_sighting_later_moves_first_seen_earlier(engine: Engine, data_dir: Path) -> None:
    path = data_dir / "late.rss"
    path.write_text(RSS_WITH_BAD_ENTRIES)
    published = datetime(2026, 10, 6, 10, tzinfo=UTC)
    assumed = parse_feed(path, fetched_at=None, assumed_latency=timedelta(hours=2))
    live = parse_feed(path, fetched_at=published + timedelta(minutes=3), assumed_latency=LATENCY, name="live")
    later = parse_feed(path, fetched_at=published + timedelta(hours=5), assumed_latency=LATENCY, name="later")
    story = assumed.items[0].id
    query = text("select first_seen_at, first_seen_assumed from raw.news where id = :id")
    with engine.begin() as conn:
        conn.execute(text("delete from raw.news_sightings where news_id = :id"), {"id": story})
        conn.execute(text("delete from raw.news_symbols where news_id = :id"), {"id": story})
        conn.execute(text("delete from raw.news where id = :id"), {"id": story})
        store_news(conn, _new_run(conn), [assumed])
        assert tuple(conn.execute(query, {"id": story}).one()) == (published + timedelta(hours=2), True)
        result = store_news(conn, _new_run(conn), [live, later])
        # Fetched feeds also keep the undated "No date here" (issue 13.15): one new story, three sightings per feed.
        assert result.new_items == 1 and result.sightings_added == 6
        assert tuple(conn.execute(query, {"id": story}).one()) == (published + timedelta(minutes=3), False)


def test_rejections_are_quarantined_and_good_entries_still_load(engine: Engine, data_dir: Path) -> None:
    mixed = data_dir / "mixed.rss"
    mixed.write_text(RSS_WITH_BAD_ENTRIES)
    garbage = data_dir / "garbage.xml"
    garbage.write_text("<<< not a feed")
    feeds = [parse_feed(p, fetched_at=None, assumed_latency=LATENCY) for p in (mixed, garbage)]
    with engine.begin() as conn:
        run_id = _new_run(conn)
        result = store_news(conn, run_id, feeds)
        rows = conn.execute(
            text("select source, location, reason from raw.quarantine where run_id = :r order by id"), {"r": run_id}
        ).all()
        # Sightings, not ids: the guid-only story may be the same-titled story another test stored (title identity).
        stored = conn.execute(
            text("select count(distinct news_id) from raw.news_sightings where run_id = :r"), {"r": run_id}
        ).scalar_one()
    assert result.quarantined == 3
    assert [(r.source, r.location) for r in rows] == [
        (str(mixed), "item 2 (guid g-2)"),
        (str(mixed), "item 3 (guid g-3)"),
        (str(garbage), "feed"),
    ]
    assert all(r.source in r.reason for r in rows)
    assert stored == 2


def test_storing_nothing_is_fine(engine: Engine) -> None:
    with engine.begin() as conn:
        result = store_news(conn, _new_run(conn), [ParsedFeed([], "empty")])
    assert result == type(result)(0, 0, 0, 0, 0)


def _story(tag: str, seen: datetime, symbols: tuple[str, ...] = (), *, assumed: bool = False) -> NewsItem:
    """One story of this test alone (its id and title carry ``tag``), first seen at ``seen``."""
    return NewsItem(
        id=NewsId(stable_hash(f"pin-{tag}")), url=f"https://pin.example/{tag}", title=f"Pinned story {tag}",
        summary="", published_at=datetime(2025, 3, 4, 9, tzinfo=UTC), first_seen_at=seen, first_seen_assumed=assumed,
        symbols=symbols,
    )  # fmt: skip


def test_a_story_seen_again_later_keeps_its_first_seen_time_and_a_new_feed_adds_a_sighting(engine: Engine) -> None:
    tag = uuid.uuid4().hex[:12]
    first, later = datetime(2025, 3, 4, 9, 5, tzinfo=UTC), datetime(2025, 3, 4, 11, tzinfo=UTC)
    btc, eth = f"B{tag[:6]}/USDT", f"E{tag[:6]}/USDT"
    story = _story(tag, first, (btc,))
    again = _story(tag, later, (btc, eth))
    row = text("select first_seen_at, first_seen_assumed from raw.news where id = :id")
    with engine.begin() as conn:
        stored = store_news(conn, _new_run(conn), [ParsedFeed([story], "wire")])
        # the same story later: again in the same feed, and in a second feed that also tags a second symbol
        result = store_news(conn, _new_run(conn), [ParsedFeed([again], "wire"), ParsedFeed([again], "markets")])
        seen = dict(conn.execute(text("select source, seen_at from raw.news_sightings where news_id = :id"),
                                 {"id": story.id}).all())  # fmt: skip
        known = dict(conn.execute(text("select symbol, first_known_at from raw.news_symbols where news_id = :id"),
                                  {"id": story.id}).all())  # fmt: skip
        assert tuple(conn.execute(row, {"id": story.id}).one()) == (first, False)
    assert (stored.new_items, stored.sightings_added, stored.symbols_added) == (1, 1, 1)
    assert (result.new_items, result.duplicate_items, result.sightings_added, result.symbols_added) == (0, 2, 1, 1)
    assert seen == {"wire": first, "markets": later}
    assert known == {btc: first, eth: later}  # a link is known from the first sighting that carried it


def test_an_earlier_copy_moves_the_sighting_and_symbol_times_earlier_too(engine: Engine) -> None:
    tag = uuid.uuid4().hex[:12]
    assumed_at, fetched_at = datetime(2025, 3, 4, 9, 15, tzinfo=UTC), datetime(2025, 3, 4, 9, 2, tzinfo=UTC)
    symbol = f"B{tag[:6]}/USDT"
    with engine.begin() as conn:
        store_news(conn, _new_run(conn), [ParsedFeed([_story(tag, assumed_at, (symbol,), assumed=True)], "wire")])
        result = store_news(conn, _new_run(conn), [ParsedFeed([_story(tag, fetched_at, (symbol,))], "live")])
        story = _story(tag, fetched_at).id
        row = conn.execute(text("select first_seen_at, first_seen_assumed from raw.news where id = :id"),
                           {"id": story}).one()  # fmt: skip
        known = conn.execute(text("select first_known_at from raw.news_symbols where news_id = :id"),
                             {"id": story}).scalar_one()  # fmt: skip
    assert (result.new_items, result.sightings_added, result.symbols_added) == (0, 1, 0)
    assert tuple(row) == (fetched_at, False) and known == fetched_at
