"""Venue reports brought into the audit rows: an order's events along the transition table (``execution.orders.state``),
its new fills, position and cash (``execution.orders.store``), in one statement per report.

- ``apply_report``: the one place a report is applied, for a new order (inserted with it) or a recorded one;
- ``reconcile_existing``: an order that exists already is never sent again; when its outcome was not final, the venue
  is asked by client order id;
- ``record_unknown`` / ``record_rejection``: a submit whose outcome is unknown, or that the venue refused outright;
- ``apply_venue_report`` (kill-switch cancels, reconciliation, venue-held stops) and ``book_journaled_order`` (an order
  found at its venue from a journaled attempt that was never recorded): reports applied outside ``execute``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from alphaloom.domain import (
    AccountId,
    ClientOrderId,
    DecisionId,
    OrderIntent,
    OrderStatus,
    Side,
    Symbol,
    quote_currency,
    require_utc,
)
from execution.accounts.holdings import Holding, apply_fill, cash_change, fill_fee_in
from execution.accounts.holdings import fee_cash as fee_cash_of
from execution.algos.splitting import arrival_slippage
from execution.brokers.base import Broker, BrokerReport, OrderType
from execution.orders.outcomes import OrderOutcome
from execution.orders.state import is_terminal, path_to, transition
from execution.orders.store import DB_STORE, EventRow, FillBooking, NewOrder, OrderStore

# Told of every booking (fills, the position they leave, the cash they move) right after it is written: an in-memory
# copy of the account kept up to date without reading it back (``agents.replay_account`` in a replay).
BookingListener = Callable[[FillBooking], None]


def apply_report(
    conn: Connection,
    *,
    run_id: str,
    current: OrderStatus,
    report: BrokerReport,
    account: AccountId,
    base_currency: str,
    event_time: datetime,
    holding: Holding | None = None,
    new_order: NewOrder | None = None,
    arrival_price: Decimal | None = None,
    on_booking: BookingListener | None = None,
    store: OrderStore = DB_STORE,
) -> OrderStatus:
    """Bring the recorded order up to the venue's report: events along the transition table, then the fills not
    booked yet (by fill id ``<client order id>-<n>``), position, cash and status, written in one statement.
    ``new_order``: the order is not recorded yet (so no fill is booked either) and is inserted with the report;
    ``holding``: the position already read (and locked) by the caller. With an arrival price (the new order's, else
    ``arrival_price``: the one recorded with the order), the final event records the fills' slippage versus it.
    ``on_booking`` is told of the booking once written; ``store``: where the order's rows are read and written.
    Returns the new status."""
    coid = report.client_order_id
    if new_order is not None:
        arrival_price = new_order.arrival_price
    booked: set[str] = set() if new_order is not None else store.booked_fills(conn, coid)
    new_fills = [(f"{coid}-{n}", fill) for n, fill in enumerate(report.fills) if f"{coid}-{n}" not in booked]
    steps = path_to(current, report.status)
    if not steps and new_fills and current is OrderStatus.PARTIALLY_FILLED:
        steps = [OrderStatus.PARTIALLY_FILLED]
    final_details: dict[str, Any] = {
        "venue_order_id": report.venue_order_id,
        "fill_ids": [fid for fid, _ in new_fills],
        "reason": report.reason,
    }
    if arrival_price is not None and report.fills:
        final_details.update(arrival_slippage(report.fills, arrival_price))
    events, status = [], current
    for step in steps:
        details = final_details if step is steps[-1] else {"venue_order_id": report.venue_order_id}
        events.append(EventRow(status, transition(status, step), details))
        status = step
    booking = None
    if new_fills:
        symbol = new_fills[0][1].symbol
        if holding is None:
            holding = store.holding(conn, account, symbol)
        prior_avg_price = holding.avg_price
        cash = Decimal(0)
        fee_cash: dict[str, Decimal] = {}
        for _, fill in new_fills:
            charged = fill_fee_in(fill)
            holding = apply_fill(holding, side=fill.side, quantity=fill.quantity, price=fill.price, fee=fill.fee,
                                 fee_in=charged)  # fmt: skip
            cash += cash_change(side=fill.side, quantity=fill.quantity, price=fill.price, fee=fill.fee, fee_in=charged)
            if (paid := fee_cash_of(fill)) is not None:
                fee_cash[paid[0]] = fee_cash.get(paid[0], Decimal(0)) + paid[1]
        # cash moves in the symbol's quote currency; a fee outside both (BNB; USD on USD/JPY at OANDA) in its own balance
        booking = FillBooking(new_fills, account, symbol, holding, quote_currency(symbol, base_currency), cash,
                              fee_cash, prior_avg_price)  # fmt: skip
    store.write_report(conn, run_id=run_id, client_order_id=coid, event_time=event_time, events=events,
                       booking=booking, status=status, venue_order_id=report.venue_order_id,
                       filled_quantity=report.filled_quantity, new_order=new_order)  # fmt: skip
    if booking is not None and on_booking is not None:
        on_booking(booking)
    return status


def record_unknown(
    conn: Connection,
    exc: Exception,
    run_id: str,
    coid: ClientOrderId,
    event_time: datetime,
    new_order: NewOrder,
    store: OrderStore = DB_STORE,
) -> None:
    """A submit whose outcome is unknown (timeout, dropped connection): the venue may have the order, so it is written
    as new -> submitted and reconciled by client order id before anything is resent."""
    unknown = {"outcome": "unknown", "error": f"{type(exc).__name__}: {exc}"}
    store.write_report(conn, run_id=run_id, client_order_id=coid, event_time=event_time,
                 events=[EventRow(OrderStatus.NEW, transition(OrderStatus.NEW, OrderStatus.SUBMITTED), unknown)], booking=None,
                 status=OrderStatus.SUBMITTED, venue_order_id=None, filled_quantity=None, new_order=new_order)  # fmt: skip


def record_rejection(
    conn: Connection,
    exc: Exception,
    run_id: str,
    coid: ClientOrderId,
    event_time: datetime,
    new_order: NewOrder,
    store: OrderStore = DB_STORE,
) -> OrderOutcome:
    """A submit the broker refused outright (kill switch, venue rejection): the order is written as new -> rejected
    with the reason, so it is never resent."""
    reason = f"{type(exc).__name__}: {exc}"
    store.write_report(conn, run_id=run_id, client_order_id=coid, event_time=event_time,
                 events=[EventRow(OrderStatus.NEW, transition(OrderStatus.NEW, OrderStatus.REJECTED), {"reason": reason})],
                 booking=None,
                 status=OrderStatus.REJECTED, venue_order_id=None, filled_quantity=None, new_order=new_order)  # fmt: skip
    return OrderOutcome(coid, OrderStatus.REJECTED, reason=reason)


def reconcile_existing(
    conn: Connection,
    *,
    run_id: str,
    broker: Broker,
    coid: ClientOrderId,
    status: OrderStatus,
    account: AccountId,
    base_currency: str,
    event_time: datetime,
    on_booking: BookingListener | None = None,
    store: OrderStore = DB_STORE,
) -> OrderOutcome:
    """An order that already exists is never sent again; when its outcome was not final, ask the venue."""
    if is_terminal(status):
        return OrderOutcome(coid, status, reason="already recorded")
    report = broker.lookup(coid)
    if report is None:
        return OrderOutcome(coid, status, reason="not known to the venue; left for a human to resolve")
    arrival = store.arrival_price(conn, coid)
    new_status = apply_report(
        conn,
        run_id=run_id,
        current=status,
        report=report,
        account=account,
        base_currency=base_currency,
        event_time=event_time,
        arrival_price=arrival,
        on_booking=on_booking,
        store=store,
    )
    return OrderOutcome(coid, new_status, report.fills, "reconciled with the venue")


def book_journaled_order(
    conn: Connection,
    *,
    run_id: str,
    report: BrokerReport,
    account: AccountId,
    venue: str,
    details: Mapping[str, Any],
    event_time: datetime,
) -> OrderStatus:
    """Record an order found at its venue from a journaled attempt that has no order (the process died before the
    decision's transaction committed): the order row as journaled, with the venue's report (events, fills, position,
    cash), under the caller's account lock.

    Its decision was rolled back with that transaction, and an order must point at a decision, so the decision row
    is recorded again from the journal (``config_version`` ``recovered``, action the order's side, the journaled
    run in ``inputs``); a later run that recomputes the same decision finds both and sends nothing."""
    event_time = require_utc(event_time, "event_time")
    intent = OrderIntent(DecisionId(str(details["decision_id"])), account, Symbol(str(details["symbol"])),
                         Side(str(details["side"])), Decimal(str(details["quantity"])),
                         Decimal(str(details["reference_price"])), int(details.get("leg") or 0))  # fmt: skip
    decided_at = details.get("event_time")
    conn.execute(
        text(
            """insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action, score,
                                            config_version, inputs)
               values (:d, :r, :a, :s, :tf, :t, :act, 0, 'recovered', cast(:inputs as jsonb))
               on conflict (decision_id) do nothing"""
        ),
        {"d": intent.decision_id, "r": run_id, "a": account, "s": intent.symbol,
         "tf": details.get("timeframe") or "unknown",
         "t": datetime.fromisoformat(decided_at) if decided_at else event_time, "act": intent.side.value,
         "inputs": json.dumps({"recovered_from": "audit.submit_attempts", "client_order_id": report.client_order_id,
                               "journaled_run_id": details.get("run_id")})},
    )  # fmt: skip
    base_currency: str = conn.execute(
        text("select base_currency from audit.accounts where id = :a"), {"a": account}
    ).scalar_one()
    limit = details.get("limit_price")
    arrival = details.get("arrival_price")
    new_order = NewOrder(intent, venue, details.get("parent"), None if arrival is None else Decimal(str(arrival)),
                         order_type=OrderType(str(details.get("order_type") or "market")),
                         limit_price=None if limit is None else Decimal(str(limit)))  # fmt: skip
    return apply_report(conn, run_id=run_id, current=OrderStatus.NEW, report=report, account=account,
                         base_currency=base_currency, event_time=event_time, new_order=new_order)  # fmt: skip


def apply_venue_report(
    conn: Connection, *, run_id: str, report: BrokerReport, event_time: datetime
) -> OrderStatus | None:
    """Bring the recorded order ``report.client_order_id`` up to the venue's report (events, fills, position, cash),
    as ``execute`` does; None when there is no such order in ``audit.orders``."""
    row = conn.execute(
        text(
            """select o.status, o.account, o.arrival_price, a.base_currency from audit.orders o
               join audit.accounts a on a.id = o.account where o.client_order_id = :c for update of o"""
        ),
        {"c": report.client_order_id},
    ).first()
    if row is None:
        return None
    return apply_report(conn, run_id=run_id, current=OrderStatus(row.status), report=report, account=row.account,
                         base_currency=row.base_currency, event_time=require_utc(event_time, "event_time"),
                         arrival_price=None if row.arrival_price is None else Decimal(row.arrival_price))  # fmt: skip
