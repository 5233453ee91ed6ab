"""Run recording: the audit spine of ARCHITECTURE §8.

Every flow run writes one ``audit.runs`` row keyed by its Prefect flow-run id (a uuid outside Prefect); every row it
produces carries that ``run_id``. Lineage edges (``audit.lineage``: which parent rows a child row was made from) are
written in the same statement as the rows they describe, by ``agents.recording`` and ``execution.orders.store``.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, text

from alphaloom.domain import RunId
from alphaloom.settings import PROJECT_ROOT


@lru_cache(maxsize=1)
def git_sha() -> str | None:
    """The project's commit, so a decision can name the code (and dbt models) it ran with."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def new_run_id() -> RunId:
    return RunId(str(uuid.uuid4()))


def start_run(engine: Engine, flow: str, parameters: Mapping[str, Any], run_id: str | None = None) -> RunId:
    """Insert (or, for a retried flow run, reopen) the ``audit.runs`` row and return its id."""
    rid = RunId(run_id or new_run_id())
    with engine.begin() as conn:
        conn.execute(
            text(
                """insert into audit.runs (run_id, flow, parameters, git_sha)
                   values (:run_id, :flow, cast(:parameters as jsonb), :git_sha)
                   on conflict (run_id) do update
                   set status = 'running', finished_at = null, error = null"""
            ),
            {"run_id": rid, "flow": flow, "parameters": json.dumps(parameters, default=str), "git_sha": git_sha()},
        )
    return rid


def finish_run(engine: Engine, run_id: str, error: BaseException | None = None) -> None:
    status = "failed" if error is not None else "completed"
    message = None if error is None else f"{type(error).__name__}: {error}"[:4000]
    with engine.begin() as conn:
        conn.execute(
            text("update audit.runs set status = :s, finished_at = now(), error = :e where run_id = :r"),
            {"s": status, "e": message, "r": run_id},
        )


@contextmanager
def recorded_run(
    engine: Engine, flow: str, parameters: Mapping[str, Any], run_id: str | None = None
) -> Iterator[RunId]:
    """Record a run around a block: completed when it returns, failed (with the error) when it raises."""
    rid = start_run(engine, flow, parameters, run_id)
    try:
        yield rid
    except BaseException as exc:
        finish_run(engine, rid, exc)
        raise
    finish_run(engine, rid)
