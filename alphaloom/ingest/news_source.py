"""News source: RSS/Atom feeds (files or URLs) parsed into ``NewsItem``s and merged into ``raw.news``.

Two steps, so the parsing can be tested without a database and a flow can parse many feeds before one transaction:

- ``parse_feed(source, fetched_at=..., assumed_latency=...)`` reads one feed (``parse_document`` a document already
  fetched) by the rules of ``alphaloom.ingest.feed_entries``: identity, dates, markup, symbols, point-in-time first
  seen times; bad feeds and entries come back as ``Rejected`` rows while the other entries still load.
- ``store_news(conn, run_id, feeds)`` merges parsed feeds into ``raw.news``, ``raw.news_sightings``,
  ``raw.news_symbols`` and ``raw.quarantine`` (``alphaloom.ingest.feed_store``: the earliest ``first_seen_at`` wins,
  together with its ``first_seen_assumed`` flag; one sighting per feed; a symbol link is known from the first sighting
  that carried it); it is idempotent and never commits (the caller owns the transaction).

A third identity, news only: a story syndicated under another link with the same normalised title, published within
the hour, is a sighting of the story kept first (``_title_aliases``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, text

from alphaloom.domain import NewsId, NewsItem
from alphaloom.ingest.feed_entries import FeedEntries, normalised_title, read_entries, read_source_entries, source_name
from alphaloom.ingest.feed_store import FeedTables, first_sightings, merge_first_sightings
from alphaloom.ingest.quarantine import Rejected, quarantine

_TITLE_WINDOW = timedelta(hours=1)  # syndicated copies appear within minutes


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """One feed read once: its good ``items``, the ``source`` name their sightings are recorded under, and what was
    ``rejected`` (with reasons) instead of loaded."""

    items: list[NewsItem]
    source: str
    rejected: list[Rejected] = field(default_factory=list)
    bozo: str | None = None


@dataclass(frozen=True, slots=True)
class NewsIngestResult:
    """Counts from one ``store_news`` call.

    ``new_items`` rows were added to ``raw.news``; ``duplicate_items`` parsed items added none (already stored, or a
    second copy in the same batch); ``sightings_added`` and ``symbols_added`` count new rows in those tables;
    ``quarantined`` counts rejected feeds and entries written to ``raw.quarantine``.
    """

    new_items: int
    duplicate_items: int
    sightings_added: int
    symbols_added: int
    quarantined: int


# Where stories are stored (``alphaloom.ingest.feed_store`` merges them): columns read from ``NewsItem``'s fields.
NEWS_TABLES = FeedTables(
    items="raw.news", sightings="raw.news_sightings", symbols="raw.news_symbols", key="news_id",
    columns=(("id", "text"), ("url", "text"), ("title", "text"), ("summary", "text"), ("published_at", "timestamptz"),
             ("first_seen_at", "timestamptz"), ("first_seen_assumed", "boolean"), ("published_unknown", "boolean")),
)  # fmt: skip


def parse_feed(
    source: str | Path,
    *,
    fetched_at: datetime | None,
    assumed_latency: timedelta,
    aliases: Mapping[str, str] | None = None,
    name: str | None = None,
) -> ParsedFeed:
    """Parse one RSS/Atom feed from a file path or URL (``feed_entries.read_entries``' rules); ``name`` overrides
    ``source_name(source)``. Never raises for bad input: problems come back in ``rejected``."""
    label = name or source_name(source)
    read = read_source_entries(source, name=label, fetched_at=fetched_at, assumed_latency=assumed_latency,
                               aliases=aliases)  # fmt: skip
    return _news_feed(read, label)


def parse_document(
    document: bytes | str,
    *,
    source: str,
    name: str,
    fetched_at: datetime | None,
    assumed_latency: timedelta,
    aliases: Mapping[str, str] | None = None,
    base_url: str | None = None,
    clock: datetime | None = None,
) -> ParsedFeed:
    """Parse a feed document already fetched (``alphaloom.ingest.feeds`` does the HTTP); same rules as ``parse_feed``.
    ``ParsedFeed.bozo`` carries feedparser's complaint about a malformed document whose entries could still be read."""
    read = read_entries(document, source=source, name=name, fetched_at=fetched_at, assumed_latency=assumed_latency,
                        aliases=aliases, base_url=base_url, clock=clock)  # fmt: skip
    return _news_feed(read, name)


def _news_feed(read: FeedEntries, name: str) -> ParsedFeed:
    return ParsedFeed([item for _, item in read.entries], name, read.rejected, bozo=read.bozo)


def store_news(conn: Connection, run_id: str, feeds: Sequence[ParsedFeed]) -> NewsIngestResult:
    """Merge parsed feeds into ``raw`` within the caller's transaction; running it again adds nothing.

    One row per story id in ``raw.news`` (an existing row only ever moves its ``first_seen_at`` earlier), one sighting
    per (story, feed source), one row per (story, symbol); rejected feeds and entries go to ``raw.quarantine``.
    The run must already exist in ``audit.runs``.
    """
    same_story = _title_aliases(conn, [i for f in feeds for i in f.items])
    batch = first_sightings(
        (f.source, [replace(i, id=same_story[i.id]) if i.id in same_story else i for i in f.items]) for f in feeds
    )
    merged = merge_first_sightings(conn, run_id, NEWS_TABLES, batch)
    return NewsIngestResult(
        new_items=merged.new,
        duplicate_items=merged.duplicates,
        sightings_added=merged.sightings_added,
        symbols_added=merged.symbols_added,
        quarantined=quarantine(conn, run_id, [r for f in feeds for r in f.rejected]),
    )


def _title_aliases(conn: Connection, items: Sequence[NewsItem]) -> dict[str, NewsId]:
    """Story id -> the id it is a copy of: same normalised title, published within ``_TITLE_WINDOW`` of a story kept
    earlier (stored, or earlier in this batch). The window matters: generic headlines ("what to watch this week")
    recur on other days as other stories."""
    if not items:
        return {}
    kept: dict[str, list[tuple[datetime, NewsId]]] = {}
    stored = conn.execute(
        text("select id, title, published_at from raw.news where published_at between :lo and :hi order by id"),
        {
            "lo": min(i.published_at for i in items) - _TITLE_WINDOW,
            "hi": max(i.published_at for i in items) + _TITLE_WINDOW,
        },
    )
    stored_ids: set[str] = set()
    for story_id, title, published in stored:
        kept.setdefault(normalised_title(title), []).append((published, NewsId(story_id)))
        stored_ids.add(story_id)
    aliases: dict[str, NewsId] = {}
    for item in sorted(items, key=lambda i: (i.first_seen_at, i.id)):
        if item.id in stored_ids or item.id in aliases:
            continue
        same = kept.setdefault(normalised_title(item.title), [])
        match = next((i for t, i in same if abs(t - item.published_at) <= _TITLE_WINDOW), None)
        if match is None:
            same.append((item.published_at, item.id))
        elif match != item.id:
            aliases[item.id] = match
    return aliases
