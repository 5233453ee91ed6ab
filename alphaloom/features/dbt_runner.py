"""Run the dbt project in-process against the database in force, and turn a failed dbt node into an AlphaLoom error.

What callers can rely on:

- dbt reads the same database as ``alphaloom.db.engine`` (``ALPHALOOM_DATABASE_URL`` or the embedded server), migrated to
  the latest schema first, so dbt's sources exist. ``dbt/profiles.yml`` takes its connection from ``ALPHALOOM_DBT_*``
  variables, which are set only for the duration of the call.
- dbt writes only under ``target_path`` and ``log_path`` (default ``dbt/target``, git-ignored, and
  ``$ALPHALOOM_HOME/logs/dbt``; with a ``target_path`` and no ``log_path``, logs go to ``target_path/logs``); give each
  concurrent caller its own. The console shows only errors (``--quiet``); the per-node log is the plain-text
  ``dbt.log`` there (``DbtRun.log_file``).
- ``run_dbt`` returns a ``DbtRun`` when every node succeeded (warnings and skips included) and raises ``DbtError``
  naming each failed node and its message otherwise. One dbt invocation runs at a time per process: dbt keeps global
  state, so calls are serialised.
- ``dbt_vars`` become dbt's ``--vars`` (the project's defaults are in ``dbt/dbt_project.yml``: ``benchmark_symbol``,
  ``beta_window``, ``correlation_window``, ``correlation_bars``, ``correlation_symbols``, ``sentiment_scorer``).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alphaloom.errors import DbtError
from alphaloom.settings import Settings, get_settings

# dbt node statuses that mean the node did not do its job (RunStatus / TestStatus values).
_FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})

_invoke_lock = threading.Lock()


@dataclass(frozen=True)
class DbtNodeResult:
    """One node dbt ran: ``unique_id`` (e.g. ``model.alphaloom.features``), its status as dbt reports it (``success``,
    ``pass``, ``warn``, ``skipped``...), and how long it took in seconds."""

    unique_id: str
    status: str
    execution_time: float


@dataclass(frozen=True)
class DbtRun:
    """A finished dbt invocation. ``invocation_id`` is what models stamp as ``dbt_invocation_id``."""

    success: bool
    invocation_id: str | None
    results: list[DbtNodeResult]
    log_file: Path | None = None  # dbt's full log of the invocation (stdout shows only errors)

    def counts(self) -> dict[str, int]:
        """Nodes per resource type: ``{"model": 7, "test": 66, "unit_test": 12, ...}``."""
        found: dict[str, int] = {}
        for result in self.results:
            kind = result.unique_id.split(".", 1)[0]
            found[kind] = found.get(kind, 0) + 1
        return found

    def statuses(self, resource_type: str) -> dict[str, str]:
        """``{unique_id: status}`` for nodes of one resource type (``model``, ``test``, ``unit_test``...)."""
        return {r.unique_id: r.status for r in self.results if r.unique_id.startswith(f"{resource_type}.")}


def dbt_environment(settings: Settings | None = None) -> dict[str, str]:
    """The ``ALPHALOOM_DBT_*`` variables ``dbt/profiles.yml`` reads, for the database in force (migrated first)."""
    from alphaloom.db.engine import connection_info, get_engine

    info = connection_info(get_engine(settings).url)
    return {
        "ALPHALOOM_DBT_HOST": info.host,
        "ALPHALOOM_DBT_PORT": str(info.port),
        "ALPHALOOM_DBT_USER": info.user,
        "ALPHALOOM_DBT_PASSWORD": info.password,
        "ALPHALOOM_DBT_DBNAME": info.dbname,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    # dbt reads env_var() from os.environ; restore afterwards so the password does not leak into later subprocesses.
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_dbt(
    args: list[str],
    *,
    settings: Settings | None = None,
    target_path: Path | None = None,
    log_path: Path | None = None,
    dbt_vars: Mapping[str, object] | None = None,
) -> DbtRun:
    """Run ``dbt <args>`` on AlphaLoom's project and database; raise ``DbtError`` unless every node succeeded.
    ``dbt_vars`` override the project's vars for this invocation."""
    from dbt.cli.main import dbtRunner
    from dbt_common.invocation import get_invocation_id

    settings = settings or get_settings()
    project_dir = settings.dbt_project_dir
    # Explicit paths, so dbt writes nothing relative to the working directory; a caller's own target gets its logs too.
    if log_path is None:  # the operator's build log is state, kept in AlphaLoom's home
        log_path = settings.home / "logs" / "dbt" if target_path is None else target_path / "logs"
    target_path = target_path or project_dir / "target"
    argv = [
        *args,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
        "--target-path",
        str(target_path),
        "--log-path",
        str(log_path),
        # The per-node log goes to log_path/dbt.log only (plain text); the console shows errors.
        "--quiet",
        "--no-use-colors",
        "--no-use-colors-file",
    ]
    if dbt_vars:
        argv += ["--vars", json.dumps(dict(dbt_vars))]
    command = " ".join(args)
    with _invoke_lock, _environment(dbt_environment(settings)):
        outcome = dbtRunner().invoke(argv)
        invocation_id = get_invocation_id()
    if outcome.exception is not None:
        raise DbtError(command, [("dbt", str(outcome.exception))]) from outcome.exception
    # outcome.result is a RunExecutionResult for build/run/test/show, something else (or None) for parse, docs...
    nodes = list(getattr(outcome.result, "results", None) or [])
    if not outcome.success:
        failures = [(r.node.unique_id, r.message or str(r.status)) for r in nodes if str(r.status) in _FAILED_STATUSES]
        raise DbtError(command, failures)
    results = [DbtNodeResult(r.node.unique_id, str(r.status), float(r.execution_time or 0.0)) for r in nodes]
    return DbtRun(success=True, invocation_id=invocation_id, results=results, log_file=log_path / "dbt.log")


def build_features(
    settings: Settings | None = None,
    target_path: Path | None = None,
    log_path: Path | None = None,
    *,
    dbt_vars: Mapping[str, object] | None = None,
    full_refresh: bool = False,
) -> DbtRun:
    """``dbt build``: every model (the feature marts included), its data tests and unit tests, in DAG order.

    The marts are incremental: a build computes only bars not stored yet (see the features model's docs);
    ``full_refresh`` recomputes everything. The settings' ``benchmark_symbol`` and correlation universe
    (``correlation_universe``: the traded symbols unless ``ALPHALOOM_CORRELATION_SYMBOLS`` says otherwise) are passed
    as the dbt vars of those names unless ``dbt_vars`` sets them."""
    settings = settings or get_settings()
    merged: dict[str, object] = {"correlation_symbols": settings.correlation_universe}
    if settings.benchmark_symbol:
        merged["benchmark_symbol"] = settings.benchmark_symbol
    merged.update(dbt_vars or {})
    args = ["build", "--full-refresh"] if full_refresh else ["build"]
    return run_dbt(args, settings=settings, target_path=target_path, log_path=log_path, dbt_vars=merged)
