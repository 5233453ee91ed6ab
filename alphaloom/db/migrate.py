"""Alembic migrations for the ``raw`` and ``audit`` schemas, run programmatically (and automatically on first use)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from alphaloom.errors import DatabaseError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_SCHEMA = "audit"
# Serialises concurrent first-use migrations from several processes (key is arbitrary but fixed).
_MIGRATION_LOCK_KEY = 0x41_4C_4D_49


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        has_table = conn.execute(text("select to_regclass('audit.alembic_version') is not null")).scalar()
        if not has_table:
            return None
        return MigrationContext.configure(conn, opts={"version_table_schema": VERSION_SCHEMA}).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Bring the database to the head revision; cheap when it is already there. Returns the revision."""
    head = head_revision()
    try:
        if current_revision(engine) == head:
            return head
        config = _config()
        with engine.begin() as conn:
            conn.execute(text("select pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
            # Alembic keeps its version table in audit, so that schema must exist before the first revision runs.
            conn.execute(text("create schema if not exists audit"))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except Exception as exc:
        raise DatabaseError(f"migrating the database failed: {exc}") from exc
    return head
