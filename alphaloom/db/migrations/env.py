"""Alembic environment: runs against the connection handed over by ``alphaloom.db.migrate`` (or a URL in the config)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, version_table_schema="audit")
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("alembic: no connection handed over and no sqlalchemy.url in the config")
    engine = create_engine(url)
    with engine.begin() as conn:
        context.configure(connection=conn, version_table_schema="audit")
        context.run_migrations()


run_migrations_online()
