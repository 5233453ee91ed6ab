"""News feeds over HTTP: conditional GET with httpx, per-feed state in ``raw.feed_state``, broken feeds recorded.

``fetch_feeds(urls, states)`` GETs every feed (bounded concurrency), sending ``If-None-Match`` / ``If-Modified-Since``
from the feed's stored state; a ``304`` means nothing changed and nothing is parsed. ``parse_fetched`` turns a ``200``
into a ``ParsedFeed`` (``first_seen_at`` = fetch time; relative links resolved against the URL the document came from,
after redirects). ``record_fetches`` stores the new state of each feed and a ``raw.feed_failures`` row, with its
reason, for every feed that failed (HTTP error, network error, an empty or unreadable document, feedparser bozo);
``record_file_failures`` does the same for feed files (no HTTP status, no state). One broken feed never stops the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import httpx
from sqlalchemy import Connection, text

from alphaloom.ingest.feed_entries import source_name
from alphaloom.ingest.news_source import ParsedFeed, parse_document
from alphaloom.ingest.quarantine import Rejected

USER_AGENT = "AlphaLoom/0.1 (+feed reader; conditional GET)"


class ParsedDocument(Protocol):
    """What the fetch bookkeeping reads of a parsed document, news (``ParsedFeed``) or social (``ParsedSocialFeed``):
    what was read, what was rejected (a ``feed`` row: the whole document), and a problem it was read despite."""

    @property
    def items(self) -> Sequence[object]: ...

    @property
    def rejected(self) -> Sequence[Rejected]: ...

    @property
    def bozo(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the last fetch of a feed left: validators for the next conditional GET."""

    feed: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FeedFetch:
    """One GET of one feed. ``document`` is set for a 200; ``not_modified`` for a 304; ``error`` says why it failed."""

    feed: str
    fetched_at: datetime
    status: int | None
    document: bytes | None = None
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    error: str | None = None
    final_url: str | None = None


def load_states(conn: Connection, feeds: Sequence[str]) -> dict[str, FeedState]:
    rows = conn.execute(
        text("select feed, etag, last_modified from raw.feed_state where feed = any(:feeds)"), {"feeds": list(feeds)}
    )
    return {feed: FeedState(feed, etag, modified) for feed, etag, modified in rows}


def fetch_feed(client: httpx.Client, url: str, state: FeedState | None) -> FeedFetch:
    """GET one feed conditionally; never raises for HTTP or network trouble (it comes back as ``error``)."""
    headers = {}
    if state is not None and state.etag:
        headers["If-None-Match"] = state.etag
    if state is not None and state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    fetched_at = datetime.now(UTC)
    keep = {"etag": state.etag if state else None, "last_modified": state.last_modified if state else None}
    try:
        response = client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        return FeedFetch(url, fetched_at, None, error=f"{url}: {type(exc).__name__}: {exc}", **keep)
    if response.status_code == 304:
        return FeedFetch(url, fetched_at, 304, not_modified=True, **keep)
    if response.status_code >= 400:
        reason = f"{url}: HTTP {response.status_code} {response.reason_phrase}"
        return FeedFetch(url, fetched_at, response.status_code, error=reason, **keep)
    return FeedFetch(
        url, fetched_at, response.status_code, document=response.content,
        etag=response.headers.get("etag"), last_modified=response.headers.get("last-modified"),
        final_url=str(response.url),
    )  # fmt: skip


def fetch_feeds(
    urls: Sequence[str],
    states: Mapping[str, FeedState],
    *,
    timeout: float = 20.0,
    max_concurrency: int = 8,
    transport: httpx.BaseTransport | None = None,
) -> list[FeedFetch]:
    """Fetch every feed, in the order given, at most ``max_concurrency`` at a time."""
    with httpx.Client(timeout=timeout, follow_redirects=True, headers={"User-Agent": USER_AGENT},
                      transport=transport) as client:  # fmt: skip
        if not urls:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(max_concurrency, len(urls)))) as pool:
            return list(pool.map(lambda u: fetch_feed(client, u, states.get(u)), urls))


def parse_fetched(
    fetch: FeedFetch, *, aliases: Mapping[str, str] | None = None, assumed_latency: timedelta = timedelta(0)
) -> ParsedFeed | None:
    """The parsed feed of a ``200`` (first seen at the fetch time); ``None`` for a 304 or a failed fetch."""
    if fetch.document is None:
        return None
    return parse_document(fetch.document, source=fetch.feed, name=source_name(fetch.feed), fetched_at=fetch.fetched_at,
                          assumed_latency=assumed_latency, aliases=aliases,
                          base_url=fetch.final_url or fetch.feed)  # fmt: skip


def failure_reason(fetch: FeedFetch, parsed: ParsedDocument | None) -> str | None:
    """Why a feed counts as broken this time, or ``None``."""
    if fetch.error:
        return fetch.error
    return parse_failure(fetch.feed, parsed)


def parse_failure(feed: str, parsed: ParsedDocument | None) -> str | None:
    """Why a parsed feed counts as broken (empty or unreadable document, or malformed but still read), or ``None``."""
    if parsed is not None and not parsed.items and any(r.location == "feed" for r in parsed.rejected):
        return next(r.reason for r in parsed.rejected if r.location == "feed")
    if parsed is not None and parsed.bozo:
        return f"{feed}: {parsed.bozo}"
    return None


_INSERT_FAILURE = text(
    "insert into raw.feed_failures (feed, http_status, reason, run_id) values (:feed, :status, :reason, :run_id)"
)


def record_file_failures(
    conn: Connection, run_id: str, files: Sequence[tuple[str, ParsedFeed]]
) -> list[tuple[str, str]]:
    """A ``raw.feed_failures`` row (no HTTP status) per broken feed file of ``(path, parsed)``; returns the broken
    ones as ``(path, reason)``. A malformed file whose entries could still be read is recorded, and its good entries
    load as usual."""
    broken = [(path, reason) for path, parsed in files if (reason := parse_failure(path, parsed)) is not None]
    if broken:
        conn.execute(_INSERT_FAILURE, [{"feed": f, "status": None, "reason": r, "run_id": run_id} for f, r in broken])
    return broken


_UPSERT_STATE = text(
    """
    insert into raw.feed_state (feed, etag, last_modified, last_status, last_error, last_fetched_at, last_ok_at, run_id)
    values (:feed, :etag, :last_modified, :status, :error, :fetched_at, :ok_at, :run_id)
    on conflict (feed) do update set
        etag = excluded.etag, last_modified = excluded.last_modified, last_status = excluded.last_status,
        last_error = excluded.last_error, last_fetched_at = excluded.last_fetched_at,
        last_ok_at = coalesce(excluded.last_ok_at, raw.feed_state.last_ok_at), run_id = excluded.run_id
    """
)


def record_fetches(
    conn: Connection, run_id: str, fetches: Sequence[FeedFetch], parsed: Sequence[ParsedDocument | None]
) -> list[tuple[str, str]]:
    """Store each feed's new state and a failure row per broken feed; returns ``(feed, reason)`` of the broken ones.

    A feed whose document could not be parsed keeps its old validators, so the next run fetches it in full again.
    """
    broken: list[tuple[str, str]] = []
    for fetch, feed in zip(fetches, parsed, strict=True):
        reason = failure_reason(fetch, feed)
        unparseable = feed is not None and not feed.items and reason is not None
        if unparseable:
            fetch = FeedFetch(fetch.feed, fetch.fetched_at, fetch.status, error=reason)
        conn.execute(
            _UPSERT_STATE,
            {
                "feed": fetch.feed, "etag": fetch.etag, "last_modified": fetch.last_modified, "status": fetch.status,
                "error": reason, "fetched_at": fetch.fetched_at, "run_id": run_id,
                "ok_at": fetch.fetched_at if reason is None or (feed is not None and feed.items) else None,
            },
        )  # fmt: skip
        if reason is not None:
            broken.append((fetch.feed, reason))
            conn.execute(
                _INSERT_FAILURE, {"feed": fetch.feed, "status": fetch.status, "reason": reason, "run_id": run_id}
            )
    return broken
