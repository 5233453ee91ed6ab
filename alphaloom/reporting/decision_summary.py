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

from alphaloom.domain import Symbol
from alphaloom.records.decisions import DecisionBrief, checks_of_decisions, decision_briefs, votes_of_decisions
from alphaloom.records.orders import orders_of_decisions
from alphaloom.reporting.explain import RiskCheckRow


@dataclass(frozen=True)
class Vote:
    agent: str
    action: str
    confidence: float
    skipped: bool
    rationale: str


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
    checks: list[RiskCheckRow] = field(default_factory=list)
    orders: list[OrderLine] = field(default_factory=list)
    trips: list[RiskCheckRow] = field(default_factory=list)  # execution guard trips (audit.guard_trips)


def _numbers(numbers: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(numbers.items()))


def why(summary: DecisionSummary, *, dry_run: bool = False) -> str:
    """One line: the orders made, what a dry run would have sent, or why no order was made."""
    if summary.orders:
        return "; ".join(f"{o.side} {o.quantity:f} ({o.status}) {o.client_order_id}" for o in summary.orders)
    for trip in summary.trips:
        return f"refused by execution guard {trip.check_name}: {trip.reason}" + (
            f" ({_numbers(trip.numbers)})" if trip.numbers else ""
        )
    denied = [c for c in summary.checks if not c.approved]
    if denied:
        return "; ".join(
            f"risk check {c.check_name} denied: {c.reason}" + (f" ({_numbers(c.numbers)})" if c.numbers else "")
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
    symbol: Symbol | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> list[DecisionSummary]:
    """Decisions matching every filter given (newest first), each with its votes, risk checks, orders and trips."""
    rows = decision_briefs(conn, decision_ids=decision_ids, run_id=run_id, symbol=symbol, since=since, limit=limit)
    if not rows:
        return []
    ids = [r.decision_id for r in rows]
    votes, checks = _votes(conn, ids), _checks(conn, ids)
    orders, trips = _orders(conn, ids), _trips(conn, ids)
    return [
        _summary(brief, votes[brief.decision_id], checks[brief.decision_id], orders[brief.decision_id],
                 trips[brief.decision_id])
        for brief in rows
    ]  # fmt: skip


def _votes(conn: Connection, ids: list[str]) -> dict[str, list[Vote]]:
    """Each decision's agent votes, in recorded order."""
    votes: dict[str, list[Vote]] = {i: [] for i in ids}
    for v in votes_of_decisions(conn, ids):
        out = v.output or {}
        votes[v.decision_id].append(Vote(v.agent, str(out.get("action", "?")), float(out.get("confidence") or 0),
                                         bool(v.skipped), str(out.get("rationale") or "")))  # fmt: skip
    return votes


def _checks(conn: Connection, ids: list[str]) -> dict[str, list[RiskCheckRow]]:
    """Each decision's risk checks, in recorded order."""
    checks: dict[str, list[RiskCheckRow]] = {i: [] for i in ids}
    for c in checks_of_decisions(conn, ids):
        checks[c.decision_id].append(RiskCheckRow(c.check_name, c.approved, c.reason, dict(c.numbers or {})))
    return checks


def _orders(conn: Connection, ids: list[str]) -> dict[str, list[OrderLine]]:
    """Each decision's orders."""
    orders: dict[str, list[OrderLine]] = {i: [] for i in ids}
    for o in orders_of_decisions(conn, ids):
        orders[o.decision_id].append(OrderLine(o.client_order_id, o.side, o.quantity, o.status))
    return orders


def _trips(conn: Connection, ids: list[str]) -> dict[str, list[RiskCheckRow]]:
    """Each decision's execution guard trips (``audit.guard_trips``), as refused checks named by the guard."""
    trips: dict[str, list[RiskCheckRow]] = {i: [] for i in ids}
    for t in conn.execute(
        text("select decision_id, guard, reason, numbers from audit.guard_trips where decision_id = any(:ids) "
             "order by id"),
        {"ids": ids},
    ):  # fmt: skip
        trips[t.decision_id].append(RiskCheckRow(t.guard, False, t.reason, dict(t.numbers or {})))
    return trips


def _summary(r: DecisionBrief, votes: list[Vote], checks: list[RiskCheckRow], orders: list[OrderLine],
             trips: list[RiskCheckRow]) -> DecisionSummary:  # fmt: skip
    """One decision's summary: its brief row and the threshold, position and feature time its inputs recorded."""
    inputs = r.inputs or {}
    known_at = (inputs.get("features") or {}).get("known_at")
    threshold = ((r.config or {}).get("consensus") or {}).get("threshold")  # the config its version names
    position = Decimal(str((inputs.get("position") or {}).get("quantity", "0")))
    return DecisionSummary(
        r.decision_id, r.run_id, r.account, r.symbol, r.as_of, r.action, float(r.score),
        None if threshold is None else float(threshold), position,
        None if known_at is None else datetime.fromisoformat(known_at), list(inputs.get("intents") or []),
        votes, checks, orders, trips,
    )  # fmt: skip
