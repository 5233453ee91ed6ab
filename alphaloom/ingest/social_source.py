"""Social sources: community feeds (Reddit-style RSS/Atom, any feed marked ``social``) as a source kind of their own.

A feed is social when its entry in the feeds configuration starts with ``social:`` (``social:https://host/r/x/.rss``,
``social:path/to/file.atom``) or its URL is on a known community host (``reddit.com``); ``feed_kind`` splits an entry
into its kind and its source. Social posts are parsed like news (``alphaloom.ingest.feed_entries``: the same identity,
date sanity, markup stripping and symbol tagging, the same point-in-time first-seen times) and carry what the spam
filters need: the ``author`` and, where the feed says so, when the author's account was created
(an entry element whose name ends in ``author_created``, an ISO time, or ``author_age_days``, a number of days before
the post) and ``text_hash``, the hash of the normalised text (repeated text).

``store_social`` merges them into ``raw.social_posts``, ``raw.social_sightings`` and ``raw.social_symbols``
(``alphaloom.ingest.feed_store``): one row per post (the earliest sighting's first-seen time wins; a cross-post is a
second sighting), idempotent, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection

from alphaloom.domain import NewsItem, stable_hash
from alphaloom.ingest.feed_entries import (
    FeedEntries,
    entry_field,
    normalised_title,
    plain_text,
    read_entries,
    read_source_entries,
    source_name,
)
from alphaloom.ingest.feed_store import FeedTables, first_sightings, merge_first_sightings
from alphaloom.ingest.quarantine import Rejected, quarantine
from alphaloom.ingest.social_post import SocialPost

SOCIAL = "social"
NEWS = "news"
_SOCIAL_HOSTS = ("reddit.com", "stocktwits.com")


def feed_kind(entry: str) -> tuple[str, str]:
    """(kind, source) of a feeds-configuration entry: ``social:SOURCE`` is social, as is a URL on a community host;
    anything else is news."""
    if entry.lower().startswith("social:"):
        return SOCIAL, entry[len("social:") :].strip()
    host = (urlsplit(entry).hostname or "").lower()
    if any(host == h or host.endswith("." + h) for h in _SOCIAL_HOSTS):
        return SOCIAL, entry
    return NEWS, entry


def post_text_hash(title: str, body: str) -> str:
    """The repeated-text key: the normalised words of title and body (case, punctuation and spacing ignored)."""
    return stable_hash(normalised_title(f"{title} {body}"), length=32)


@dataclass(frozen=True, slots=True)
class ParsedSocialFeed:
    """One social feed read once: its posts, the source their sightings are recorded under, what was rejected."""

    posts: list[SocialPost]
    source: str
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def items(self) -> list[SocialPost]:
        """The posts, under the name a fetched document's bookkeeping reads (``alphaloom.ingest.feeds``)."""
        return self.posts

    @property
    def bozo(self) -> str | None:
        """A social feed read with a problem is rejected whole (a ``feed`` row of ``rejected``), never half read."""
        return None


def _author_created(entry: Any, published: datetime) -> datetime | None:
    for key in entry:
        value = dict.get(entry, key)
        if key.endswith("author_created") and isinstance(value, str):
            try:
                created = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                return None
            return created.astimezone(UTC) if created.tzinfo else created.replace(tzinfo=UTC)
        if key.endswith("author_age_days") and isinstance(value, str):
            try:
                return published - timedelta(days=float(value))
            except ValueError:
                return None
    return None


def parse_social_document(
    document: bytes | str,
    *,
    source: str,
    name: str,
    fetched_at: datetime | None,
    assumed_latency: timedelta,
    aliases: Mapping[str, str] | None = None,
    base_url: str | None = None,
    clock: datetime | None = None,
) -> ParsedSocialFeed:
    """A social feed document as posts; the rules of ``feed_entries.read_entries`` (never raises for bad input)."""
    read = read_entries(document, source=source, name=name, fetched_at=fetched_at, assumed_latency=assumed_latency,
                        aliases=aliases, base_url=base_url, clock=clock, feed_word="feed", evidence=False)  # fmt: skip
    return _social_feed(read, name)


def parse_social_feed(
    source: str | Path, *, fetched_at: datetime | None, assumed_latency: timedelta,
    aliases: Mapping[str, str] | None = None,
) -> ParsedSocialFeed:  # fmt: skip
    """One social feed file (or URL for feedparser): ``parse_social_document`` on its contents."""
    label = source_name(source)
    read = read_source_entries(source, name=label, fetched_at=fetched_at, assumed_latency=assumed_latency,
                               aliases=aliases, feed_word="feed", evidence=False)  # fmt: skip
    return _social_feed(read, label)


def _social_feed(read: FeedEntries, name: str) -> ParsedSocialFeed:
    return ParsedSocialFeed([_post(entry, item) for entry, item in read.entries], name, read.rejected)


def _post(entry: Any, item: NewsItem) -> SocialPost:
    """An entry read as a story, with what the spam filters need: author, account age, the hash of its text."""
    body = item.summary or plain_text(((entry_field(entry, "content") or [{}])[0]).get("value"))
    author = (entry_field(entry, "author") or "").strip() or None
    return SocialPost(
        id=item.id, url=item.url, author=author, author_created_at=_author_created(entry, item.published_at),
        title=item.title, body=body, text_hash=post_text_hash(item.title, body), published_at=item.published_at,
        first_seen_at=item.first_seen_at, first_seen_assumed=item.first_seen_assumed, symbols=item.symbols,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class SocialIngestResult:
    """Counts from one ``store_social``: new posts, parsed posts that added none, new sightings, new symbol links,
    quarantined rows."""

    new_posts: int
    duplicate_posts: int
    sightings_added: int
    symbols_added: int
    quarantined: int


# Where posts are stored (``alphaloom.ingest.feed_store`` merges them): columns read from ``SocialPost``'s fields.
SOCIAL_TABLES = FeedTables(
    items="raw.social_posts", sightings="raw.social_sightings", symbols="raw.social_symbols", key="post_id",
    columns=(("id", "text"), ("url", "text"), ("author", "text"), ("author_created_at", "timestamptz"),
             ("title", "text"), ("body", "text"), ("text_hash", "text"), ("published_at", "timestamptz"),
             ("first_seen_at", "timestamptz"), ("first_seen_assumed", "boolean")),
)  # fmt: skip


def _with_author(earlier: SocialPost, kept: SocialPost) -> SocialPost:
    """An earlier copy of a post replaces the one kept, keeping the author only the later copy named."""
    return replace(earlier, author=earlier.author or kept.author)


def store_social(conn: Connection, run_id: str, feeds: Sequence[ParsedSocialFeed]) -> SocialIngestResult:
    """Merge parsed social feeds into ``raw`` within the caller's transaction; running it again adds nothing."""
    merged = merge_first_sightings(
        conn, run_id, SOCIAL_TABLES, first_sightings(((f.source, f.posts) for f in feeds), _with_author)
    )
    return SocialIngestResult(
        new_posts=merged.new,
        duplicate_posts=merged.duplicates,
        sightings_added=merged.sightings_added,
        symbols_added=merged.symbols_added,
        quarantined=quarantine(conn, run_id, [r for f in feeds for r in f.rejected]),
    )
