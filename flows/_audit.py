"""The audit spine for flows: one ``audit.runs`` row per flow run, keyed by the Prefect flow-run id."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prefect.runtime import flow_run
from sqlalchemy import Engine

from alphaloom.db.engine import get_engine
from alphaloom.domain import RunId
from alphaloom.records.runs import recorded_run


@contextmanager
def audited_run(flow: str, parameters: Mapping[str, Any]) -> Iterator[tuple[Engine, RunId]]:
    """Engine and run id for the body of a flow; the run row is completed or failed when the body ends."""
    engine = get_engine()
    with recorded_run(engine, flow, parameters, run_id=flow_run.id) as run_id:
        yield engine, run_id
