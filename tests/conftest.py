"""Test fixtures: a throwaway database per test session on the server in force (embedded, or ALPHALOOM_DATABASE_URL).

The session database is handed to the code under test through ``ALPHALOOM_DATABASE_URL``, exactly as an operator
would point AlphaLoom at a server, and dropped at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from alphaloom.settings import Settings, apply_tool_environment, get_settings

apply_tool_environment()


def _admin_uri(url: URL) -> str:
    from alphaloom.db.engine import libpq_url

    return libpq_url(url.set(database="postgres"))


@pytest.fixture(scope="session")
def database_url() -> Iterator[URL]:
    from alphaloom.db.engine import database_url as server_database_url
    from alphaloom.db.engine import dispose_engines, libpq_url

    server = server_database_url(Settings())
    name = f"alphaloom_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_uri(server), autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = server.set(database=name)
    previous = os.environ.get("ALPHALOOM_DATABASE_URL")
    os.environ["ALPHALOOM_DATABASE_URL"] = libpq_url(url)
    get_settings.cache_clear()
    try:
        yield url
    finally:
        dispose_engines()
        if previous is None:
            os.environ.pop("ALPHALOOM_DATABASE_URL", None)
        else:
            os.environ["ALPHALOOM_DATABASE_URL"] = previous
        get_settings.cache_clear()
        with psycopg.connect(_admin_uri(server), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def engine(database_url: URL) -> Engine:
    from alphaloom.db.engine import get_engine

    return get_engine()


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the whole session (it costs ~15 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
