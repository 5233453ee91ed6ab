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

The switch itself (its state, turning it on and off, its history) lives in ``alphaloom.ops.kill_switch``; this module
is only the execution side: ``cancel_open_orders_now`` is what the CLI and the console run when it goes on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text

from alphaloom.domain import ClientOrderId, OrderStatus, Symbol
from alphaloom.errors import AlphaLoomError
from alphaloom.records.runs import recorded_run
from alphaloom.settings import Settings
from execution.algos.schedule import cancel_all_scheduled
from execution.brokers.base import Broker, CancellingBroker
from execution.brokers.factory import all_brokers
from execution.orders.state import transition
from execution.orders.store import EventRow, write_report
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


def cancel_open_orders_now(
    engine: Engine, settings: Settings, reason: str, *, source: str | None = None
) -> CancelSummary:
    """Cancel what is still open at every broker, as one recorded run (``kill_switch_cancel``, its parameters the
    reason and, when given, the ``source`` face). A broker that cannot be built is named in ``errors`` like one whose
    cancel failed; the others are still reached."""
    parameters = {"reason": reason} if source is None else {"reason": reason, "source": source}
    unreachable: dict[str, str] = {}
    with recorded_run(engine, "kill_switch_cancel", parameters) as run_id, engine.begin() as conn:
        brokers = all_brokers(engine, settings, errors=unreachable)
        summary = cancel_open_orders(conn, brokers, run_id=run_id, event_time=datetime.now(UTC), reason=reason)
    summary.errors.update(unreachable)
    return summary


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
    ours: Sequence[tuple[str, str, str]] = conn.execute(
        text("select client_order_id, symbol, status from audit.orders where venue = :v and status = any(:open) "
             "and (cast(:a as text) is null or account = :a) order by created_at"),
        {"v": broker.name, "open": list(OPEN), "a": getattr(broker, "account", None)},
    ).all()  # fmt: skip
    for coid, symbol, status in ours:
        report = broker.cancel(ClientOrderId(coid), Symbol(symbol))
        if report is None and getattr(broker, "live", False):
            _cancel_requested(conn, coid, status, run_id=run_id, event_time=event_time, why=why)
            summary.unconfirmed.append(ClientOrderId(coid))
            continue
        if report is None:  # the paper venue never saw it: nothing to cancel there, but it must never be sent now
            _cancel_unknown(
                conn, ClientOrderId(coid), OrderStatus(status), run_id=run_id, event_time=event_time, why=why
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


def _cancel_unknown(
    conn: Connection, coid: ClientOrderId, status: OrderStatus, *, run_id: str, event_time: datetime, why: str
) -> None:
    """An order the paper venue never saw: cancelled on our side, through the order state machine (its ``cancelled``
    event and status in one statement)."""
    target = transition(status, OrderStatus.CANCELLED)
    event = EventRow(status, target, {"reason": why, "venue": "order unknown to the venue"}, "cancelled")
    write_report(conn, run_id=run_id, client_order_id=coid, event_time=event_time, events=[event], booking=None,
                 status=target, venue_order_id=None, filled_quantity=None)  # fmt: skip
