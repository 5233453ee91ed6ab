"""First-seen bookkeeping and the idempotent merge shared by news stories and social posts.

A story (``raw.news``) and a post (``raw.social_posts``) are stored the same way, each in three tables that a
``FeedTables`` names: one row per item id, one sighting per (item, feed source), one link per (item, symbol).

- ``first_sightings`` (pure) reads a batch of parsed feeds: the earliest copy of each item, when each feed first
  showed it, and when each symbol was first linked to it.
- ``merge_first_sightings`` writes that into the tables within the caller's transaction. An existing row only ever
  moves its ``first_seen_at`` (with ``first_seen_assumed``) earlier, never later; a copy in another feed (a
  cross-post, a syndicated story) adds a sighting, not a row; a link's ``first_known_at`` also only moves earlier.
  Running it again adds nothing.

These times are the point-in-time rule's (ARCHITECTURE §4): a reader at ``as_of`` takes an item for a symbol from
``greatest(first_seen_at, first_known_at)`` (``agents/feed_window.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Generic, Protocol, TypeVar

from sqlalchemy import Connection, TextClause, text


class FeedItem(Protocol):
    """What the bookkeeping reads of a story or a post."""

    @property
    def id(self) -> str: ...
    @property
    def first_seen_at(self) -> datetime: ...
    @property
    def symbols(self) -> tuple[str, ...]: ...


Item = TypeVar("Item", bound=FeedItem)


@dataclass(frozen=True, slots=True)
class FeedTables:
    """Where one kind of feed item is stored. ``columns``: the item table's columns, ``(name, SQL type)``, each read
    from the item's attribute of the same name (``id``, ``first_seen_at`` and ``first_seen_assumed`` among them);
    ``key``: the column naming the item in the sightings and symbols tables."""

    items: str
    sightings: str
    symbols: str
    key: str
    columns: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class FirstSightings(Generic[Item]):
    """What a batch says: the earliest copy of each item, ``(item, source)`` -> first seen in that feed,
    ``(item, symbol)`` -> first linked, and how many copies were read."""

    earliest: dict[str, Item]
    seen: dict[tuple[str, str], datetime]
    known: dict[tuple[str, str], datetime]
    copies: int


@dataclass(frozen=True, slots=True)
class MergeCounts:
    """New item rows, copies that added none (stored already, or a second copy in the batch), new sightings and
    symbol links."""

    new: int
    duplicates: int
    sightings_added: int
    symbols_added: int


def _earlier_copy(earlier: Item, kept: Item) -> Item:
    return earlier


def first_sightings(
    feeds: Iterable[tuple[str, Iterable[Item]]], earlier_copy: Callable[[Item, Item], Item] = _earlier_copy
) -> FirstSightings[Item]:
    """The first sightings in ``feeds`` of ``(source, items)``. A copy seen earlier than the one kept replaces it as
    ``earlier_copy(earlier, kept)`` says (by default: the earlier copy as it is)."""
    earliest: dict[str, Item] = {}
    seen: dict[tuple[str, str], datetime] = {}
    known: dict[tuple[str, str], datetime] = {}
    copies = 0
    for source, items in feeds:
        for item in items:
            copies += 1
            kept = earliest.get(item.id)
            if kept is None:
                earliest[item.id] = item
            elif item.first_seen_at < kept.first_seen_at:
                earliest[item.id] = earlier_copy(item, kept)
            _keep_earliest(seen, (item.id, source), item.first_seen_at)
            for symbol in item.symbols:
                _keep_earliest(known, (item.id, symbol), item.first_seen_at)
    return FirstSightings(earliest, seen, known, copies)


def _keep_earliest(times: dict[tuple[str, str], datetime], key: tuple[str, str], at: datetime) -> None:
    times[key] = min(times.get(key, at), at)


def merge_first_sightings(
    conn: Connection, run_id: str, tables: FeedTables, batch: FirstSightings[Item]
) -> MergeCounts:
    """Merge ``batch`` into ``tables`` in the caller's transaction (see the module docstring); the run must exist in
    ``audit.runs``. One statement per table, rows in id order (a fixed order keeps concurrent merges from
    deadlocking)."""
    new = _merge_items(conn, run_id, tables, batch.earliest)
    return MergeCounts(
        new=new,
        duplicates=batch.copies - new,
        sightings_added=_merge_sightings(conn, run_id, tables, batch.seen),
        symbols_added=_merge_symbols(conn, tables, batch.known),
    )


def _merge_items(conn: Connection, run_id: str, tables: FeedTables, earliest: Mapping[str, FeedItem]) -> int:
    rows = [earliest[key] for key in sorted(earliest)]
    if not rows:
        return 0
    params = {name: [getattr(row, name) for row in rows] for name, _ in tables.columns}
    return sum(1 for (inserted,) in conn.execute(_items_sql(tables), {**params, "run_id": run_id}) if inserted)


def _merge_sightings(
    conn: Connection, run_id: str, tables: FeedTables, seen: Mapping[tuple[str, str], datetime]
) -> int:
    keys = sorted(seen)
    if not keys:
        return 0
    params = {"run_id": run_id, "ids": [k[0] for k in keys], "sources": [k[1] for k in keys]}
    return len(conn.execute(_sightings_sql(tables), {**params, "seen": [seen[k] for k in keys]}).all())


def _merge_symbols(conn: Connection, tables: FeedTables, known: Mapping[tuple[str, str], datetime]) -> int:
    pairs = sorted(known)
    if not pairs:
        return 0
    params = {"ids": [p[0] for p in pairs], "symbols": [p[1] for p in pairs], "known": [known[p] for p in pairs]}
    return sum(1 for (inserted,) in conn.execute(_symbols_sql(tables), params) if inserted)


# --- the statements -------------------------------------------------------------------------------------------------
# Array parameters: a single round trip however many rows, and the ON CONFLICT clauses make the merge idempotent.
# ``xmax = 0`` tells an inserted row from one updated by the conflict clause. The names in them are the tables' own
# (``FeedTables`` constants in news_source and social_source), never input.


@lru_cache
def _items_sql(tables: FeedTables) -> TextClause:
    names = ", ".join(name for name, _ in tables.columns)
    arrays = ", ".join(f"cast(:{name} as {kind}[])" for name, kind in tables.columns)
    return text(
        f"""
        insert into {tables.items} ({names}, run_id)
        select {names}, :run_id from unnest({arrays}) as t({names})
        on conflict (id) do update
           set first_seen_at = excluded.first_seen_at, first_seen_assumed = excluded.first_seen_assumed
         where excluded.first_seen_at < {tables.items}.first_seen_at
        returning (xmax = 0) as inserted
        """
    )


@lru_cache
def _sightings_sql(tables: FeedTables) -> TextClause:
    return text(
        f"""
        insert into {tables.sightings} ({tables.key}, source, seen_at, run_id)
        select {tables.key}, source, seen_at, :run_id
        from unnest(cast(:ids as text[]), cast(:sources as text[]), cast(:seen as timestamptz[]))
             as t({tables.key}, source, seen_at)
        on conflict ({tables.key}, source) do nothing
        returning 1
        """
    )


@lru_cache
def _symbols_sql(tables: FeedTables) -> TextClause:
    return text(
        f"""
        insert into {tables.symbols} ({tables.key}, symbol, first_known_at)
        select {tables.key}, symbol, first_known_at
        from unnest(cast(:ids as text[]), cast(:symbols as text[]), cast(:known as timestamptz[]))
             as t({tables.key}, symbol, first_known_at)
        on conflict ({tables.key}, symbol) do update set first_known_at = excluded.first_known_at
         where excluded.first_known_at < {tables.symbols}.first_known_at
        returning (xmax = 0) as inserted
        """
    )
