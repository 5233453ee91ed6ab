"""A throwaway database migrated to a given revision, for the tests of one migration: seed rows the old schema
allowed, then upgrade (and downgrade) and look at what the migration made of them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL

from alphaloom.db import migrate
from alphaloom.db.engine import libpq_url


@contextmanager
def database_at(database_url: URL, revision: str) -> Iterator[Engine]:
    """An engine on a new database of ``database_url``'s server, migrated up to ``revision``; dropped on exit."""

    admin = libpq_url(database_url.set(database="postgres"))
    name = f"alphaloom_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    engine = create_engine(database_url.set(database=name))
    try:
        migrate_to(engine, revision)
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def migrate_to(engine: Engine, revision: str, *, down: bool = False) -> None:
    """Upgrade (``down``: downgrade) ``engine``'s database to ``revision`` with the project's Alembic config."""
    from alembic import command

    config = migrate._config()
    with engine.begin() as conn:
        conn.execute(text("create schema if not exists audit"))
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)
