"""``alphaloom.db.background.BackgroundWriter``: one write at a time, each on its own connection and committed as a
whole, and a write's failure raised in the caller's thread (by ``wait``, the next ``submit`` or the ``with`` block's
exit), once, never lost."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from alphaloom.db.background import BackgroundWriter

TABLE = "public.background_writer_rows"


@pytest.fixture()
def table(engine):
    with engine.begin() as conn:
        conn.execute(text(f"drop table if exists {TABLE}"))
        conn.execute(text(f"create table {TABLE} (n integer primary key, seen bigint)"))
    yield TABLE
    with engine.begin() as conn:
        conn.execute(text(f"drop table {TABLE}"))


def _rows(engine) -> list[tuple[int, int | None]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"select n, seen from {TABLE} order by n"))]


def _insert(first: int, count: int):
    def write(conn: Connection) -> None:
        conn.execute(text(f"insert into {TABLE} (n) select generate_series(cast(:a as integer), cast(:b as integer))"),
                     {"a": first, "b": first + count - 1})  # fmt: skip

    return write


def _duplicate(conn: Connection) -> None:
    conn.execute(text(f"insert into {TABLE} (n) values (-1)"))
    conn.execute(text(f"insert into {TABLE} (n) values (-1)"))


def test_writes_run_one_at_a_time_in_order_each_committed_on_its_own_connection(engine, table) -> None:
    """The second write starts once the first is committed (it sees all its rows, from another connection)."""
    pids: list[int] = []

    def count_then_insert(conn: Connection) -> None:
        pids.append(conn.execute(text("select pg_backend_pid()")).scalar_one())
        conn.execute(text(f"insert into {TABLE} (n, seen) select -1, count(*) from {TABLE}"))

    with engine.connect() as mine:
        own = mine.execute(text("select pg_backend_pid()")).scalar_one()
        with BackgroundWriter(engine) as writer:
            writer.submit(_insert(1, 20_000))
            writer.submit(count_then_insert)
            writer.wait()
            assert not writer.busy
            rows = _rows(engine)
    assert len(rows) == 20_001 and rows[0] == (-1, 20_000), "the second write saw every row of the first"
    assert pids and own not in pids


def test_a_failed_write_is_rolled_back_and_raised_once_by_wait(engine, table) -> None:
    writer = BackgroundWriter(engine)
    writer.submit(_insert(1, 10))
    writer.submit(_duplicate)
    with pytest.raises(IntegrityError):
        writer.wait()
    assert len(_rows(engine)) == 10, "the failed write's transaction rolled back, the one before kept"
    writer.wait()  # raised once
    writer.check()


def test_the_next_submit_raises_the_failure_and_does_not_write(engine, table) -> None:
    writer = BackgroundWriter(engine)
    writer.submit(_duplicate)
    with pytest.raises(IntegrityError):
        writer.submit(_insert(1, 10))
    writer.wait()
    assert _rows(engine) == []


def test_a_write_whose_connection_is_closed_under_it_raises(engine, table) -> None:
    def killed(conn: Connection) -> None:
        conn.execute(text(f"insert into {TABLE} (n) values (1)"))
        conn.execute(text("select pg_terminate_backend(pg_backend_pid())"))

    writer = BackgroundWriter(engine)
    writer.submit(killed)
    with pytest.raises(DBAPIError):
        writer.wait()
    assert _rows(engine) == []
    writer.submit(_insert(1, 3))  # the writer goes on with a fresh connection
    writer.wait()
    assert len(_rows(engine)) == 3


def test_the_with_block_waits_and_raises_the_failure_but_lets_another_exception_go_on(engine, table, caplog) -> None:
    with pytest.raises(IntegrityError), BackgroundWriter(engine) as writer:
        writer.submit(_duplicate)
    with (
        caplog.at_level(logging.ERROR, logger="alphaloom.db.background"),
        pytest.raises(KeyError),
        BackgroundWriter(engine) as writer,
    ):
        writer.submit(_duplicate)
        raise KeyError("the caller failed first")
    assert not writer.busy
    assert any("failed too" in r.getMessage() for r in caplog.records)
    with BackgroundWriter(engine) as writer:
        writer.submit(_insert(1, 5))
    assert len(_rows(engine)) == 5, "written by the block's exit"
