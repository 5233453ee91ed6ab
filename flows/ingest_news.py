"""Flow: ingest news feeds (files or URLs) into raw.news with sightings and symbols."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from prefect import flow, get_run_logger, task

from alphaloom.ingest.news import ParsedFeed, parse_feed, store_news
from alphaloom.settings import get_settings
from flows._alerts import alert_on_failure
from flows._audit import audited_run

FEED_SUFFIXES = (".rss", ".atom", ".xml")


def default_feeds() -> list[str]:
    folder = get_settings().offline_data_dir / "news"
    return sorted(str(p) for p in folder.glob("*") if p.suffix.lower() in FEED_SUFFIXES)


@task(retries=2, retry_delay_seconds=2)
def read_feed(source: str) -> ParsedFeed:
    """A live URL is first seen now; a file has no fetch time in the past, so its first-seen time is assumed."""
    is_url = source.startswith(("http://", "https://"))
    latency = timedelta(minutes=get_settings().news_assumed_latency_minutes)
    feed = parse_feed(source, fetched_at=datetime.now(UTC) if is_url else None, assumed_latency=latency)
    for rejected in feed.rejected[:20]:
        get_run_logger().warning("quarantined %s", rejected)
    return feed


@flow(name="ingest_news", on_failure=[alert_on_failure])
def ingest_news(feeds: list[str] | None = None) -> dict[str, int]:
    """Parse every feed and store its stories once, with one sighting per feed."""
    sources = feeds or default_feeds()
    with audited_run("ingest_news", {"feeds": sources}) as (engine, run_id):
        parsed = [read_feed(source) for source in sources]
        with engine.begin() as conn:
            return asdict(store_news(conn, run_id, parsed))
