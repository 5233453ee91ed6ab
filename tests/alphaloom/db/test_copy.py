"""``alphaloom.db.copy.copy_rows`` writes every value as it is read back, in the text and the binary format, and
``relaxed_bulk_write`` changes settings only for the caller's transaction."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import text

from alphaloom.db.copy import column_oids, copy_rows, relaxed_bulk_write

COLUMNS = ("name", "note", "at", "price", "ratio", "count", "flag", "doc", "raw")
AWKWARD = 'tab\there, newline\nthere, cr\r, backslash \\ and \\N, quote " and café \u2013'
ROWS = [
    ("plain", "x", datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), Decimal("101.2500"), 0.125, 7, True,
     json.dumps({"a": [1, 2.5, None], "nested": {"text": AWKWARD}}), json.dumps({"k": "v"})),
    ("nulls", None, None, None, None, None, None, None, None),
    (AWKWARD, AWKWARD, datetime(1999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
     Decimal("-0.00000001"), -1e-300, -(2**31), False, json.dumps(AWKWARD), json.dumps([])),
    ("\\N", "", datetime(2026, 6, 1, tzinfo=UTC), Decimal("123456789012345678901234567890.123456789"), float("inf"),
     2**31 - 1, False, json.dumps({}), json.dumps(None)),
]  # fmt: skip


@pytest.fixture()
def conn(engine):
    with engine.connect() as conn:
        conn.execute(text("""create temp table copy_round_trip (name text not null, note text, at timestamptz,
                             price numeric, ratio double precision, count integer, flag boolean, doc jsonb, raw json)"""))  # fmt: skip
        yield conn
        conn.rollback()


def _read(conn) -> list[tuple]:
    rows = conn.execute(text(f"select {', '.join(COLUMNS)} from copy_round_trip order by name")).all()
    return [tuple(r) for r in rows]


def _expected() -> list[tuple]:
    """The rows as psycopg reads them: JSON parsed, the timestamps in UTC."""
    return sorted(
        (tuple(json.loads(v) if i >= 7 and v is not None else v for i, v in enumerate(row)) for row in ROWS),
        key=lambda r: r[0],
    )


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_every_value_comes_back_equal(conn, binary) -> None:
    copy_rows(conn, "copy_round_trip", COLUMNS, ROWS, binary=binary)
    assert _read(conn) == _expected()


def test_a_numeric_column_takes_floats_ints_and_numeric_text_in_binary_as_in_text(conn) -> None:
    values = [(f"{binary}-{i}", value) for binary in (False, True) for i, value in enumerate((0.1, 3, "2.50"))]
    for binary in (False, True):
        copy_rows(conn, "copy_round_trip", ("name", "price"), [r for r in values if r[0].startswith(str(binary))],
                  binary=binary)  # fmt: skip
    read = {name: price for name, price in conn.execute(text("select name, price from copy_round_trip"))}
    assert [read[f"True-{i}"] for i in range(3)] == [read[f"False-{i}"] for i in range(3)]
    assert [read[f"True-{i}"] for i in range(3)] == [Decimal("0.1"), Decimal(3), Decimal("2.50")]


def test_the_column_types_are_read_from_the_table_and_a_missing_column_is_named(conn) -> None:
    assert column_oids(conn, "copy_round_trip", ("doc", "raw", "price")) == [3802, 114, 1700]
    with pytest.raises(ValueError, match="copy_round_trip has no column nope"):
        column_oids(conn, "copy_round_trip", ("name", "nope"))


def test_relaxed_settings_last_only_for_the_transaction(engine) -> None:
    with engine.connect() as conn:
        before = conn.execute(text("select current_setting('synchronous_commit')")).scalar_one()
        conn.commit()
        with conn.begin():
            relaxed_bulk_write(conn)
            assert conn.execute(text("select current_setting('synchronous_commit')")).scalar_one() == "off"
            compression = conn.execute(text("select current_setting('default_toast_compression')")).scalar_one()
            assert compression in ("lz4", "pglz")
        assert conn.execute(text("select current_setting('synchronous_commit')")).scalar_one() == before
