"""Flow: ingest news feeds (files, or URLs fetched with conditional GET) into raw.news with sightings and symbols.

Each batch passes the GX quality gate first; broken feeds (URLs, and files that are empty, unreadable or malformed) are
recorded in raw.feed_failures and the others still load.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from prefect import flow, get_run_logger, task

from alphaloom.errors import ConfigError, VenueError
from alphaloom.ingest.alpaca_news import alpaca_news_feed, is_alpaca_feed
from alphaloom.ingest.feed_entries import source_name
from alphaloom.ingest.feeds import (
    FeedFetch,
    fetch_feeds,
    load_states,
    parse_fetched,
    record_fetches,
    record_file_failures,
)
from alphaloom.ingest.news_source import ParsedFeed, parse_feed, store_news
from alphaloom.ingest.social_source import (
    SOCIAL,
    ParsedSocialFeed,
    feed_kind,
    parse_social_document,
    parse_social_feed,
    store_social,
)
from alphaloom.quality.quality_gate import record_report
from alphaloom.settings import get_settings
from flows._alerts import alert_on_failure
from flows._audit import audited_run
from flows.ingest_prices import quality_gate

FEED_SUFFIXES = (".rss", ".atom", ".xml")


def default_feeds() -> list[str]:
    configured = get_settings().ingest.feeds
    if configured:
        return list(configured)
    folder = get_settings().offline_data_dir / "news"
    return sorted(str(p) for p in folder.glob("*") if p.suffix.lower() in FEED_SUFFIXES)


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _fetch_conditionally(engine: Any, urls: list[str]) -> list[FeedFetch]:
    """GET every feed URL with the validators its last fetch stored (``raw.feed_state``): a 304 brings no document."""
    with engine.begin() as conn:
        states = load_states(conn, urls)
    return fetch_feeds(urls, states)


@task(retries=2, retry_delay_seconds=2)
def read_feed_file(source: str) -> ParsedFeed:
    """A file has no fetch time in the past, so its first-seen time is assumed (publication + latency)."""
    settings = get_settings()
    latency = timedelta(minutes=settings.ingest.news_assumed_latency_minutes)
    feed = parse_feed(source, fetched_at=None, assumed_latency=latency, aliases=settings.ingest.alias_map)
    for rejected in feed.rejected[:20]:
        get_run_logger().warning("quarantined %s", rejected)
    return feed


@flow(name="ingest_news", on_failure=[alert_on_failure])
def ingest_news(feeds: list[str] | None = None, quality: bool = True) -> dict[str, object]:
    """Read every feed and store its stories once, with one sighting per feed; URLs are fetched conditionally.
    Feeds of kind ``social`` (``alphaloom.ingest.social_source.feed_kind``) go to ``raw.social_posts`` instead."""
    configured = feeds or default_feeds()
    settings = get_settings()
    kinds = [feed_kind(entry) for entry in configured]
    sources = [source for kind, source in kinds if kind != SOCIAL]
    social = [source for kind, source in kinds if kind == SOCIAL]
    urls = [s for s in sources if _is_url(s)]
    venues = [s for s in sources if is_alpaca_feed(s)]
    with audited_run("ingest_news", {"feeds": configured, "quality": quality}) as (engine, run_id):
        social_result = ingest_social(engine, run_id, social, quality=quality) if social else None
        files = [s for s in sources if not _is_url(s) and s not in venues]
        parsed: list[ParsedFeed] = [read_feed_file(s) for s in files]
        with engine.begin() as conn:
            broken = record_file_failures(conn, run_id, list(zip(files, parsed, strict=True)))
        for source in venues:  # Alpaca's news API: one feed per source, resuming after what is stored
            try:
                with engine.connect() as conn:
                    parsed.append(alpaca_news_feed(source, conn))
            except (ConfigError, VenueError) as exc:  # no keys, Alpaca down: this feed is broken, the others load
                broken.append((source, f"{type(exc).__name__}: {exc}"))
        if urls:
            fetches = _fetch_conditionally(engine, urls)
            fetched = [parse_fetched(f, aliases=settings.ingest.alias_map) for f in fetches]
            with engine.begin() as conn:
                broken += record_fetches(conn, run_id, fetches, fetched)
            parsed.extend(p for p in fetched if p is not None)
        for feed, reason in broken:
            get_run_logger().warning("broken feed %s: %s", feed, reason)
        report = None
        if quality and parsed:
            parsed, report = quality_gate().check_news(parsed, batch=f"news {len(parsed)} feeds")
        with engine.begin() as conn:
            if report is not None:
                record_report(conn, run_id, report)
            result = asdict(store_news(conn, run_id, parsed))
        return {
            **result,
            "broken_feeds": len(broken),
            "quality": None if report is None else report.success,
            "social": None if social_result is None else asdict(social_result),
        }


def ingest_social(engine: Any, run_id: str, sources: list[str], *, quality: bool = True) -> Any:
    """The social feeds (files: first seen at published + latency; URLs: fetched conditionally, first seen at the
    fetch time) into ``raw.social_posts``; broken ones recorded like news feeds. With ``quality`` the posts pass the
    GX social suite first (empty text, first seen in the future, unknown symbols: quarantined)."""
    settings = get_settings()
    latency = timedelta(minutes=settings.ingest.news_assumed_latency_minutes)
    aliases = settings.ingest.alias_map
    parsed: list[ParsedSocialFeed] = [
        parse_social_feed(s, fetched_at=None, assumed_latency=latency, aliases=aliases)
        for s in sources
        if not _is_url(s)
    ]
    urls = [s for s in sources if _is_url(s)]
    if urls:
        fetches = _fetch_conditionally(engine, urls)
        fetched = [
            None if f.document is None else
            parse_social_document(f.document, source=f.feed, name=source_name(f.feed), fetched_at=f.fetched_at,
                                  assumed_latency=latency, aliases=aliases, base_url=f.final_url or f.feed)
            for f in fetches
        ]  # fmt: skip
        with engine.begin() as conn:  # state and failures kept as for news feeds: a broken one is fetched in full
            record_fetches(conn, run_id, fetches, fetched)
        parsed += [p for p in fetched if p is not None]
    report = None
    if quality and parsed:
        known = {*settings.symbols, *aliases.values()}
        parsed, report = quality_gate().check_social(parsed, batch=f"social {len(parsed)} feeds", known_symbols=known)
    with engine.begin() as conn:
        if report is not None:
            record_report(conn, run_id, report)
        return store_social(conn, run_id, parsed)
