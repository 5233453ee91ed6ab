"""Many rows into PostgreSQL with ``COPY ... FROM STDIN`` (psycopg 3's ``cursor.copy``), and out of it in the
driver's binary format, on the caller's SQLAlchemy connection, so the rows are part of the caller's transaction.

- ``copy_rows``: rows (tuples in ``columns`` order) into a table; values are adapted by psycopg as in a statement
  (``None`` is NULL; a JSON column takes the JSON text). ``binary=True`` sends them in ``COPY``'s binary format,
  each column in the type the table gives it (read from the catalog once per table and columns): about a third of
  the client's time per row of the text format, and the server parses no numbers or timestamps. A value must then be
  of its column's Python type (``str`` for text and JSON, ``datetime`` for a timestamp, ``int``/``float``/``Decimal``
  for a number; a ``numeric`` column also takes a ``float``, an ``int`` or a numeric string, as the text format would).
- ``create_staging``: session-local temporary tables with the given columns of target tables (their types, no
  constraints) plus columns of the caller's (an ordinal ``n``), created once per database session, for ``COPY`` then
  ``INSERT ... SELECT ... ON CONFLICT``: ``COPY`` itself cannot skip rows that already exist.
- ``relaxed_bulk_write``: settings for the rest of the caller's transaction that make a bulk write of rows one can
  afford to lose in a server crash cheaper (the caller says why it may): no wait for the commit's WAL flush, and
  the faster LZ4 compression of large values (a decision's inputs) where the server has it.
- ``fetch_binary``: every row of a query, read in the driver's binary format (parsing floats, numbers and times
  from text is most of a large fetch's time); each column comes as the Python type and value the text format gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types.numeric import NumericBinaryDumper
from sqlalchemy import Connection

if TYPE_CHECKING:
    import psycopg

JSON_OID, JSONB_OID, NUMERIC_OID = 114, 3802, 1700  # fixed oids of PostgreSQL's built-in types


class _JsonTextBinary(Dumper):
    """A ``json`` column's value, given as its JSON text, in the binary format (the text itself)."""

    format = Format.BINARY
    oid = JSON_OID

    def dump(self, obj: Any) -> bytes:
        return cast(str, obj).encode()


class _JsonbTextBinary(Dumper):
    """A ``jsonb`` column's value, given as its JSON text, in the binary format (version 1, then the text)."""

    format = Format.BINARY
    oid = JSONB_OID

    def dump(self, obj: Any) -> bytes:
        return b"\x01" + cast(str, obj).encode()


class _NumericBinary(NumericBinaryDumper):
    """A ``numeric`` column's value: a ``float``, ``int`` or numeric string as its text (``repr``) would be read."""

    def dump(self, obj: Any) -> Any:
        return super().dump(obj if isinstance(obj, Decimal) else Decimal(str(obj)))


_column_oids: dict[tuple[str, str, tuple[str, ...]], list[int]] = {}


def column_oids(conn: Connection, table: str, columns: Sequence[str]) -> list[int]:
    """The type oids of ``table``'s ``columns``, in order, read once per database, table and columns (a column
    keeps its type: no migration changes one while a process writes)."""
    key = (conn.engine.url.render_as_string(), table, tuple(columns))
    if key not in _column_oids:
        found: dict[str, int] = {
            r[0]: int(r[1])
            for r in conn.exec_driver_sql(
                "select attname, atttypid from pg_attribute where attrelid = cast(%(t)s as regclass)"
                " and attnum > 0 and not attisdropped",
                {"t": table},
            )
        }
        missing = [c for c in columns if c not in found]
        if missing:
            raise ValueError(f"{table} has no column {', '.join(missing)}")
        _column_oids[key] = [found[c] for c in columns]
    return _column_oids[key]


def copy_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, binary: bool = False
) -> None:
    """``COPY table (columns) FROM STDIN`` with ``rows``, on ``conn``'s transaction (``binary``: see the module
    docstring)."""
    oids = column_oids(conn, table, columns) if binary else None
    # The engines are built on the psycopg 3 driver, and a connection in use is checked out: never None here.
    dbapi = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
    sql = f"copy {table} ({', '.join(columns)}) from stdin" + (" (format binary)" if binary else "")
    with dbapi.cursor() as cur:
        if oids is not None:
            for dumper in (_JsonTextBinary, _JsonbTextBinary, _NumericBinary):
                cur.adapters.register_dumper(None, dumper)  # by oid only: this cursor's COPY, after set_types
        with cur.copy(sql) as copy:
            if oids is not None:
                copy.set_types(oids)
            write = copy.write_row
            for row in rows:
                write(row)


def relaxed_bulk_write(conn: Connection) -> None:
    """For the rest of ``conn``'s transaction: commit without waiting for the WAL flush (``synchronous_commit``
    off: a server crash right after the commit may lose this transaction, and every later one with it, never a
    part of it nor an earlier one), and compress large values with LZ4 when the server was built with it (the same
    values read back, written in about half the time of the default pglz). One round trip."""
    conn.exec_driver_sql(
        "select set_config('synchronous_commit', 'off', true),"
        " set_config('default_toast_compression', (select case when 'lz4' = any(enumvals) then 'lz4' else setting end"
        " from pg_settings where name = 'default_toast_compression'), true)"
    )


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


def fetch_binary(conn: Connection, sql: str, params: Mapping[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The column names and every row of ``sql`` (the driver's placeholders, ``%(name)s``) on ``conn``'s transaction,
    read in the binary format (see the module docstring)."""
    dbapi = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
    with dbapi.cursor(binary=True) as cur:
        cur.execute(sql, params)
        return [c.name for c in cur.description or ()], cur.fetchall()
