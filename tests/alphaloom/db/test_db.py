from __future__ import annotations

import os
import uuid

import psycopg
import pytest
from sqlalchemy import create_engine, inspect, text

from alphaloom.db import migrate
from alphaloom.db.engine import database_url, libpq_url
from alphaloom.errors import ConfigError
from alphaloom.settings import Settings

EXPECTED_TABLES = {
    "raw": {"ohlcv", "news", "news_sightings", "news_symbols", "quarantine"},
    "audit": {
        "runs",
        "accounts",
        "balances",
        "agent_outputs",
        "sentiment_scores",
        "decisions",
        "risk_checks",
        "orders",
        "order_events",
        "fills",
        "positions",
        "kill_switch",
        "llm_cache",
        "lineage",
        "alembic_version",
    },
}


def _fresh_database(server_uri: str) -> str:
    name = f"alphaloom_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_uri, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    return name


def _drop(server_uri: str, name: str) -> None:
    with psycopg.connect(server_uri, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def _check_migrates(server_url) -> None:
    admin = libpq_url(server_url.set(database="postgres"))
    name = _fresh_database(admin)
    try:
        engine = create_engine(server_url.set(database=name))
        assert migrate.current_revision(engine) is None
        assert migrate.upgrade(engine) == migrate.head_revision()
        assert migrate.upgrade(engine) == migrate.head_revision()  # second call is a no-op
        inspector = inspect(engine)
        for schema, tables in EXPECTED_TABLES.items():
            assert tables <= set(inspector.get_table_names(schema=schema)), schema
        engine.dispose()
    finally:
        _drop(admin, name)


def test_migrations_create_raw_and_audit_on_an_empty_database(database_url) -> None:
    _check_migrates(database_url)


@pytest.mark.db  # the server at 127.0.0.1:5432 itself, not the session database
def test_machine_postgres_on_localhost_works_too() -> None:
    """The server at 127.0.0.1:5432 (present on the development and CI machines) can be used through the URL."""
    url = os.environ.get("ALPHALOOM_TEST_EXTERNAL_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {url} ({exc}); set ALPHALOOM_TEST_EXTERNAL_URL to test an external server")
    _check_migrates(database_url(Settings(database_url=url)))


def test_engine_uses_the_configured_url(database_url, engine) -> None:
    assert engine.url.database == database_url.database
    with engine.connect() as conn:
        assert conn.execute(text("select current_database()")).scalar() == database_url.database


def test_a_non_postgres_url_is_a_clear_config_error() -> None:
    with pytest.raises(ConfigError, match="must point at PostgreSQL"):
        database_url(Settings(database_url="mysql://root@127.0.0.1/test"))


def test_a_migrated_database_is_opened_without_importing_alembic(engine) -> None:
    # the schema check of every command reads the stored revision and the migration files' declared head; alembic
    # (a fifth of a second to import) runs only when there is something to migrate or the files are not a plain chain
    import subprocess
    import sys

    assert migrate.declared_head() == migrate.head_revision()
    program = (
        "import sys\nfrom alphaloom.db.engine import get_engine\nget_engine()\n"
        "print(sorted(m for m in sys.modules if m == 'alembic' or m.startswith('alembic.')))"
    )
    url = engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "ALPHALOOM_DATABASE_URL": url}
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
