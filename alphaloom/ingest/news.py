"""News source: RSS/Atom feeds (files or URLs) parsed into ``NewsItem``s and merged into ``raw.news``.

Two steps, so the parsing can be tested without a database and a flow can parse many feeds before one transaction:

- ``parse_feed(source, fetched_at=..., assumed_latency=...)`` reads one feed. Good entries become ``NewsItem``s;
  a feed that cannot be read or parsed, and an entry without a title, a parseable date or any identity (link or guid),
  become ``Rejected`` rows naming the source and the item, while the other entries still load.
- ``store_news(conn, run_id, feeds)`` merges parsed feeds into ``raw.news``, ``raw.news_sightings``,
  ``raw.news_symbols`` and ``raw.quarantine``; it is idempotent and never commits (the caller owns the transaction).

Point in time (DESIGN §4): a live fetch sets ``first_seen_at`` to the fetch time; a file or backfill has no fetch time in
the past, so ``first_seen_at = published_at + assumed_latency`` and ``first_seen_assumed`` is true. When one story is
seen several times the earliest ``first_seen_at`` wins, together with its ``first_seen_assumed`` flag.

Identity: ``id = stable_hash(canonical_url(link))``, or ``stable_hash(guid)`` for an entry without a link, so a story
syndicated to two feeds with different tracking parameters is one ``raw.news`` row with two sightings.
"""

from __future__ import annotations

import calendar
import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import feedparser
from sqlalchemy import Connection, text

from alphaloom.domain import NewsId, NewsItem, require_utc, stable_hash
from alphaloom.ingest.quarantine import Rejected, quarantine

_TRACKING_PARAMS = frozenset({"fbclid", "gclid"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Category terms that already look like one of our symbols (BASE/QUOTE) are taken as they are.
_SYMBOL_TERM = re.compile(r"^[A-Z0-9][A-Z0-9.\-]*/[A-Z0-9]+$")
_TAG = re.compile(r"<[^>]+>")
_PAYLOAD_CHARS = 2000
_NON_WORD = re.compile(r"[^\w]+")
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


def canonical_url(url: str) -> str:
    """The URL a story is identified by: lowercase scheme and host, default port dropped, ``utm_*``/``fbclid``/``gclid``
    query parameters and the fragment removed, remaining parameters sorted, trailing slash stripped."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{parts.port}"
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        host = f"{userinfo}@{host}"
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not (k.lower().startswith("utm_") or k.lower() in _TRACKING_PARAMS)
    )
    return urlunsplit((scheme, host, parts.path.rstrip("/"), urlencode(query), ""))


def news_id(url: str | None, guid: str | None) -> NewsId:
    """``stable_hash`` of the canonical URL, else of the guid; ``ValueError`` when there is neither."""
    if url and url.strip():
        return NewsId(stable_hash(canonical_url(url)))
    if guid and guid.strip():
        return NewsId(stable_hash(guid.strip()))
    raise ValueError("no link or guid to identify the story")


def source_name(source: str | Path) -> str:
    """How sightings name a feed: a local file by its file name (so the same feed read from another folder is the same
    source), a URL by itself without its query string and fragment."""
    if _is_url(str(source)):
        parts = urlsplit(str(source))
        return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, "", ""))
    return Path(source).name


def parse_feed(
    source: str | Path,
    *,
    fetched_at: datetime | None,
    assumed_latency: timedelta,
    aliases: Mapping[str, str] | None = None,
    name: str | None = None,
) -> ParsedFeed:
    """Parse one RSS/Atom feed from a file path or URL.

    ``fetched_at=None`` (files, backfills) assumes each story was first seen ``assumed_latency`` after publication;
    otherwise ``fetched_at`` is the first-seen time. Symbols come from category terms that look like ``BASE/QUOTE``
    and, through ``aliases`` (alias -> symbol, case-insensitive), from category terms and whole words of the title.
    ``name`` overrides ``source_name(source)``. Never raises for bad input: problems come back in ``rejected``.
    """
    label = name or source_name(source)
    document, problem = _read(source)
    if problem is not None:
        return ParsedFeed([], label, [Rejected(str(source), "feed", "", problem)])
    return parse_document(document, source=str(source), name=label, fetched_at=fetched_at,
                          assumed_latency=assumed_latency, aliases=aliases)  # fmt: skip


def parse_document(
    document: bytes | str,
    *,
    source: str,
    name: str,
    fetched_at: datetime | None,
    assumed_latency: timedelta,
    aliases: Mapping[str, str] | None = None,
) -> ParsedFeed:
    """Parse a feed document already fetched (``alphaloom.ingest.feeds`` does the HTTP); same rules as ``parse_feed``.

    ``ParsedFeed.bozo`` carries feedparser's complaint about a malformed document whose entries could still be read.
    """
    where, label = source, name
    if fetched_at is not None:
        fetched_at = require_utc(fetched_at, "fetched_at")
    parsed = feedparser.parse(document)
    if not parsed.entries and (parsed.bozo or not parsed.version):
        reason = f"{where} is not a readable RSS/Atom feed: {parsed.get('bozo_exception') or 'no feed elements found'}"
        return ParsedFeed([], label, [Rejected(where, "feed", _snippet(document), reason)])
    matcher = _SymbolMatcher(aliases or {})
    items: list[NewsItem] = []
    rejected: list[Rejected] = []
    for index, entry in enumerate(parsed.entries, start=1):
        try:
            items.append(_item(entry, matcher, fetched_at, assumed_latency))
        except ValueError as exc:
            location = f"item {index} ({_entry_ref(entry)})"
            rejected.append(Rejected(where, location, _entry_payload(entry), f"{where} {location}: {exc}"))
    bozo = f"malformed feed: {parsed.get('bozo_exception')}" if parsed.bozo else None
    return ParsedFeed(items, label, rejected, bozo=bozo)


def store_news(conn: Connection, run_id: str, feeds: Sequence[ParsedFeed]) -> NewsIngestResult:
    """Merge parsed feeds into ``raw`` within the caller's transaction; running it again adds nothing.

    One row per story id in ``raw.news`` (an existing row only ever moves its ``first_seen_at`` earlier), one sighting
    per (story, feed source), one row per (story, symbol); rejected feeds and entries go to ``raw.quarantine``.
    The run must already exist in ``audit.runs``.
    """
    earliest: dict[str, NewsItem] = {}
    sightings: dict[tuple[str, str], datetime] = {}
    symbols: set[tuple[str, str]] = set()
    same_story = _title_aliases(conn, [i for f in feeds for i in f.items])
    for feed in feeds:
        for item in feed.items:
            if item.id in same_story:
                item = replace(item, id=same_story[item.id])
            kept = earliest.get(item.id)
            if kept is None or item.first_seen_at < kept.first_seen_at:
                earliest[item.id] = item
            key = (item.id, feed.source)
            sightings[key] = min(sightings.get(key, item.first_seen_at), item.first_seen_at)
            symbols.update((item.id, s) for s in item.symbols)
    total = sum(len(f.items) for f in feeds)
    new_items = _merge_news(conn, run_id, earliest.values())
    return NewsIngestResult(
        new_items=new_items,
        duplicate_items=total - new_items,
        sightings_added=_merge_sightings(conn, run_id, sightings),
        symbols_added=_merge_symbols(conn, symbols),
        quarantined=quarantine(conn, run_id, [r for f in feeds for r in f.rejected]),
    )


def normalised_title(title: str) -> str:
    """Lowercase words of a title without punctuation: the third identity (after guid and canonical URL) that
    recognises one story syndicated under different links."""
    return " ".join(_NON_WORD.sub(" ", title.lower()).split())


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


# --- parsing --------------------------------------------------------------------------------------------------------


def _is_url(source: str) -> bool:
    return urlsplit(source).scheme.lower() in {"http", "https", "file"}


def _read(source: str | Path) -> tuple[bytes | str, str | None]:
    """The feed document (bytes of a file; a URL for feedparser to fetch), or the reason it cannot be read."""
    if isinstance(source, str) and _is_url(source):
        return source, None
    path = Path(source)
    try:
        return path.read_bytes(), None
    except FileNotFoundError:
        return b"", f"feed file {path} does not exist"
    except OSError as exc:
        return b"", f"feed file {path} cannot be read: {exc}"


def _snippet(document: bytes | str) -> str:
    if isinstance(document, bytes):
        return document[:_PAYLOAD_CHARS].decode("utf-8", errors="replace")
    return document[:_PAYLOAD_CHARS]


class _SymbolMatcher:
    """Finds symbols in category terms (``BASE/QUOTE`` as is, or an alias) and in whole words of titles (aliases)."""

    def __init__(self, aliases: Mapping[str, str]) -> None:
        self._aliases = {alias.strip().lower(): symbol for alias, symbol in aliases.items() if alias.strip()}
        # Longest first so "bitcoin cash" wins over "bitcoin" when both are aliases.
        ordered = sorted(self._aliases, key=len, reverse=True)
        self._title = (
            re.compile(r"(?<!\w)(" + "|".join(re.escape(a) for a in ordered) + r")(?!\w)", re.I) if ordered else None
        )

    def symbols(self, terms: Iterable[str], title: str) -> tuple[str, ...]:
        found: set[str] = set()
        for term in terms:
            term = term.strip()
            if term.lower() in self._aliases:
                found.add(self._aliases[term.lower()])
            elif _SYMBOL_TERM.match(term.upper()):
                found.add(term.upper())
        if self._title is not None:
            found.update(self._aliases[m.lower()] for m in self._title.findall(title))
        return tuple(sorted(found))


def _field(entry: Any, key: str) -> Any:
    # Plain dict access: feedparser's own ``get`` maps a missing ``updated`` to ``published`` with a DeprecationWarning.
    return dict.get(entry, key)


def _http_link(entry: Any) -> str | None:
    """The entry's web link; RSS guids without ``isPermaLink="false"`` also land in ``link``, and a ``urn:`` is no URL."""
    link = (_field(entry, "link") or "").strip()
    return link if urlsplit(link).scheme.lower() in {"http", "https"} else None


def _item(entry: Any, matcher: _SymbolMatcher, fetched_at: datetime | None, latency: timedelta) -> NewsItem:
    """One entry as a ``NewsItem``; ``ValueError`` says why it cannot be one."""
    title = _plain(_field(entry, "title"))
    if not title:
        raise ValueError("entry has no title")
    published = _entry_time(entry)
    if published is None:
        raise ValueError("entry has no parseable date (published or updated)")
    link = _http_link(entry)
    guid = (_field(entry, "id") or "").strip() or None
    terms = [t.get("term") or "" for t in _field(entry, "tags") or []]
    return NewsItem(
        id=news_id(link, guid),
        url=canonical_url(link) if link else None,
        title=title,
        summary=_plain(_field(entry, "summary")),
        published_at=published,
        first_seen_at=fetched_at if fetched_at is not None else published + latency,
        first_seen_assumed=fetched_at is None,
        symbols=matcher.symbols(terms, title),
    )


def _plain(value: object) -> str:
    """Text without markup: feed summaries are often HTML, and sentiment scoring wants words."""
    if not isinstance(value, str):
        return ""
    return " ".join(html.unescape(_TAG.sub(" ", value)).split())


def _entry_time(entry: Any) -> datetime | None:
    # feedparser normalises any date format it understands to a UTC struct_time.
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = _field(entry, key)
        if value:
            return datetime.fromtimestamp(calendar.timegm(value), UTC)
    return None


def _entry_ref(entry: Any) -> str:
    if _field(entry, "id"):
        return f"guid {_field(entry, 'id')}"
    if _field(entry, "link"):
        return f"link {_field(entry, 'link')}"
    return "no guid or link"


def _entry_payload(entry: Any) -> str:
    keys = ("id", "link", "title", "published", "updated", "summary")
    fields = {k: _field(entry, k) for k in keys if _field(entry, k)}
    return json.dumps(fields, ensure_ascii=False, default=str)[:_PAYLOAD_CHARS]


# --- storing --------------------------------------------------------------------------------------------------------

# One statement per table with array parameters: a single round trip however many items, and the ON CONFLICT clauses
# make the merge idempotent. ``xmax = 0`` tells an inserted row from one updated by the conflict clause.
_MERGE_NEWS = text(
    """
    insert into raw.news (id, url, title, summary, published_at, first_seen_at, first_seen_assumed, run_id)
    select id, url, title, summary, published_at, first_seen_at, first_seen_assumed, :run_id
    from unnest(cast(:ids as text[]), cast(:urls as text[]), cast(:titles as text[]), cast(:summaries as text[]),
                cast(:published as timestamptz[]), cast(:first_seen as timestamptz[]), cast(:assumed as boolean[]))
         as t(id, url, title, summary, published_at, first_seen_at, first_seen_assumed)
    on conflict (id) do update
       set first_seen_at = excluded.first_seen_at, first_seen_assumed = excluded.first_seen_assumed
     where excluded.first_seen_at < raw.news.first_seen_at
    returning (xmax = 0) as inserted
    """
)
_MERGE_SIGHTINGS = text(
    """
    insert into raw.news_sightings (news_id, source, seen_at, run_id)
    select news_id, source, seen_at, :run_id
    from unnest(cast(:ids as text[]), cast(:sources as text[]), cast(:seen as timestamptz[])) as t(news_id, source, seen_at)
    on conflict (news_id, source) do nothing
    returning 1
    """
)
_MERGE_SYMBOLS = text(
    """
    insert into raw.news_symbols (news_id, symbol)
    select news_id, symbol from unnest(cast(:ids as text[]), cast(:symbols as text[])) as t(news_id, symbol)
    on conflict (news_id, symbol) do nothing
    returning 1
    """
)


def _merge_news(conn: Connection, run_id: str, items: Iterable[NewsItem]) -> int:
    rows = sorted(items, key=lambda i: i.id)  # a fixed order keeps concurrent merges from deadlocking
    if not rows:
        return 0
    result = conn.execute(
        _MERGE_NEWS,
        {
            "run_id": run_id,
            "ids": [i.id for i in rows],
            "urls": [i.url for i in rows],
            "titles": [i.title for i in rows],
            "summaries": [i.summary for i in rows],
            "published": [i.published_at for i in rows],
            "first_seen": [i.first_seen_at for i in rows],
            "assumed": [i.first_seen_assumed for i in rows],
        },
    )
    return sum(1 for (inserted,) in result if inserted)


def _merge_sightings(conn: Connection, run_id: str, sightings: Mapping[tuple[str, str], datetime]) -> int:
    keys = sorted(sightings)
    if not keys:
        return 0
    params = {"run_id": run_id, "ids": [k[0] for k in keys], "sources": [k[1] for k in keys]}
    return len(conn.execute(_MERGE_SIGHTINGS, {**params, "seen": [sightings[k] for k in keys]}).all())


def _merge_symbols(conn: Connection, symbols: Iterable[tuple[str, str]]) -> int:
    pairs = sorted(symbols)
    if not pairs:
        return 0
    return len(conn.execute(_MERGE_SYMBOLS, {"ids": [p[0] for p in pairs], "symbols": [p[1] for p in pairs]}).all())
