"""The send-time safety records' repository (``audit.guard_trips``: every refusal of execution's guards at send;
``audit.account_halts``: an account's halts and releases, the latest row wins). Writes and reads; every function
takes the caller's connection. The order store (``execution.orders.store``) still writes halts and trips in an
order's one statement.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, text


def insert_trip(
    conn: Connection, *, run_id: str | None, account: str, guard: str, reason: str, numbers: Mapping[str, Any],
    symbol: str | None, client_order_id: str | None, decision_id: str | None,
) -> None:  # fmt: skip
    """One ``audit.guard_trips`` row (``numbers`` as JSON)."""
    conn.execute(
        text(
            """insert into audit.guard_trips (run_id, account, symbol, client_order_id, decision_id, guard, reason,
                                              numbers)
               values (:r, :a, :s, :c, :d, :g, :reason, cast(:n as jsonb))"""
        ),
        {"r": run_id, "a": account, "s": symbol, "c": client_order_id, "d": decision_id, "g": guard,
         "reason": reason, "n": json.dumps(numbers, default=str)},
    )  # fmt: skip


def recent_trips(conn: Connection, account: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The newest ``limit`` trips (of ``account`` when given): time, account, symbol, guard, reason, client order id."""
    rows = conn.execute(
        text(
            """select created_at, account, symbol, guard, reason, client_order_id from audit.guard_trips
               where cast(:a as text) is null or account = :a order by id desc limit :n"""
        ),
        {"a": account, "n": limit},
    ).mappings()
    return [dict(r) for r in rows]


def refusals_of_run(conn: Connection, run_id: str) -> list[tuple[str, int]]:
    """A run's refusals counted by reason: its guard trips by guard, and its denied risk checks by check (execution's
    own guard checks left out: they are the trips)."""
    rows = conn.execute(
        text("""select guard as reason, count(*) as n from audit.guard_trips where run_id = :r group by guard
                union all
                select check_name, count(*) from audit.risk_checks
                where run_id = :r and not approved and check_name not like 'execution_guard%'
                group by check_name"""),
        {"r": run_id},
    )  # fmt: skip
    return [(str(r.reason), int(r.n)) for r in rows]


class Halt(NamedTuple):
    """An account's latest halt row: halted or released, why and when."""

    halted: bool
    reason: str
    changed_at: datetime


def latest_halt(conn: Connection, account: str) -> Halt | None:
    """The newest halt row of ``account``; None when it was never halted."""
    row = conn.execute(
        text("select halted, reason, changed_at from audit.account_halts where account = :a order by id desc limit 1"),
        {"a": account},
    ).first()
    return None if row is None else Halt(bool(row.halted), row.reason, row.changed_at)


def insert_halt(conn: Connection, account: str, halted: bool, reason: str, numbers: Mapping[str, Any]) -> None:
    """Halt (or release) ``account`` with the reason and its numbers."""
    conn.execute(
        text(
            "insert into audit.account_halts (account, halted, reason, numbers) values (:a, :h, :r, cast(:n as jsonb))"
        ),
        {"a": account, "h": halted, "r": reason, "n": json.dumps(numbers, default=str)},
    )
