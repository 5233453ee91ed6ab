"""The point-in-time read window of the news agent and the social analyst (ARCHITECTURE §4), in one place.

A story or a post is known for a symbol from ``greatest(first_seen_at, first_known_at)``: its first sighting, or the
later sighting that first linked it to the symbol, so a tag added by a later sighting never reaches a decision before
that sighting. A decision at ``as_of`` reads what was known in ``(as_of - window, as_of]``, and nothing first seen
after ``as_of``.

- ``read_known_by_symbol`` reads that window for many symbols in one query. A link is never known before its item (the
  item's first sighting is the earliest of all, the link's the earliest of those carrying it), so the window is a
  range on ``(symbol, first_known_at)``, which is indexed. Each row's ``known_at`` is its time for that symbol.
- ``known_in_window`` (pure) is the same rule on items already read, each dated by its time for the symbol (the replay
  cursor loads a whole backtest's window once and takes, at each step, what is known then).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Row, TextClause, text

from alphaloom.domain import require_utc


@dataclass(frozen=True, slots=True)
class KnownFeed:
    """A kind of feed item as read: its table, its symbol links (``key`` names the item there), and the ``columns``
    read besides the symbol and ``known_at``."""

    items: str
    links: str
    key: str
    columns: tuple[str, ...]


class Dated(Protocol):
    @property
    def first_seen_at(self) -> datetime: ...


Item = TypeVar("Item")
DatedItem = TypeVar("DatedItem", bound=Dated)


def read_known_by_symbol(
    conn: Connection,
    feed: KnownFeed,
    symbols: Sequence[str],
    as_of: datetime,
    window: timedelta,
    build: Callable[[Row[Any]], Item],
) -> dict[str, list[Item]]:
    """The items known for each of ``symbols`` in ``(as_of - window, as_of]``, oldest first (ties by id), each row
    (``symbol``, the ``columns``, ``known_at``) made an item by ``build``; every symbol asked has a list."""
    as_of = require_utc(as_of, "as_of")
    found: dict[str, list[Item]] = {symbol: [] for symbol in symbols}
    if not symbols:
        return found
    rows = conn.execute(_window_sql(feed), {"symbols": list(symbols), "as_of": as_of, "since": as_of - window})
    for row in rows:
        found[row.symbol].append(build(row))
    return found


def known_in_window(items: Sequence[DatedItem], as_of: datetime, window: timedelta) -> list[DatedItem]:
    """The ``items`` (each dated by its time for the symbol) known in ``(as_of - window, as_of]``, order kept."""
    return [item for item in items if as_of - window < item.first_seen_at <= as_of]


@lru_cache
def _window_sql(feed: KnownFeed) -> TextClause:
    # The names are the tables' own (``KnownFeed`` constants in agents.news and agents.social), never input.
    columns = ", ".join(f"i.{column}" for column in feed.columns)
    return text(
        f"""select s.symbol, {columns}, greatest(i.first_seen_at, s.first_known_at) as known_at
            from {feed.items} i join {feed.links} s on s.{feed.key} = i.id
            where s.symbol = any(:symbols) and s.first_known_at > :since and s.first_known_at <= :as_of
              and i.first_seen_at <= :as_of
            order by s.symbol, known_at, i.id"""
    )
