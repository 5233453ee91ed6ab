"""News from Alpaca's news API (``NewsClient.get_news``, Benzinga's wire) into ``raw.news`` with symbols and first-seen
times, as one more feed of the news ingest: a feed source ``alpaca:news`` (the configured symbols) or
``alpaca:news:AAPL,MSFT`` in ``ALPHALOOM_FEEDS`` / ``alphaloom ingest news``.

- Each story becomes a ``NewsItem``: identity from its URL like any feed's story (the same story from an RSS feed is
  one ``raw.news`` row with two sightings), else from Alpaca's story id; symbols as Alpaca tags them.
- Point in time (ARCHITECTURE §4): a live fetch sets ``first_seen_at`` to the fetch time. The first fetch of a series
  (nothing stored from this source yet) is a backfill: ``first_seen_at = created_at + assumed latency``, flagged
  ``first_seen_assumed``, as for a file.
- Resumable: each fetch starts at the newest ``published_at`` already stored from this source (``resume_point``),
  so a rerun adds nothing; pages are followed by the SDK (``next_page_token``).
- A story without a headline or with a NUL byte is ``Rejected`` by itself; errors go through the one Alpaca error table
  (column ``INGEST``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text

from alphaloom.domain import NewsItem
from alphaloom.errors import ConfigError
from alphaloom.ingest.feed_entries import canonical_url, news_id
from alphaloom.ingest.news_source import ParsedFeed
from alphaloom.ingest.quarantine import Rejected
from alphaloom.venues.alpaca_errors import Call, translated

if TYPE_CHECKING:
    from alpaca.data.historical import NewsClient

FEED_PREFIX = "alpaca:news"
SOURCE = "alpaca-news"  # the sightings' source name


def is_alpaca_feed(source: str) -> bool:
    """Whether a feed source names Alpaca's news API."""
    return source == FEED_PREFIX or source.startswith(FEED_PREFIX + ":")


def feed_symbols(source: str, configured: Sequence[str]) -> list[str]:
    """The symbols of ``alpaca:news:AAPL,MSFT``; ``alpaca:news`` alone: the configured symbols."""
    listed = [s.strip() for s in source.removeprefix(FEED_PREFIX).lstrip(":").split(",") if s.strip()]
    return listed or [s for s in configured if "/" not in s]


def resume_point(conn: Connection) -> datetime | None:
    """The newest publication time stored from Alpaca's news (None when nothing is)."""
    value: datetime | None = conn.execute(
        text("select max(n.published_at) from raw.news n join raw.news_sightings s on s.news_id = n.id "
             "where s.source = :s"), {"s": SOURCE},
    ).scalar()  # fmt: skip
    return value


class AlpacaNewsSource:
    """Stories of some symbols since a time, as one ``ParsedFeed``."""

    def __init__(self, client: NewsClient, *, clock: Callable[[], datetime] | None = None) -> None:
        self.client = client
        self.clock = clock or (lambda: datetime.now(UTC))

    def fetch(self, symbols: Sequence[str], since: datetime, *, backfill: bool,
              assumed_latency: timedelta) -> ParsedFeed:  # fmt: skip
        """Every story of ``symbols`` created at or after ``since``; ``backfill``: first-seen times are assumed."""
        from alpaca.data.requests import NewsRequest

        fetched_at = self.clock()
        request = NewsRequest(symbols=",".join(symbols), start=since, end=fetched_at, sort="asc",
                              include_content=False)  # fmt: skip
        with translated(Call.INGEST, f"alpaca news of {','.join(symbols)}"):
            stories = self.client.get_news(request).data.get("news", [])  # type: ignore[union-attr]
        items: list[NewsItem] = []
        rejected: list[Rejected] = []
        for story in stories:
            try:
                items.append(_item(story, None if backfill else fetched_at, assumed_latency))
            except ValueError as exc:
                where = f"story {getattr(story, 'id', '?')}"
                rejected.append(Rejected(SOURCE, where, str(getattr(story, "headline", ""))[:200],
                                         f"{SOURCE} {where}: {exc}"))  # fmt: skip
        return ParsedFeed(items, SOURCE, rejected)


def _item(story: Any, fetched_at: datetime | None, latency: timedelta) -> NewsItem:
    headline = str(story.headline or "").strip()
    summary = str(story.summary or "").strip()
    if "\x00" in headline + summary + str(story.url or ""):
        raise ValueError("story contains a NUL byte, which cannot be stored as text")
    if not headline:
        raise ValueError("story has no headline")
    created = story.created_at.astimezone(UTC)
    url = str(story.url) if story.url and str(story.url).startswith(("http://", "https://")) else None
    return NewsItem(
        id=news_id(url, f"{SOURCE}:{story.id}", SOURCE), url=canonical_url(url) if url else None, title=headline,
        summary=summary, published_at=created, first_seen_at=fetched_at or created + latency,
        first_seen_assumed=fetched_at is None, symbols=tuple(sorted(set(story.symbols or ()))),
    )  # fmt: skip


def alpaca_news_feed(source: str, conn: Connection, *, now: datetime | None = None) -> ParsedFeed:
    """Fetch the feed ``source`` (``alpaca:news[:SYMBOLS]``) with ``ALPHALOOM_ACCOUNT``'s Alpaca keys, resuming after
    what is stored; the first fetch goes back ``ALPHALOOM_CCXT_BACKFILL_DAYS`` days as a backfill."""
    from alphaloom.settings import get_settings
    from alphaloom.venues.alpaca_client import alpaca_credentials, news_client

    settings = get_settings()
    credentials = alpaca_credentials(conn, settings, settings.account)
    if credentials is None:
        raise ConfigError(f"no Alpaca keys stored for account {settings.account!r}: add them with "
                          "`alphaloom keys add alpaca`")  # fmt: skip
    symbols = feed_symbols(source, settings.symbols)
    if not symbols:
        raise ConfigError(f"feed {source!r} names no symbols and none are configured")
    since = resume_point(conn)
    clock = (lambda: now) if now is not None else None
    start = since or (now or datetime.now(UTC)) - timedelta(days=settings.ingest.ccxt_backfill_days)
    return AlpacaNewsSource(news_client(credentials, settings.alpaca), clock=clock).fetch(
        symbols, start, backfill=since is None,
        assumed_latency=timedelta(minutes=settings.ingest.news_assumed_latency_minutes),
    )  # fmt: skip
