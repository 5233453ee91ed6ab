"""The kill switch: its one home. The state lives in ``audit.kill_switch``, one row per change (the latest row wins), so
every process and every broker sees the same switch.

- ``kill_switch_state(conn)``: the switch now (``NEVER_ENGAGED`` before the first change). The risk manager denies
  every intent while it is on; execution and every broker check it again before each send.
- ``set_kill_switch(conn, engaged, reason, changed_by)``: one change, in the caller's transaction.
- ``change_kill_switch(engine, ...)``: what an operator's face (the CLI, the console) does: the change in its own
  transaction and, when the switch goes on, a ``kill_switch`` alert (``alphaloom.ops.alerts``).
- ``kill_switch_history(conn)``: the changes, newest first, with who made them, why and when.

Cancelling the orders still open when the switch goes on is execution's work (``execution.killswitch``): the core
cannot reach the brokers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, text


@dataclass(frozen=True, slots=True)
class KillSwitchState:
    engaged: bool
    reason: str
    changed_by: str


NEVER_ENGAGED = KillSwitchState(False, "never engaged", "")


@dataclass(frozen=True, slots=True)
class KillSwitchChange:
    """One row of ``audit.kill_switch``."""

    engaged: bool
    reason: str
    changed_by: str
    changed_at: datetime


def kill_switch_state(conn: Connection) -> KillSwitchState:
    row = conn.execute(
        text("select engaged, reason, changed_by from audit.kill_switch order by id desc limit 1")
    ).first()
    if row is None:
        return NEVER_ENGAGED
    return KillSwitchState(bool(row.engaged), row.reason, row.changed_by)


def set_kill_switch(conn: Connection, engaged: bool, reason: str, changed_by: str) -> KillSwitchState:
    conn.execute(
        text("insert into audit.kill_switch (engaged, reason, changed_by) values (:e, :r, :b)"),
        {"e": engaged, "r": reason, "b": changed_by},
    )
    return KillSwitchState(engaged, reason, changed_by)


def change_kill_switch(engine: Engine, *, engaged: bool, reason: str, changed_by: str) -> KillSwitchState:
    """Turn the switch on or off for an operator (committed before this returns); turning it on raises the
    ``kill_switch`` alert naming who and why. Returns the state now."""
    with engine.begin() as conn:
        state = set_kill_switch(conn, engaged, reason, changed_by)
    if engaged:
        from alphaloom.ops.alerts import alert

        alert("kill_switch", f"kill switch engaged: {reason}", {"changed_by": changed_by, "reason": reason})
    return state


def kill_switch_history(conn: Connection, limit: int = 20) -> list[KillSwitchChange]:
    """The last ``limit`` changes of the switch, newest first."""
    rows = conn.execute(
        text("select engaged, reason, changed_by, changed_at from audit.kill_switch order by id desc limit :n"),
        {"n": limit},
    ).all()
    return [KillSwitchChange(bool(r.engaged), r.reason, r.changed_by, r.changed_at) for r in rows]
