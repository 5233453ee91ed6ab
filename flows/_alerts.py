"""Prefect state hooks that raise operator alerts (``alphaloom.ops.alerts``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from alphaloom.domain import AccountId
from alphaloom.ops.alerts import alert
from alphaloom.ops.drawdown_alerts import drawdown_transition


def alert_on_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """on_failure hook: alert with the flow, the run and the failure message."""
    alert(
        "flow_failure",
        f"flow {flow.name} run {flow_run.name} failed: {state.message or state.type}",
        {"flow": flow.name, "flow_run_id": str(flow_run.id), "flow_run_name": flow_run.name,
         "parameters": flow_run.parameters, "state": str(state.type)},
    )  # fmt: skip


def alert_on_drawdown_transition(engine: Engine, account: AccountId, run_id: str, as_of: datetime) -> str | None:
    """After a decision step: alert when its drawdown verdicts moved the account to reduce or halt; returns the kind."""
    with engine.connect() as conn:
        transition = drawdown_transition(conn, account, run_id, as_of)
    if transition is None:
        return None
    alert(transition.kind, transition.reason, transition.details(run_id))
    return transition.kind
