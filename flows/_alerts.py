"""Prefect state hooks that raise operator alerts (``alphaloom.alerts``)."""

from __future__ import annotations

from typing import Any

from alphaloom.alerts import alert


def alert_on_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """on_failure hook: alert with the flow, the run and the failure message."""
    alert(
        "flow_failure",
        f"flow {flow.name} run {flow_run.name} failed: {state.message or state.type}",
        {"flow": flow.name, "flow_run_id": str(flow_run.id), "flow_run_name": flow_run.name,
         "parameters": flow_run.parameters, "state": str(state.type)},
    )  # fmt: skip
