"""Engine and connections: one SQLAlchemy 2 engine per database URL, psycopg 3 underneath, migrations on first use.

``ALPHALOOM_DATABASE_URL`` (any ``postgresql://`` URL) selects an external server; without it the embedded server under
``ALPHALOOM_PGDATA`` is started (or reused) and the ``alphaloom`` database created on it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

import psycopg
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url

from alphaloom.db import embedded
from alphaloom.errors import ConfigError, DatabaseError
from alphaloom.settings import Settings, get_settings

EMBEDDED_DATABASE = "alphaloom"

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class ConnectionInfo:
    """The pieces other tools (dbt profile, Prefect, GX) need; ``host`` may be a socket directory."""

    host: str
    port: int
    user: str
    password: str
    dbname: str


@lru_cache(maxsize=16)  # a URL is immutable; get_engine reads it on every call (a replay: every order step)
def _normalise(url: str) -> URL:
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"ALPHALOOM_DATABASE_URL is not a valid URL: {exc}") from None
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(f"ALPHALOOM_DATABASE_URL must point at PostgreSQL, got backend {parsed.get_backend_name()!r}")
    return parsed.set(drivername="postgresql+psycopg")


def _ensure_database(server_uri: str, dbname: str) -> None:
    try:
        with psycopg.connect(server_uri, autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone()
            if not exists:
                conn.execute(f'create database "{dbname}"')
    except psycopg.errors.DuplicateDatabase:
        pass  # created concurrently by another process
    except psycopg.Error as exc:
        raise DatabaseError(f"could not create database {dbname!r}: {exc}") from exc


def database_url(settings: Settings | None = None) -> URL:
    """The SQLAlchemy URL in force, starting the embedded server when no external URL is configured."""
    settings = settings or get_settings()
    if settings.database_url is not None:
        return _normalise(settings.database_url.get_secret_value())
    server_uri = embedded.start(settings.pgdata_dir)
    _ensure_database(server_uri, EMBEDDED_DATABASE)
    return _normalise(server_uri).set(database=EMBEDDED_DATABASE)


def libpq_url(url: URL) -> str:
    """A plain ``postgresql://`` URL for psycopg, psql and pg_dump, with the password included."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def connection_info(url: URL) -> ConnectionInfo:
    host = url.host or url.query.get("host") or "localhost"
    if isinstance(host, tuple):
        host = host[0]
    return ConnectionInfo(
        host=str(host),
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password or "",
        dbname=url.database or "postgres",
    )


def get_engine(settings: Settings | None = None, *, migrate: bool = True) -> Engine:
    """The engine for the configured database, migrated to the latest schema on first use in this process.

    One engine per process and URL: a Dask worker makes its own on its first task (engines are never shipped between
    processes), each holding at most ``db_pool_size`` + ``db_max_overflow`` connections."""
    settings = settings or get_settings()
    url = database_url(settings)
    key = url.render_as_string(hide_password=False)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = create_engine(url, pool_pre_ping=True, pool_size=settings.db_pool_size,
                                   max_overflow=settings.db_max_overflow)  # fmt: skip
            if migrate:
                from alphaloom.db.migrate import upgrade

                upgrade(engine)
            _engines[key] = engine
    return engine


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
