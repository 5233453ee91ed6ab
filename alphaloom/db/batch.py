"""Several rows, or several writes, in one SQL statement: one round trip instead of one per row.

- ``Statement`` names parameters uniquely (``%(p1)s``, ``%(p2)s``...) so parts can be glued into one statement, e.g.
  a multi-row ``VALUES`` list, or several data-modifying CTEs (``with a as (insert ...), b as (insert ...) update
  ...``). PostgreSQL runs each CTE exactly once and all parts see one snapshot, so no two parts may touch the same
  row (aggregate first). ``Statement.execute`` hands the SQL and values straight to the driver (no SQLAlchemy
  compilation of a hundred bind parameters per call), so the SQL around the placeholders must not contain ``%``.
- ``insert_rows``: ``INSERT INTO table (columns) VALUES (...), (...) [suffix]`` for a list of rows, in chunks that
  stay under the driver's parameter limit.
- ``insert_arrays``: the same rows in one statement of one array parameter per column, its text the same whatever
  the number of rows (the driver prepares it once; a few dozen rows cost the client less than as many ``VALUES``
  parameters), built by ``column_arrays`` (which a caller's own ``unnest`` statement may use too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, CursorResult, TextClause, text

# libpq allows 65535 parameters per statement; stay well below it.
MAX_PARAMETERS = 30000


@lru_cache(maxsize=512)
def cached_text(sql: str) -> TextClause:
    """``text(sql)``, built once per distinct SQL string: parsing a statement with many parameters costs more than
    sending it, and batched statements repeat (same shape, same text)."""
    return text(sql)


class Statement:
    """Accumulates bound parameters for one statement built from several parts."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        """A fresh placeholder (``%(p<n>)s``) bound to ``value``."""
        name = f"p{len(self.params) + 1}"
        self.params[name] = value
        return f"%({name})s"

    def execute(self, conn: Connection, sql: str) -> CursorResult[Any]:
        """Run ``sql`` (built with this statement's placeholders) with its values, on the caller's connection."""
        return conn.exec_driver_sql(sql, self.params)

    def values(self, rows: Sequence[Sequence[Any]], casts: Mapping[int, str] | None = None) -> str:
        """``(:p1, :p2), (:p3, :p4)`` for ``rows``; ``casts`` maps a column index to a SQL type (e.g. ``jsonb``)."""
        casts = casts or {}
        rendered = []
        for row in rows:
            cells = []
            for i, value in enumerate(row):
                placeholder = self.bind(value)
                cells.append(f"cast({placeholder} as {casts[i]})" if i in casts else placeholder)
            rendered.append("(" + ", ".join(cells) + ")")
        return ", ".join(rendered)


def insert_rows(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    casts: Mapping[int, str] | None = None,
    suffix: str = "",
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) with multi-row ``VALUES`` statements; ``suffix`` follows the
    values (e.g. ``on conflict (...) do nothing``). Nothing is sent for no rows."""
    if not rows:
        return
    per_statement = max(1, MAX_PARAMETERS // max(1, len(columns)))
    for start in range(0, len(rows), per_statement):
        st = Statement()
        values = st.values(rows[start : start + per_statement], casts)
        st.execute(conn, f"insert into {table} ({', '.join(columns)}) values {values} {suffix}")


def insert_arrays(
    conn: Connection, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]], *, suffix: str = ""
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order; a column is ``(name, SQL type)``) with one statement, in order:
    ``INSERT INTO table (...) SELECT * FROM unnest(one array per column) [suffix]`` (``column_arrays``). Nothing is
    sent for no rows."""
    if not rows:
        return
    conn.exec_driver_sql(_arrays_sql(table, tuple(columns), suffix), column_arrays("c", columns, rows))


def column_arrays(
    prefix: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
) -> dict[str, list[Any]]:
    """One array parameter per column of ``rows`` (tuples in ``columns`` order), named ``prefix`` and the column's
    number: each column's values, a ``double precision`` column's as floats (an array holds one type; an int is exact
    as a float, as the column stores it)."""
    return {
        f"{prefix}{i}": [None if row[i] is None else float(row[i]) for row in rows]
        if sql_type == "double precision"
        else [row[i] for row in rows]
        for i, (_, sql_type) in enumerate(columns)
    }


@lru_cache(maxsize=64)
def _arrays_sql(table: str, columns: tuple[tuple[str, str], ...], suffix: str) -> str:
    names = ", ".join(name for name, _ in columns)
    arrays = ", ".join(f"cast(%(c{i})s as {sql_type}[])" for i, (_, sql_type) in enumerate(columns))
    return f"insert into {table} ({names}) select * from unnest({arrays}) {suffix}"
