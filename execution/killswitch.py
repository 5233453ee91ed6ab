"""When the kill switch is turned on: cancel the orders still open at every broker (setting
``kill_switch_cancels_open_orders``, default on).

For each broker that can cancel (``CancellingBroker``): every order of ours still open there (``audit.orders`` with
status new / submitted / partially_filled and that broker's venue) is cancelled at the venue and the venue's answer is
applied through the state machine, so each cancel is an ``audit.order_events`` row (``event`` ``cancelled``, details
naming the kill switch). An order the venue does not list: at the paper venue (its book is our own database,
transactional: not listed means never seen) it goes to cancelled; at a live venue it may only be listed late (an
order whose submit timed out), so it is never marked cancelled on our side alone: it stays open in our books (a
``cancel_requested`` event, ``unconfirmed`` in the summary) and reconciliation books what the venue later reports
(and, while the switch is on, cancels it there once listed). Orders open at the venue that are not ours
(placed by hand, another system) are cancelled too and reported as ``foreign``. One broker failing does not stop the
others: its error is in ``errors``. TWAP slices still scheduled (``audit.scheduled_slices``, every account's) are
cancelled first: they never leave (``slices_cancelled``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Connection, text

from alphaloom.domain import ClientOrderId, OrderStatus
from alphaloom.errors import AlphaLoomError
from execution.algos.schedule import cancel_all_scheduled
from execution.brokers.base import Broker, CancellingBroker
from execution.orders.venue_reports import apply_venue_report

OPEN = ("new", "submitted", "partially_filled")


@dataclass
class CancelSummary:
    """``cancelled``: ours, now cancelled; ``not_cancelled``: ours that the venue had already filled or expired;
    ``foreign``: open at the venue but not ours, cancelled there (no audit order to record them against);
    ``unconfirmed``: ours that a live venue does not list (yet): left open until the venue confirms."""

    cancelled: list[ClientOrderId] = field(default_factory=list)
    unconfirmed: list[ClientOrderId] = field(default_factory=list)
    not_cancelled: list[ClientOrderId] = field(default_factory=list)
    foreign: list[ClientOrderId] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    slices_cancelled: list[str] = field(default_factory=list)


def cancel_open_orders(
    conn: Connection, brokers: Sequence[Broker], *, run_id: str, event_time: datetime, reason: str
) -> CancelSummary:
    summary = CancelSummary()
    # the switch is global: no scheduled slice of any account may leave later
    summary.slices_cancelled = cancel_all_scheduled(conn, f"kill switch: {reason}", run_id)
    for broker in brokers:
        if not isinstance(broker, CancellingBroker):
            continue
        try:
            _cancel_at(conn, broker, run_id=run_id, event_time=event_time, reason=reason, summary=summary)
        except AlphaLoomError as exc:
            summary.errors[broker.name] = f"{type(exc).__name__}: {exc}"
    return summary


def _cancel_at(
    conn: Connection,
    broker: CancellingBroker,
    *,
    run_id: str,
    event_time: datetime,
    reason: str,
    summary: CancelSummary,
) -> None:
    why = f"kill switch: {reason}"
    ours = conn.execute(
        text("select client_order_id, symbol, status from audit.orders where venue = :v and status = any(:open) "
             "and (cast(:a as text) is null or account = :a) order by created_at"),
        {"v": broker.name, "open": list(OPEN), "a": getattr(broker, "account", None)},
    ).all()  # fmt: skip
    for coid, symbol, status in ours:
        report = broker.cancel(ClientOrderId(coid), symbol)
        if report is None and getattr(broker, "live", False):
            _cancel_requested(conn, coid, status, run_id=run_id, event_time=event_time, why=why)
            summary.unconfirmed.append(ClientOrderId(coid))
            continue
        if report is None:  # the paper venue never saw it: nothing to cancel there, but it must never be sent now
            conn.execute(
                text(
                    """insert into audit.order_events (client_order_id, run_id, event, from_status, to_status,
                                                       event_ts, details)
                       values (:c, :r, 'cancelled', :f, 'cancelled', :ts, cast(:d as jsonb))"""
                ),
                {"c": coid, "r": run_id, "f": status, "ts": event_time,
                 "d": json.dumps({"reason": why, "venue": "order unknown to the venue"})},
            )  # fmt: skip
            conn.execute(
                text("update audit.orders set status = 'cancelled', updated_at = now() where client_order_id = :c"),
                {"c": coid},
            )
            summary.cancelled.append(ClientOrderId(coid))
            continue
        final = apply_venue_report(conn, run_id=run_id, report=replace(report, reason=why), event_time=event_time)
        (summary.cancelled if final is OrderStatus.CANCELLED else summary.not_cancelled).append(ClientOrderId(coid))
    known = {c for c, _, _ in ours}
    for report in broker.open_orders():
        if report.client_order_id not in known and report.symbol:
            broker.cancel(report.client_order_id, report.symbol)
            summary.foreign.append(report.client_order_id)


def _cancel_requested(conn: Connection, coid: str, status: str, *, run_id: str, event_time: datetime, why: str) -> None:
    """A live venue does not list the order (yet): the cancel is recorded as requested, the status stays as it is (not
    terminal), so reconciliation keeps looking it up and books what the venue reports."""
    conn.execute(
        text(
            """insert into audit.order_events (client_order_id, run_id, event, from_status, to_status, event_ts, details)
               values (:c, :r, 'cancel_requested', :f, :f, :ts, cast(:d as jsonb))"""
        ),
        {"c": coid, "r": run_id, "f": status, "ts": event_time,
         "d": json.dumps({"reason": why, "venue": "not listed by the venue (yet): left open until it confirms"})},
    )  # fmt: skip
