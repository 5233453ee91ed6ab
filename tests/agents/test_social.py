"""Social sentiment: community feeds with duplicates and spam, stored once, read point in time, filtered, voted."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text

from agents.consensus import ConsensusParams, consensus
from agents.sentiment import SentimentScore
from agents.social import (
    SocialParams,
    filter_spam,
    posts_known,
    recent_social_by_symbol,
    social_opinion,
)
from alphaloom.domain import Action, AgentOpinion
from alphaloom.ingest.social_post import SocialPost
from alphaloom.ingest.social_source import (
    SOCIAL,
    ParsedSocialFeed,
    feed_kind,
    parse_social_document,
    parse_social_feed,
    post_text_hash,
    store_social,
)

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
LATENCY = timedelta(minutes=15)
SYMBOL = "BTC/USDT"


def _parsed() -> list:  # type: ignore[type-arg]
    return [parse_social_feed(FEEDS / name, fetched_at=None, assumed_latency=LATENCY)
            for name in ("social_wsb.atom", "social_crosspost.rss")]  # fmt: skip


def _run(conn: Connection) -> str:
    run_id = f"test-{uuid.uuid4()}"
    conn.execute(text("insert into audit.runs (run_id, flow) values (:id, 'test')"), {"id": run_id})
    return run_id


@contextmanager
def _serving(body: bytes, content_type: str, headers: dict[str, str] | None = None) -> Iterator[str]:
    """A local stand-in on 127.0.0.1 answering every GET with ``body``; yields its base URL."""

    class Feed(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_feed_marked_social_or_on_a_community_host_is_its_own_kind() -> None:
    assert feed_kind("social:data/forum.atom") == (SOCIAL, "data/forum.atom")
    assert feed_kind("https://www.reddit.com/r/stocks/new/.rss")[0] == SOCIAL
    assert feed_kind("https://news.example.com/markets.rss") == ("news", "https://news.example.com/markets.rss")


def test_duplicates_are_one_post_and_a_crosspost_is_a_second_sighting(engine: Engine) -> None:
    feeds = _parsed()
    assert [len(f.posts) for f in feeds] == [7, 1] and not any(f.rejected for f in feeds)
    with engine.begin() as conn:
        run_id = _run(conn)
        first = store_social(conn, run_id, feeds)
        again = store_social(conn, _run(conn), feeds)
        ids = list({p.id for f in feeds for p in f.posts})
        sightings = conn.execute(
            text("select source, count(*) from raw.social_sightings where post_id = any(:ids) group by source"),
            {"ids": ids},
        ).all()
        post1 = feeds[0].posts[0]
        stored = conn.execute(text("select first_seen_at, author_created_at from raw.social_posts where id = :i"),
                              {"i": post1.id}).one()  # fmt: skip
    # 8 parsed entries: the same post twice in one feed and once cross-posted under a tracking link -> 6 posts
    assert first.new_posts == 6 and first.duplicate_posts == 2 and again.new_posts == 0
    assert dict(sightings) == {"social_wsb.atom": 6, "social_crosspost.rss": 1}
    assert stored.first_seen_at == datetime(2026, 10, 6, 9, 15, tzinfo=UTC)  # published 09:00 + assumed latency
    assert stored.author_created_at == datetime(2019, 3, 1, tzinfo=UTC)


def test_posts_are_read_point_in_time_and_spam_is_dropped(engine: Engine) -> None:
    with engine.begin() as conn:
        store_social(conn, _run(conn), _parsed())
        before = recent_social_by_symbol(conn, [SYMBOL], datetime(2026, 10, 6, 9, 14, tzinfo=UTC), timedelta(hours=24))
        at_10 = recent_social_by_symbol(conn, [SYMBOL], datetime(2026, 10, 6, 10, tzinfo=UTC), timedelta(hours=24))
        at_12 = recent_social_by_symbol(conn, [SYMBOL], datetime(2026, 10, 6, 12, tzinfo=UTC), timedelta(hours=24))
        # the replay cursor loads the window once and takes, at each step, the posts known then: the live read
        window = timedelta(hours=2)
        loaded = recent_social_by_symbol(conn, [SYMBOL], datetime(2026, 10, 6, 13, tzinfo=UTC), timedelta(hours=6))
        for minutes in range(0, 240, 5):
            t = datetime(2026, 10, 6, 9, tzinfo=UTC) + timedelta(minutes=minutes)
            live = recent_social_by_symbol(conn, [SYMBOL], t, window)[SYMBOL]
            assert posts_known(loaded[SYMBOL], t, window) == live, t
    assert before[SYMBOL] == []  # nothing is known before its first-seen time
    assert [p.author for p in at_10[SYMBOL]] == ["/u/longtimer", "/u/bot_a", "/u/bot_b", "/u/bot_c", "/u/fresh_account"]
    assert len(at_12[SYMBOL]) == 6
    # the pure filter on loaded posts gives the read of each time
    assert posts_known(at_12[SYMBOL], datetime(2026, 10, 6, 10, tzinfo=UTC), timedelta(hours=24)) == at_10[SYMBOL]
    verdict = filter_spam(at_12[SYMBOL])
    assert [p.author for p in verdict.kept] == ["/u/longtimer", "/u/skeptic"]
    assert verdict.counts() == {"new_account": 1, "repeated_text": 3}
    # two copies of the campaign by 10:00 is under max_copies (3): not yet spam by repetition at 09:40
    early = posts_known(at_12[SYMBOL], datetime(2026, 10, 6, 9, 40, tzinfo=UTC), timedelta(hours=24))
    assert filter_spam(early).counts() == {}


def test_the_opinion_is_the_mean_of_the_posts_kept_scaled_by_the_mention_rate() -> None:
    t = datetime(2026, 10, 6, 12, tzinfo=UTC)
    posts = parse_social_feed(FEEDS / "social_wsb.atom", fetched_at=None, assumed_latency=LATENCY).posts[1:]
    scores = {p.id: SentimentScore("positive", 0.8) for p in posts}
    skeptic = next(p for p in posts if p.author == "/u/skeptic")
    scores[skeptic.id] = SentimentScore("negative", -0.2)
    params = SocialParams(window_hours=4.0, full_rate_per_hour=1.0)
    opinion = social_opinion(SYMBOL, t, posts, scores, params)
    # kept: longtimer (0.8) and skeptic (-0.2): mean 0.3; rate 2 posts / 4 h = 0.5 of the full rate
    assert opinion.action is Action.BUY and opinion.details["mentions"] == 2
    assert opinion.details["mean"] == pytest.approx(0.3) and opinion.confidence == pytest.approx(0.15)
    assert opinion.details["spam"] == {"new_account": 1, "repeated_text": 3}
    none = social_opinion(SYMBOL, t, [], {}, params)
    assert none.skipped and none.action is Action.HOLD


def test_social_has_a_weight_of_its_own_in_the_vote() -> None:
    t = datetime(2026, 10, 6, 12, tzinfo=UTC)
    technical = AgentOpinion("technical", SYMBOL, t, Action.HOLD, 0.0, "flat")
    social = AgentOpinion("social", SYMBOL, t, Action.BUY, 1.0, "crowd")
    default = ConsensusParams()
    assert default.weights["social"] == 0.3
    assert consensus([technical, social], default)[1] == pytest.approx(0.3 / 1.3)
    heavier = ConsensusParams(weights={**default.weights, "social": 1.0})
    assert consensus([technical, social], heavier) == (Action.BUY, 0.5)


def test_the_news_flow_sends_social_feeds_to_their_own_tables(engine: Engine, prefect_harness, tmp_path: Path) -> None:
    from flows.ingest_news import ingest_news

    copy = tmp_path / "r_cryptomarkets.atom"
    copy.write_bytes((FEEDS / "social_wsb.atom").read_bytes())
    result = ingest_news([f"social:{copy}"], quality=False)
    assert result["social"]["sightings_added"] == 6 and result["new_items"] == 0
    with engine.connect() as conn:
        in_news = conn.execute(
            text("select count(*) from raw.news where title like 'Bitcoin looks strong, great breakout%'")
        ).scalar_one()
        sightings = conn.execute(
            text("select count(*) from raw.social_sightings where source = 'r_cryptomarkets.atom'")
        ).scalar_one()
    assert in_news == 0 and sightings == 6


def test_a_fetched_social_feed_is_first_seen_at_its_fetch_time(engine: Engine) -> None:
    """A social feed served over HTTP by a local stand-in: its posts are first seen when fetched, not assumed."""
    from flows.ingest_news import ingest_social

    body = (FEEDS / "social_crosspost.rss").read_bytes().replace(b"post1/bitcoin_strong", b"post9/fetched_copy")
    with _serving(body, "application/rss+xml") as base:
        before = datetime.now(UTC)
        with engine.begin() as conn:
            run_id = _run(conn)
        result = ingest_social(engine, run_id, [f"{base}/r/bitcoin/.rss"])
        after = datetime.now(UTC)
    assert result.new_posts == 1
    with engine.connect() as conn:
        seen, assumed = conn.execute(
            text("select first_seen_at, first_seen_assumed from raw.social_posts where url like '%post9/fetched_copy'")
        ).one()
    assert before <= seen <= after and not assumed


def _post(tag: str, seen: datetime, symbols: tuple[str, ...] = (), *, author: str | None = None) -> SocialPost:
    """One post of this test alone (its id carries ``tag``), first seen at ``seen``."""
    title = f"Pinned post {tag}"
    return SocialPost(
        id=f"pin-{tag}", url=f"https://forum.example/{tag}", author=author, author_created_at=None, title=title,
        body="", text_hash=post_text_hash(title, ""), published_at=datetime(2025, 3, 4, 9, tzinfo=UTC),
        first_seen_at=seen, first_seen_assumed=False, symbols=symbols,
    )  # fmt: skip


def test_a_post_seen_again_later_keeps_its_first_seen_time_and_a_crosspost_adds_only_a_sighting(
    engine: Engine,
) -> None:
    tag = uuid.uuid4().hex[:12]
    first, later = datetime(2025, 3, 4, 9, 5, tzinfo=UTC), datetime(2025, 3, 4, 11, tzinfo=UTC)
    btc, eth = f"B{tag[:6]}/USDT", f"E{tag[:6]}/USDT"
    with engine.begin() as conn:
        stored = store_social(conn, _run(conn), [ParsedSocialFeed([_post(tag, first, (btc,))], "r_a")])
        again = _post(tag, later, (btc, eth), author="/u/late")
        result = store_social(conn, _run(conn), [ParsedSocialFeed([again], "r_a"), ParsedSocialFeed([again], "r_b")])
        row = conn.execute(text("select first_seen_at, author from raw.social_posts where id = :i"),
                           {"i": again.id}).one()  # fmt: skip
        seen = dict(conn.execute(text("select source, seen_at from raw.social_sightings where post_id = :i"),
                                 {"i": again.id}).all())  # fmt: skip
        known = dict(conn.execute(text("select symbol, first_known_at from raw.social_symbols where post_id = :i"),
                                  {"i": again.id}).all())  # fmt: skip
    assert (stored.new_posts, stored.sightings_added, stored.symbols_added) == (1, 1, 1)
    assert (result.new_posts, result.duplicate_posts, result.sightings_added, result.symbols_added) == (0, 2, 1, 1)
    assert tuple(row) == (first, None)  # a stored post keeps its first-seen time (and what it was stored with)
    assert seen == {"r_a": first, "r_b": later} and known == {btc: first, eth: later}


def test_the_earliest_copy_in_a_batch_wins_and_keeps_an_author_only_a_later_copy_named(engine: Engine) -> None:
    tag = uuid.uuid4().hex[:12]
    early, late = datetime(2025, 3, 4, 9, 1, tzinfo=UTC), datetime(2025, 3, 4, 9, 30, tzinfo=UTC)
    feeds = [
        ParsedSocialFeed([_post(tag, late, author="/u/named")], "r_a"),
        ParsedSocialFeed([_post(tag, early)], "r_b"),
    ]
    with engine.begin() as conn:
        result = store_social(conn, _run(conn), feeds)
        row = conn.execute(text("select first_seen_at, author from raw.social_posts where id = :i"),
                           {"i": f"pin-{tag}"}).one()  # fmt: skip
    assert (result.new_posts, result.duplicate_posts, result.sightings_added) == (1, 1, 2)
    assert tuple(row) == (early, "/u/named")


def test_a_post_tagged_by_a_later_sighting_is_read_for_that_symbol_from_that_sighting_only(engine: Engine) -> None:
    tag = uuid.uuid4().hex[:12]
    first, tagged = datetime(2025, 3, 4, 9, 5, tzinfo=UTC), datetime(2025, 3, 4, 10, 5, tzinfo=UTC)
    btc, eth = f"B{tag[:6]}/USDT", f"E{tag[:6]}/USDT"
    window, tick = timedelta(hours=2), timedelta(microseconds=1)
    with engine.begin() as conn:
        store_social(conn, _run(conn), [ParsedSocialFeed([_post(tag, first, (btc,))], "r_a")])
        store_social(conn, _run(conn), [ParsedSocialFeed([_post(tag, tagged, (btc, eth))], "r_b")])
        reads = {t: recent_social_by_symbol(conn, [btc, eth], t, window)
                 for t in (tagged - tick, tagged, first + window - tick, first + window, tagged + window)}  # fmt: skip
        loaded = recent_social_by_symbol(conn, [btc, eth], tagged + window, timedelta(days=1))
    assert [(p.id, p.first_seen_at, p.symbols) for p in reads[tagged][eth]] == [(f"pin-{tag}", tagged, (eth,))]
    assert reads[tagged - tick][eth] == [] and reads[tagged - tick][btc][0].first_seen_at == first
    # (as_of - window, as_of]: a post seen exactly a window ago is out
    assert len(reads[first + window - tick][btc]) == 1 and reads[first + window][btc] == []
    assert reads[tagged + window][eth] == []
    for t, read in reads.items():  # the pure window on loaded posts is the live read at every time
        for symbol in (btc, eth):
            assert posts_known(loaded[symbol], t, window) == read[symbol], (t, symbol)


def test_a_social_feed_quarantines_by_the_same_rows_it_always_did() -> None:
    """Social rejections name the item by its number alone and carry no payload (news ones carry evidence)."""
    t = datetime(2026, 10, 6, 12, tzinfo=UTC)
    untitled = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>r</title>'
        b"<item><link>https://forum.example/p/1</link><pubDate>Tue, 06 Oct 2026 10:00:00 GMT</pubDate></item>"
        b"<item><title>Kept</title><link>https://forum.example/p/2</link>"
        b"<pubDate>Tue, 06 Oct 2026 10:00:00 GMT</pubDate></item></channel></rss>"
    )
    rows: dict[str, tuple[list[tuple[str, str, str, str]], int]] = {}
    for label, document in (("empty", b"  "), ("garbage", b"<<< not a feed"), ("untitled", untitled)):
        feed = parse_social_document(document, source=f"src-{label}", name=label, fetched_at=t, assumed_latency=LATENCY)
        rows[label] = ([(r.source, r.location, r.payload, r.reason) for r in feed.rejected], len(feed.posts))
    assert rows["empty"] == ([("src-empty", "feed", "", "src-empty is empty (no feed document)")], 0)
    ([(source, location, payload, reason)], kept) = rows["garbage"]
    assert (source, location, payload, kept) == ("src-garbage", "feed", "", 0)
    assert reason.startswith("src-garbage is not a readable feed: ")
    assert rows["untitled"] == ([("src-untitled", "item 1", "", "src-untitled item 1: entry has no title")], 1)
    missing = parse_social_feed(FEEDS / "no-such.atom", fetched_at=None, assumed_latency=LATENCY)
    assert [(r.location, r.payload, r.reason) for r in missing.rejected] == [
        ("feed", "", f"feed file {FEEDS / 'no-such.atom'} does not exist")
    ]


def test_a_fetched_social_url_that_is_not_a_feed_is_recorded_as_broken_and_fetched_in_full_next_time(
    engine: Engine,
) -> None:
    """A social URL answering 200 with a page that is not a feed: one ``raw.feed_failures`` row naming it, and its
    validators are not kept, so the next run fetches it in full (as for a news URL)."""
    from flows.ingest_news import ingest_social

    page = b"<html><body>Sign in to continue</body></html>"
    with _serving(page, "text/html", {"ETag": '"page-v1"'}) as base:
        url = f"{base}/r/broken/.rss"
        with engine.begin() as conn:
            run_id = _run(conn)
        result = ingest_social(engine, run_id, [url])
    assert result.new_posts == 0
    with engine.connect() as conn:
        failures = conn.execute(
            text("select reason from raw.feed_failures where feed = :f and run_id = :r"), {"f": url, "r": run_id}
        ).scalars().all()  # fmt: skip
        etag = conn.execute(text("select etag from raw.feed_state where feed = :f"), {"f": url}).scalar_one()
    assert len(failures) == 1 and "not a readable feed" in failures[0]
    assert etag is None
