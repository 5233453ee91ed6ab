"""The run spine's repository (``audit.runs``, ARCHITECTURE §8): every statement on the runs table, writes and reads.

A flow run writes one row keyed by its Prefect flow-run id (a uuid outside Prefect): ``start_run`` inserts it (or
reopens it for a retried flow run), ``finish_run`` completes or fails it, ``recorded_run`` does both around a block.
Each write commits on its own (``engine.begin()``), so a failed run's row survives the rollback of its work. The
reads take an open connection: the latest outcome per flow (health), recent runs (CLI, console), one run's
parameters (reports), links for the explain chain, and a run with its walk-forward page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, text

from alphaloom.audit import git_sha, new_run_id
from alphaloom.domain import RunId


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
    """Mark the run completed, or failed with ``error``'s type and message (at most 4000 characters)."""
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


class FlowOutcome(NamedTuple):
    """A flow's latest finished run: when it last completed, the status and error of its newest finished run."""

    flow: str
    last_success: datetime | None
    last_status: str | None
    last_error: str | None


def flow_outcomes(conn: Connection) -> list[FlowOutcome]:
    """One row per flow that has run, by flow name."""
    rows = conn.execute(
        text(
            """select flow,
                      max(finished_at) filter (where status = 'completed') as last_success,
                      (array_agg(status order by finished_at desc) filter (where status <> 'running'))[1]
                        as last_status,
                      (array_agg(error order by finished_at desc) filter (where status <> 'running'))[1]
                        as last_error
               from audit.runs group by flow order by flow"""
        )
    )
    return [FlowOutcome._make(r) for r in rows]


def recent_runs(conn: Connection, limit: int = 10) -> list[dict[str, object]]:
    """The newest ``limit`` runs: id, flow, status, start and finish, seconds taken, error and ``dry_run``."""
    rows = conn.execute(
        text(
            """select run_id, flow, status, started_at, finished_at,
                      extract(epoch from finished_at - started_at) as seconds, error,
                      coalesce((parameters ->> 'dry_run')::boolean, false) as dry_run
               from audit.runs order by started_at desc limit :n"""
        ),
        {"n": limit},
    ).mappings()
    return [dict(r) for r in rows]


class RunParameters(NamedTuple):
    """A run's flow and its recorded parameters (None when it recorded none)."""

    flow: str
    parameters: dict[str, Any] | None


def run_parameters(conn: Connection, run_id: str) -> RunParameters | None:
    """The flow and parameters of run ``run_id``; None when no such run is recorded."""
    row = conn.execute(text("select flow, parameters from audit.runs where run_id = :r"), {"r": run_id}).first()
    return None if row is None else RunParameters(row.flow, row.parameters)


class RunRecord(NamedTuple):
    """A run as the explain chain links it."""

    run_id: str
    flow: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    git_sha: str | None


def run_record(conn: Connection, run_id: str) -> RunRecord | None:
    """Run ``run_id``; None when it is not recorded."""
    row = conn.execute(
        text("select run_id, flow, status, started_at, finished_at, git_sha from audit.runs where run_id = :r"),
        {"r": run_id},
    ).first()
    return None if row is None else RunRecord._make(row)


def last_completed_run(conn: Connection, flow: str, before: datetime) -> RunRecord | None:
    """The newest run of ``flow`` that completed at or before ``before``; None when there is none."""
    row = conn.execute(
        text(
            """select run_id, flow, status, started_at, finished_at, git_sha from audit.runs
               where flow = :f and status = 'completed' and finished_at <= :t
               order by finished_at desc limit 1"""
        ),
        {"f": flow, "t": before},
    ).first()
    return None if row is None else RunRecord._make(row)


class RunRow(NamedTuple):
    """A run as the operator's arguments are checked against it, with a walk-forward run's HTML page."""

    run_id: str
    flow: str
    status: str
    page: str | None


def find_run(conn: Connection, run_id: str) -> RunRow | None:
    """Run ``run_id`` with its walk-forward page (None for other runs); None when it is not recorded."""
    row = conn.execute(
        text(
            """select r.run_id, r.flow, r.status, w.page from audit.runs r
               left join audit.walk_forward_runs w using (run_id) where r.run_id = :r"""
        ),
        {"r": run_id},
    ).first()
    return None if row is None else RunRow._make(row)


# The runs that spent for an account: those that decided for it, and decision runs named for it (a dry run's
# decisions are rolled back, its spend is not).
_ACCOUNT_RUNS = """
select run_id from audit.decisions where account = :a
union
select run_id from audit.runs where flow = 'decide' and parameters->>'account' = :a
"""


def runs_of_account(conn: Connection, account: str) -> list[str]:
    """The runs that worked for ``account``: those that decided for it, and decide runs named for it (a dry run,
    whose decisions were rolled back, included)."""
    rows: Sequence[Any] = conn.execute(text(_ACCOUNT_RUNS), {"a": account}).scalars().all()
    return [str(r) for r in rows]
