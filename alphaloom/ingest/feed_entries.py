"""A feed document read into entries: the identity, date, markup and symbol rules shared by news and social feeds.

``read_entries`` reads one RSS/Atom document (``read_source_entries`` a file, or a URL feedparser fetches): each good
entry becomes a ``NewsItem`` (a social post is built on it, ``alphaloom.ingest.social_source``), kept beside its
feedparser entry; a feed that cannot be read or parsed, and an entry without a title, a parseable date or any identity
(link or guid), become ``Rejected`` rows naming the source and the item, while the other entries still load. It never
raises for bad input.

Point in time (ARCHITECTURE §4): a live fetch sets ``first_seen_at`` to the fetch time; a file or backfill has no fetch
time in the past, so ``first_seen_at = published_at + assumed_latency`` and ``first_seen_assumed`` is true (which copy
wins when one item is seen several times: ``alphaloom.ingest.feed_store``).

Dates: a story must be dated within ``[EARLIEST_PUBLISHED, clock + MAX_LEAD]``, where the clock is the fetch time of a
URL feed or, for a file, its modification time capped at the ingest time (a file cannot hold a story written after
it was last written); outliers are quarantined. An undated entry of a URL feed is kept, with ``published_at`` = the
fetch time and ``published_unknown`` set (the fetch time is a true first-seen time); an undated entry of a file is
rejected, as nothing in a file says when it was first seen.

Identity: ``id = stable_hash(canonical_url(link))``; for an entry without a link, a guid that is an http(s) URL is taken
as that URL (a permalink names the story wherever it appears), any other guid is unique within its feed only, so the
id is ``stable_hash(feed + guid)``. A story syndicated to two feeds with different tracking parameters is one
``raw.news`` row with two sightings; two feeds numbering their stories from 1 keep two stories.

Hostile input: an entry holding a NUL byte (which PostgreSQL text cannot store) is rejected by itself; markup is
stripped by an HTML parser (text such as "P/E < 10 and yield > 5%" is text, not a tag); relative links of a fetched
feed are resolved against the feed's URL (after redirects).
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import feedparser

from alphaloom.domain import NewsId, NewsItem, require_utc, stable_hash
from alphaloom.ingest.quarantine import Rejected

_TRACKING_PARAMS = frozenset({"fbclid", "gclid"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Category terms that already look like one of our symbols (BASE/QUOTE) are taken as they are.
_SYMBOL_TERM = re.compile(r"^[A-Z0-9][A-Z0-9.\-]*/[A-Z0-9]+$")
# The sanity window for story dates (see the module docstring). The lead is the one the news quality suite allows.
MAX_LEAD = timedelta(hours=24)
# RSS dates from 1999; a story "published" before the web carried news is a broken or defaulted date (often 1970).
EARLIEST_PUBLISHED = datetime(1995, 1, 1, tzinfo=UTC)
_NUL = "\x00"
_PAYLOAD_CHARS = 2000
_NON_WORD = re.compile(r"[^\w]+")


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


def news_id(url: str | None, guid: str | None, feed: str | None = None) -> NewsId:
    """``stable_hash`` of the canonical URL; else of the guid's canonical URL when the guid is an http(s) URL (a
    permalink); else of ``feed`` and the guid (a guid is unique within its feed only; without ``feed``, the guid
    alone). ``ValueError`` when there is neither link nor guid."""
    if url and url.strip():
        return NewsId(stable_hash(canonical_url(url)))
    if guid and guid.strip():
        guid = guid.strip()
        if _is_permalink(guid):
            return NewsId(stable_hash(canonical_url(guid)))
        return NewsId(stable_hash(f"{feed}\n{guid}" if feed else guid))
    raise ValueError("no link or guid to identify the story")


def _is_permalink(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme.lower() in {"http", "https"} and bool(parts.hostname)


def source_name(source: str | Path) -> str:
    """How sightings name a feed: a local file by its file name (so the same feed read from another folder is the same
    source), a URL by itself without its query string and fragment."""
    if _is_url(str(source)):
        parts = urlsplit(str(source))
        return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, "", ""))
    return Path(source).name


def normalised_title(title: str) -> str:
    """Lowercase words of a title without punctuation: the third identity (after guid and canonical URL) that
    recognises one story syndicated under different links."""
    return " ".join(_NON_WORD.sub(" ", title.lower()).split())


@dataclass(frozen=True, slots=True)
class FeedEntries:
    """One feed document read: each good feedparser entry with the item it makes, what was rejected (with reasons),
    and feedparser's complaint about a malformed document whose entries could still be read."""

    entries: list[tuple[Any, NewsItem]]
    rejected: list[Rejected]
    bozo: str | None = None


def read_entries(
    document: bytes | str,
    *,
    source: str,
    name: str,
    fetched_at: datetime | None,
    assumed_latency: timedelta,
    aliases: Mapping[str, str] | None = None,
    base_url: str | None = None,
    clock: datetime | None = None,
    feed_word: str = "RSS/Atom feed",
    evidence: bool = True,
) -> FeedEntries:
    """Read a feed document already fetched (``alphaloom.ingest.feeds`` does the HTTP).

    ``fetched_at=None`` (files, backfills) assumes each item was first seen ``assumed_latency`` after publication;
    otherwise ``fetched_at`` is the first-seen time. Symbols come from category terms that look like ``BASE/QUOTE``
    and, through ``aliases`` (alias -> symbol, case-insensitive), from category terms and whole words of the title.
    ``name`` is the feed's name in identities (``source_name``); ``source`` what rejections name. ``base_url`` (the
    URL the document came from) resolves relative links. ``clock`` is the latest time an item may honestly be dated
    by (plus ``MAX_LEAD``): the fetch time when ``fetched_at`` is given, else ``clock``, else now. A rejected feed is
    "not a readable ``feed_word``"; with ``evidence`` a rejection carries the start of the document or the entry's
    fields, and an entry's location names its guid or link.
    """
    if fetched_at is not None:
        fetched_at = require_utc(fetched_at, "fetched_at")
    latest = (fetched_at or (require_utc(clock, "clock") if clock is not None else datetime.now(UTC))) + MAX_LEAD
    if not document.strip():
        return FeedEntries([], [Rejected(source, "feed", "", f"{source} is empty (no feed document)")])
    parsed = feedparser.parse(document)
    if not parsed.entries and (parsed.bozo or not parsed.get("version")):
        problem = _printable(str(parsed.get("bozo_exception") or "no feed elements found"))
        reason = f"{source} is not a readable {feed_word}: {problem}"
        return FeedEntries([], [Rejected(source, "feed", _snippet(document) if evidence else "", reason)])
    matcher = _SymbolMatcher(aliases or {})
    entries: list[tuple[Any, NewsItem]] = []
    rejected: list[Rejected] = []
    for index, entry in enumerate(parsed.entries, start=1):
        try:
            item = _item(entry, matcher, fetched_at, assumed_latency, feed=name, latest=latest, base=base_url)
        except ValueError as exc:
            location = f"item {index} ({_entry_ref(entry)})" if evidence else f"item {index}"
            payload = _entry_payload(entry) if evidence else ""
            rejected.append(Rejected(source, location, payload, f"{source} {location}: {exc}"))
            continue
        entries.append((entry, item))
    bozo = f"malformed feed: {_printable(str(parsed.get('bozo_exception')))}" if parsed.bozo else None
    return FeedEntries(entries, rejected, bozo)


def read_source_entries(
    source: str | Path,
    *,
    name: str,
    fetched_at: datetime | None,
    assumed_latency: timedelta,
    aliases: Mapping[str, str] | None = None,
    feed_word: str = "RSS/Atom feed",
    evidence: bool = True,
) -> FeedEntries:
    """``read_entries`` of a feed file (or of a URL, which feedparser fetches); a file that cannot be read is one
    rejection. A file's clock is its modification time (``_file_clock``)."""
    document, problem = _read(source)
    if problem is not None:
        return FeedEntries([], [Rejected(str(source), "feed", "", problem)])
    return read_entries(document, source=str(source), name=name, fetched_at=fetched_at, assumed_latency=assumed_latency,
                        aliases=aliases, clock=_file_clock(source) if fetched_at is None else None,
                        feed_word=feed_word, evidence=evidence)  # fmt: skip


# --- entries ------------------------------------------------------------------------------------------------------


def _is_url(source: str) -> bool:
    return urlsplit(source).scheme.lower() in {"http", "https", "file"}


def _file_clock(source: str | Path) -> datetime | None:
    """A feed file's own time: its modification time, capped at now (a clock-skewed copy can be stamped ahead)."""
    if isinstance(source, str) and _is_url(source):
        return None
    now = datetime.now(UTC)
    try:
        return min(datetime.fromtimestamp(Path(source).stat().st_mtime, UTC), now)
    except OSError:
        return now


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
        return _printable(document[:_PAYLOAD_CHARS].decode("utf-8", errors="replace"))
    return _printable(document[:_PAYLOAD_CHARS])


def _printable(value: str) -> str:
    """``value`` with NUL bytes spelled out, so a quarantine row or failure reason can be stored and read."""
    return value.replace(_NUL, "\\x00")


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


def entry_field(entry: Any, key: str) -> Any:
    # Plain dict access: feedparser's own ``get`` maps a missing ``updated`` to ``published`` with a DeprecationWarning.
    return dict.get(entry, key)


def _http_link(entry: Any, base: str | None = None) -> str | None:
    """The entry's web link; RSS guids without ``isPermaLink="false"`` also land in ``link``, and a ``urn:`` is no URL.
    A relative link (no scheme) is resolved against ``base``, the URL the feed was fetched from (feedparser already
    applied any ``xml:base`` of the document); without a base it names nothing."""
    link = (entry_field(entry, "link") or "").strip()
    if link and base and not urlsplit(link).scheme:
        link = urljoin(base, link)
    return link if urlsplit(link).scheme.lower() in {"http", "https"} else None


def _item(
    entry: Any,
    matcher: _SymbolMatcher,
    fetched_at: datetime | None,
    latency: timedelta,
    *,
    feed: str,
    latest: datetime,
    base: str | None = None,
) -> NewsItem:
    """One entry as a ``NewsItem``; ``ValueError`` says why it cannot be one."""
    if any(_NUL in str(entry_field(entry, k) or "") for k in ("title", "summary", "link", "id")) or any(
        _NUL in (t.get("term") or "") for t in entry_field(entry, "tags") or []
    ):
        raise ValueError("entry contains a NUL byte, which cannot be stored as text")
    title = plain_text(entry_field(entry, "title"))
    if not title:
        raise ValueError("entry has no title")
    published = _entry_time(entry)
    if published is None and fetched_at is None:
        raise ValueError("entry has no parseable date (published or updated)")
    if published is not None and not EARLIEST_PUBLISHED <= published <= latest:
        raise ValueError(
            f"entry date {published.isoformat()} is outside the sane window "
            f"[{EARLIEST_PUBLISHED.date().isoformat()}, {latest.isoformat()}] of its feed's time"
        )
    link = _http_link(entry, base)
    guid = (entry_field(entry, "id") or "").strip() or None
    terms = [t.get("term") or "" for t in entry_field(entry, "tags") or []]
    return NewsItem(
        id=news_id(link, guid, feed),
        url=canonical_url(link) if link else (canonical_url(guid) if guid and _is_permalink(guid) else None),
        title=title,
        summary=plain_text(entry_field(entry, "summary")),
        published_at=published if published is not None else fetched_at,
        first_seen_at=fetched_at if fetched_at is not None else published + latency,
        first_seen_assumed=fetched_at is None,
        symbols=matcher.symbols(terms, title),
        published_unknown=published is None,
    )


class _TextOnly(HTMLParser):
    """Collects the text of an HTML fragment: tags become word breaks, script and style content is dropped, character
    references are decoded; a ``<`` that starts no tag (``P/E < 10``) stays text."""

    _HIDDEN = frozenset({"script", "style"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._hidden += tag in self._HIDDEN
        self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN and self._hidden:
            self._hidden -= 1
        self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def plain_text(value: object) -> str:
    """Text without markup: feed summaries are often HTML, and sentiment scoring wants words."""
    if not isinstance(value, str):
        return ""
    parser = _TextOnly()
    parser.feed(value)
    parser.close()
    return " ".join("".join(parser.parts).split())


def _entry_time(entry: Any) -> datetime | None:
    # feedparser normalises any date format it understands to a UTC struct_time.
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry_field(entry, key)
        if value:
            return datetime.fromtimestamp(calendar.timegm(value), UTC)
    return None


def _entry_ref(entry: Any) -> str:
    if entry_field(entry, "id"):
        return _printable(f"guid {entry_field(entry, 'id')}")
    if entry_field(entry, "link"):
        return _printable(f"link {entry_field(entry, 'link')}")
    return "no guid or link"


def _entry_payload(entry: Any) -> str:
    keys = ("id", "link", "title", "published", "updated", "summary")
    fields = {k: entry_field(entry, k) for k in keys if entry_field(entry, k)}
    return json.dumps(fields, ensure_ascii=False, default=str)[:_PAYLOAD_CHARS]
