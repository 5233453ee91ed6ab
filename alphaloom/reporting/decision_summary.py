"""What a decision did and why, from its audit rows: the action and consensus score, each agent's vote, the orders
made or the reason none was (``why``). Read by ``alphaloom decide`` (before a dry run rolls its rows back),
``alphaloom decisions`` and ``alphaloom explain DECISION_ID``.

``why`` is pure: it reads a ``DecisionSummary`` and names the first reason in this order: an execution refusal
(kill switch at the broker, guard trip), a denied risk check with its numbers, no order needed (hold below the
consensus threshold, already long, nothing to sell).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from alphaloom.records.decisions import checks_of_decisions, decision_briefs, votes_of_decisions
from alphaloom.records.orders import orders_of_decisions


@dataclass(frozen=True)
class Vote:
    agent: str
    action: str
    confidence: float
    skipped: bool
    rationale: str


@dataclass(frozen=True)
class Check:
    name: str
    approved: bool
    reason: str
    numbers: dict[str, Any]


@dataclass(frozen=True)
class OrderLine:
    client_order_id: str
    side: str
    quantity: Decimal
    status: str


@dataclass(frozen=True)
class DecisionSummary:
    decision_id: str
    run_id: str
    account: str
    symbol: str
    as_of: datetime
    action: str
    score: float
    threshold: float | None
    position: Decimal
    known_at: datetime | None  # when the feature row it read became known
    intents: list[dict[str, Any]]
    votes: list[Vote] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    orders: list[OrderLine] = field(default_factory=list)
    trips: list[Check] = field(default_factory=list)  # execution guard trips (audit.guard_trips)


def _numbers(numbers: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(numbers.items()))


def why(summary: DecisionSummary, *, dry_run: bool = False) -> str:
    """One line: the orders made, what a dry run would have sent, or why no order was made."""
    if summary.orders:
        return "; ".join(f"{o.side} {o.quantity:f} ({o.status}) {o.client_order_id}" for o in summary.orders)
    for trip in summary.trips:
        return f"refused by execution guard {trip.name}: {trip.reason}" + (
            f" ({_numbers(trip.numbers)})" if trip.numbers else ""
        )
    denied = [c for c in summary.checks if not c.approved]
    if denied:
        return "; ".join(
            f"risk check {c.name} denied: {c.reason}" + (f" ({_numbers(c.numbers)})" if c.numbers else "")
            for c in denied
        )
    approved = [i for i in summary.intents if i.get("approved", True)]
    if approved:
        verb = "dry run: would send" if dry_run else "approved, not sent:"
        return f"{verb} " + "; ".join(f"{i['side']} {i['quantity']}" for i in approved)
    if summary.action == "hold":
        if summary.threshold is None:
            return "hold: no signal"
        return f"hold: score {summary.score:+.3f} below the consensus threshold ±{summary.threshold:g}"
    if summary.action == "buy" and summary.position > 0:
        return f"buy signal but already long {summary.position:f}"
    if summary.action == "sell" and summary.position <= 0:
        return "sell signal but no position to sell"
    return f"{summary.action}: no order needed"


def summaries(
    conn: Connection,
    *,
    decision_ids: Sequence[str] | None = None,
    run_id: str | None = None,
    symbol: str | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> list[DecisionSummary]:
    """Decisions matching every filter given (newest first), each with its votes, risk checks, orders and trips."""
    rows = decision_briefs(conn, decision_ids=decision_ids, run_id=run_id, symbol=symbol, since=since, limit=limit)
    if not rows:
        return []
    ids = [r.decision_id for r in rows]
    votes: dict[str, list[Vote]] = {i: [] for i in ids}
    for r in votes_of_decisions(conn, ids):
        out = r.output or {}
        votes[r.decision_id].append(Vote(r.agent, str(out.get("action", "?")), float(out.get("confidence") or 0),
                                         bool(r.skipped), str(out.get("rationale") or "")))  # fmt: skip
    checks: dict[str, list[Check]] = {i: [] for i in ids}
    for r in checks_of_decisions(conn, ids):
        checks[r.decision_id].append(Check(r.check_name, r.approved, r.reason, dict(r.numbers or {})))
    orders: dict[str, list[OrderLine]] = {i: [] for i in ids}
    for r in orders_of_decisions(conn, ids):
        orders[r.decision_id].append(OrderLine(r.client_order_id, r.side, r.quantity, r.status))
    trips: dict[str, list[Check]] = {i: [] for i in ids}
    for r in conn.execute(
        text("select decision_id, guard, reason, numbers from audit.guard_trips where decision_id = any(:ids) "
             "order by id"),
        {"ids": ids},
    ):  # fmt: skip
        trips[r.decision_id].append(Check(r.guard, False, r.reason, dict(r.numbers or {})))
    result = []
    for r in rows:
        inputs = r.inputs or {}
        known_at = (inputs.get("features") or {}).get("known_at")
        threshold = ((inputs.get("config") or {}).get("consensus") or {}).get("threshold")
        position = Decimal(str((inputs.get("position") or {}).get("quantity", "0")))
        summary = DecisionSummary(
            r.decision_id, r.run_id, r.account, r.symbol, r.as_of, r.action, float(r.score),
            None if threshold is None else float(threshold), position,
            None if known_at is None else datetime.fromisoformat(known_at), list(inputs.get("intents") or []),
            votes[r.decision_id], checks[r.decision_id], orders[r.decision_id], trips[r.decision_id],
        )  # fmt: skip
        result.append(summary)
    return result
