"""A throwaway database for one benchmark run, on the server in force (embedded, or ALPHALOOM_DATABASE_URL)."""

from __future__ import annotations

import uuid

import psycopg
from sqlalchemy.engine import URL

from alphaloom.db.engine import database_url, libpq_url


def _admin(url: URL) -> str:
    return libpq_url(url.set(database="postgres"))


def create_throwaway_database() -> URL:
    """Create an empty database named ``alphaloom_bench_<random>`` and return its URL."""
    server = database_url()
    url = server.set(database=f"alphaloom_bench_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(_admin(server), autocommit=True) as conn:
        conn.execute(f'create database "{url.database}"')
    return url


def drop_throwaway_database(url: URL) -> None:
    """Drop it again, closing whatever connections are left."""
    with psycopg.connect(_admin(url), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{url.database}" with (force)')
