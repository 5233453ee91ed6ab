"""Test fixtures: a throwaway database per test session on the server in force (embedded, or ALPHALOOM_DATABASE_URL).

The session database is handed to the code under test through ``ALPHALOOM_DATABASE_URL``, exactly as an operator
would point AlphaLoom at a server, and dropped at the end. It is created only when a test asks for it (``engine`` or
``database_url``), so the pure tests run without PostgreSQL: ``pytest -m "not db and not prefect and not dbt and not
browser"``.

Markers (registered in pyproject.toml) are set on each collected test by ``pytest_collection_modifyitems``:
- ``db``: the test uses the session database (``engine`` or ``database_url`` among its fixtures, directly or not);
- ``prefect``: it uses the session's Prefect API (``prefect_harness``), or is marked by hand (it starts a server);
- ``dbt``: it, or one of the fixtures it uses, calls dbt (``build_features(``, ``run_dbt(``), or is marked by hand;
- ``browser``: marked by hand (it drives a real browser).

Here: what tests of several folders share (the session home and database, the Prefect harness, the alert
``receiver``, the clean-ups between modules) and the marker hook. Each test folder mirrors a source folder and has its
own ``conftest.py`` saying what it tests, holding the fixtures only its tests use; helpers that are not fixtures live
in ``tests/support/``.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

# Tests never touch the user's state: the whole session gets a temporary ALPHALOOM_HOME (Prefect's home, GX's store,
# reports, keys; and the embedded PostgreSQL when no ALPHALOOM_DATABASE_URL is set), removed at the end. Set before
# AlphaLoom's settings are first read, and overriding whatever home the developer's shell points at.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="alphaloom-test-"))
os.environ["ALPHALOOM_HOME"] = str(_SESSION_HOME)
os.environ.pop("ALPHALOOM_PGDATA", None)
os.environ.pop("PREFECT_HOME", None)

from alphaloom.settings import Settings, apply_tool_environment, get_settings  # noqa: E402

# The embedded Prefect server is started only by the tests about it (and stopped by them): the others use the session's
# prefect_test_harness, and a test never leaves a server running.
os.environ.setdefault("ALPHALOOM_EMBEDDED_PREFECT", "false")
apply_tool_environment()
# Keys of credentials stored by tests go to a 0600 file under the test home, never into a developer's OS keyring.
os.environ.setdefault("ALPHALOOM_SECRET_KEY_STORE", "file")
os.environ.setdefault("ALPHALOOM_RESEND_SETTLE_SECONDS", "0")  # no sleeps in tests


_DB_FIXTURES = frozenset({"engine", "database_url"})
_PREFECT_FIXTURES = frozenset({"prefect_harness"})
# A call of the dbt runner, of the feature-building flow or of the docs generation (all run dbt against the database).
_DBT_CALL = re.compile(r"\b(?:build_features|run_dbt|dbt_build|generate_docs)\(")
_CALL = re.compile(r"\b(\w+)\(")
_TESTS = Path(__file__).resolve().parent


def _calls_dbt(func: object, seen: dict[object, bool]) -> bool:
    """Whether a test or a fixture (a function defined under tests/) calls dbt, itself or through a function of its
    own module that it calls."""
    if func not in seen:
        seen[func] = False  # while it is being read (a helper calling back into it)
        try:
            inside = Path(inspect.getsourcefile(func) or "").resolve().is_relative_to(_TESTS)  # type: ignore[arg-type]
            source = inspect.getsource(func) if inside else ""  # type: ignore[arg-type]
        except (OSError, TypeError):
            source = ""
        module = inspect.getmodule(func)
        helpers = [getattr(module, name, None) for name in set(_CALL.findall(source))]
        seen[func] = bool(_DBT_CALL.search(source)) or any(
            inspect.isfunction(h) and h.__module__ == getattr(module, "__name__", None) and _calls_dbt(h, seen)
            for h in helpers
        )
    return seen[func]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks each test ``db``, ``prefect`` and ``dbt`` by what it uses (see the module's docstring)."""
    seen: dict[object, bool] = {}
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & _DB_FIXTURES:
            item.add_marker(pytest.mark.db)
        if fixtures & _PREFECT_FIXTURES:
            item.add_marker(pytest.mark.prefect)
        info = getattr(item, "_fixtureinfo", None)
        funcs = [getattr(item, "function", None)]
        if info is not None:
            funcs += [d.func for name in fixtures for d in info.name2fixturedefs.get(name, ())]
        if any(f is not None and _calls_dbt(f, seen) for f in funcs) and item.get_closest_marker("dbt") is None:
            item.add_marker(pytest.mark.dbt)


def _admin_uri(url: URL) -> str:
    from alphaloom.db.engine import libpq_url

    return libpq_url(url.set(database="postgres"))


@pytest.fixture(scope="session", autouse=True)
def session_home() -> Iterator[Path]:
    """The session's temporary home; its embedded PostgreSQL (if one was started) is stopped and the folder removed."""
    yield _SESSION_HOME
    from alphaloom.db import embedded

    pgdata = Settings().pgdata_dir
    if embedded.status(pgdata).running:
        embedded.stop(pgdata)
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)


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


_session_engines: list[Engine] = []


@pytest.fixture(scope="session")
def engine(database_url: URL) -> Engine:
    from alphaloom.db.engine import get_engine

    _session_engines.append(get_engine())
    return _session_engines[-1]


@pytest.fixture(autouse=True, scope="module")
def _no_hand_made_features_outlive_their_module() -> Iterator[None]:
    """Tests of the decision path write feature rows into ``marts.features`` by hand (dbt never sets their
    ``bar_number``). Left behind, they fail the dbt tests of the next module that builds features in the same
    session database (not null ``bar_number``/``obv``, one row per bar), so they are removed when their module ends."""
    yield
    if not _session_engines:
        return
    with _session_engines[-1].begin() as conn:
        has_column = conn.execute(
            text(
                "select 1 from information_schema.columns"
                " where table_schema = 'marts' and table_name = 'features' and column_name = 'bar_number'"
            )
        ).first()
        if has_column:
            conn.execute(text("delete from marts.features where bar_number is null"))


@pytest.fixture(autouse=True, scope="module")
def _no_llm_spend_outlives_its_module() -> Iterator[None]:
    """The LLM usage ledger holds today's spend, which the daily budget caps: every module of the session shares one
    database, so a module's spend left behind would leave a later module's endpoint calls no room under the default
    daily cap. The rows a module added are removed when it ends."""
    before = _newest_usage_id()
    yield
    if not _session_engines or _newest_usage_id() == before:
        return
    with _session_engines[-1].begin() as conn:
        conn.execute(text("delete from audit.llm_usage where id > :id"), {"id": before})


def _newest_usage_id() -> int:
    """The newest ledger row's id (0 before the session's database or its ledger exists)."""
    if not _session_engines:
        return 0
    with _session_engines[-1].connect() as conn:
        if conn.execute(text("select to_regclass('audit.llm_usage')")).scalar() is None:
            return 0
        return int(conn.execute(text("select coalesce(max(id), 0) from audit.llm_usage")).scalar_one())


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the whole session (it costs ~15 s to start). Flow runs in tests send no
    heartbeat, as a command's own runs do (``alphaloom.cli._app.flow_run_settings``): Prefect joins that thread at
    every run's end, up to a second a run."""
    from prefect.settings import temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120), temporary_settings({"flows.heartbeat_frequency": None}):
        yield


@dataclass
class Receiver:
    url: str
    status: int = 200
    received: list[dict] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


@pytest.fixture()
def receiver(monkeypatch) -> Iterator[Receiver]:
    """A local HTTP alert receiver on 127.0.0.1, set as ``ALPHALOOM_ALERT_WEBHOOK_URL`` for the test."""
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(json.loads(body))
            self.send_response(state.status)
            self.end_headers()
            state.arrived.set()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    monkeypatch.setenv("ALPHALOOM_ALERT_WEBHOOK_URL", state.url)
    get_settings.cache_clear()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        monkeypatch.delenv("ALPHALOOM_ALERT_WEBHOOK_URL")
        get_settings.cache_clear()
