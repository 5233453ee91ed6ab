"""Alembic migrations for the ``raw`` and ``audit`` schemas, run programmatically (and automatically on first use)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text

from alphaloom.errors import DatabaseError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_SCHEMA = "audit"
# Serialises concurrent first-use migrations from several processes (key is arbitrary but fixed).
_MIGRATION_LOCK_KEY = 0x41_4C_4D_49
_REVISION = re.compile(r'^revision = "([^"]+)"$', re.M)
_DOWN_REVISION = re.compile(r'^down_revision = (?:None|"([^"]+)")$', re.M)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from alembic.config import Config


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        has_table = conn.execute(text("select to_regclass('audit.alembic_version') is not null")).scalar()
        if not has_table:
            return None
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(conn, opts={"version_table_schema": VERSION_SCHEMA}).get_current_revision()


def declared_head() -> str | None:
    """The head revision as the migration files declare it (``revision = "..."``, ``down_revision = "..."``/None),
    without importing alembic; None unless they form one plain chain with one head (then only alembic decides)."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("[0-9]*.py"):
        source = path.read_text()
        revision, down = _REVISION.findall(source), _DOWN_REVISION.findall(source)
        if len(revision) != 1 or len(down) != 1:
            return None
        revisions.add(revision[0])
        if down[0]:
            parents.add(down[0])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def _stored_revision(engine: Engine) -> str | None:
    """The one revision stored in ``audit.alembic_version``, read with SQL (None: no table, no row or several)."""
    with engine.connect() as conn:
        if not conn.execute(text("select to_regclass('audit.alembic_version') is not null")).scalar():
            return None
        rows: Sequence[str] = conn.execute(text("select version_num from audit.alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def upgrade(engine: Engine) -> str:
    """Bring the database to the head revision; cheap when it is already there. Returns the revision.

    Fast path: when the files declare one plain chain and the database stores its head, nothing is imported from
    alembic (every command opens the database through here); anything else goes through alembic itself."""
    try:
        declared = declared_head()
        if declared is not None and _stored_revision(engine) == declared:
            return declared
        head = head_revision()
        if current_revision(engine) == head:
            return head
        from alembic import command

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
