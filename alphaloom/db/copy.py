"""Many rows into PostgreSQL with ``COPY ... FROM STDIN`` (psycopg 3's ``cursor.copy``) on the caller's SQLAlchemy
connection, so the rows are part of the caller's transaction.

- ``copy_rows``: rows (tuples in ``columns`` order) into a table; values are adapted by psycopg as in a statement
  (``None`` is NULL; a JSON column takes the JSON text).
- ``create_staging``: session-local temporary tables with the given columns of target tables (their types, no
  constraints) plus columns of the caller's (an ordinal ``n``), created once per database session, for ``COPY`` then ``INSERT ... SELECT ...
  ON CONFLICT``: ``COPY`` itself cannot skip rows that already exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection

if TYPE_CHECKING:
    import psycopg


def copy_rows(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """``COPY table (columns) FROM STDIN`` with ``rows``, on ``conn``'s transaction."""
    # The engines are built on the psycopg 3 driver, and a connection in use is checked out: never None here.
    dbapi = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
    with dbapi.cursor() as cur, cur.copy(f"copy {table} ({', '.join(columns)}) from stdin") as copy:
        for row in rows:
            copy.write_row(row)


def create_staging(
    conn: Connection, tables: Sequence[tuple[str, str, Sequence[str]]], prefix: str = "0::bigint as n"
) -> None:
    """Each ``(name, target, columns)``: the temporary table ``pg_temp.name`` with the ``prefix`` columns (a select
    list: by default an ordinal ``n bigint``) and ``target``'s ``columns``, created when this database session has
    none yet (all in one round trip). It holds rows only as long as the caller leaves them there."""
    if tables:
        conn.exec_driver_sql(
            "; ".join(
                f"create temp table if not exists {name} as select {prefix}, {', '.join(columns)}"
                f" from {target} with no data"
                for name, target, columns in tables
            )
        )
