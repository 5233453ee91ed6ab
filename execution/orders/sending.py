"""The send stage of ``execution.submit.execute``, and the one other way an order leaves: a standing order.

``send_order``: the attempt is journaled and committed (``execution.orders.journal``: apart from the caller's
transaction, unless the venue lives in this process's memory, a replay's), the order submitted, and the
order row with its events, fills, position and cash written in one statement with the venue's answer
(``execution.orders.venue_reports``): under the account lock nobody else can record this client id meanwhile, and
the journal (committed before the submit) is what makes a crash in between recoverable. A venue refusal is recorded
as rejected (never resent); a submit whose outcome is unknown is recorded as submitted and reconciled by client
order id before anything is resent.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from alphaloom.domain import ClientOrderId, OrderIntent, OrderStatus, client_order_id_for, require_utc
from alphaloom.errors import (
    ConfigError,
    KillSwitchEngagedError,
    OrderRejectedError,
    UnknownOrderStateError,
    VenueTemporaryError,
)
from alphaloom.ops.kill_switch import kill_switch_state
from execution.accounts.registry import LIVE_MODES
from execution.brokers.base import Broker, OrderRequest, OrderType
from execution.orders.journal import journal_apart, record_attempt
from execution.orders.outcomes import Disposition, OrderOutcome, Outcome
from execution.orders.send_context import SendContext
from execution.orders.store import NewOrder, OrderState
from execution.orders.venue_reports import apply_report, record_rejection, record_unknown


def send_order(
    conn: Connection, new_order: NewOrder, state: OrderState, ctx: SendContext, coid: ClientOrderId
) -> Outcome:
    """Journal, submit and record ``new_order`` (see the module docstring): ``SUBMITTED`` with the venue's report,
    ``REJECTED`` or ``UNKNOWN``. ``coid``: its client order id, ``client_order_id_for`` its intent's decision id and
    leg (the plan's: worked out once per order)."""
    intent, broker = new_order.intent, ctx.broker
    request = OrderRequest(
        client_order_id=coid,
        account=intent.account,
        symbol=intent.symbol,
        side=intent.side,
        quantity=intent.quantity,
        reference_price=intent.reference_price,
        submitted_at=ctx.event_time,
        bar_volume=state.last_volume,
    )
    details = journal_details(new_order, run_id=ctx.run_id, event_time=ctx.event_time,
                              timeframe=ctx.settings.timeframe)  # fmt: skip
    if journal_apart(broker):
        record_attempt(conn, coid, intent.account, new_order.venue, details)
    else:  # a replay's venue: journaled in the statement that records the order, in the same transaction
        new_order = new_order.journaled(details)
    try:
        report = broker.submit(request)
    except (KillSwitchEngagedError, OrderRejectedError) as exc:
        rejected = record_rejection(conn, exc, ctx.run_id, coid, ctx.event_time, new_order, ctx.store)
        return Outcome(Disposition.REJECTED, coid, rejected)
    except (UnknownOrderStateError, VenueTemporaryError) as exc:
        record_unknown(conn, exc, ctx.run_id, coid, ctx.event_time, new_order, ctx.store)
        return Outcome(Disposition.UNKNOWN, coid)
    status = apply_report(conn, run_id=ctx.run_id, current=OrderStatus.NEW, report=report, account=intent.account,
                          base_currency=state.base_currency, event_time=ctx.event_time, holding=state.holding,
                          new_order=new_order, on_booking=ctx.on_booking, store=ctx.store)  # fmt: skip
    return Outcome(Disposition.SUBMITTED, coid, OrderOutcome(coid, status, report.fills, report.reason))


def journal_details(
    new_order: NewOrder,
    *,
    run_id: str,
    event_time: datetime,
    timeframe: str | None = None,
    stop_price: Decimal | None = None,
) -> dict[str, Any]:
    """The order as it is about to be sent, for the submit journal (``execution.orders.journal``): enough to look it up at
    its venue and to record it (``book_journaled_order``) if the decision that sends it is never committed."""
    intent = new_order.intent
    optional = {
        "limit_price": new_order.limit_price,
        "stop_price": stop_price,
        "arrival_price": new_order.arrival_price,
    }
    return {
        "decision_id": intent.decision_id, "leg": intent.leg, "symbol": intent.symbol, "side": intent.side.value,
        "quantity": str(intent.quantity), "reference_price": str(intent.reference_price),
        "order_type": str(new_order.order_type), "parent": new_order.parent, "run_id": run_id,
        "event_time": event_time.isoformat(), "timeframe": timeframe,
        **{k: None if v is None else str(v) for k, v in optional.items()},
    }  # fmt: skip


def place_standing_order(
    conn: Connection,
    intent: OrderIntent,
    *,
    order_type: OrderType,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    run_id: str,
    broker: Broker,
    event_time: datetime,
) -> OrderOutcome:
    """Place an order that rests at the venue (a venue-native protective stop), recorded like any order: the
    ``audit.orders`` row with its type and prices, events, the submit journal, fills when the venue reports them
    (``apply_venue_report``). Never sent twice: an existing order with the intent's client id is returned as it is.
    The kill switch and live arming are checked first; the per-run and notional guards are not (it reduces risk)."""
    event_time = require_utc(event_time, "event_time")
    coid = client_order_id_for(intent.decision_id, intent.leg)
    existing = conn.execute(text("select status from audit.orders where client_order_id = :c"), {"c": coid}).scalar()
    if existing is not None:
        return OrderOutcome(coid, OrderStatus(existing), reason="already placed")
    switch = kill_switch_state(conn)
    if switch.engaged:
        raise KillSwitchEngagedError(f"kill switch engaged: {switch.reason}; {coid} not placed")
    account = conn.execute(
        text("select base_currency, mode, live_enabled from audit.accounts where id = :a"), {"a": intent.account}
    ).first()
    if account is None:
        raise ConfigError(
            f"account {intent.account!r} does not exist; create it with execution.accounts.registry.ensure_account"
        )
    if broker.live and not (account.live_enabled and account.mode in LIVE_MODES):
        raise ConfigError(f"account {intent.account!r} (mode {account.mode}) is not armed for live orders")
    new_order = NewOrder(intent, broker.name, None, None, order_type=order_type, limit_price=limit_price)
    request = OrderRequest(coid, intent.account, intent.symbol, intent.side, intent.quantity, intent.reference_price,
                           event_time, order_type=order_type, limit_price=limit_price, stop_price=stop_price)  # fmt: skip
    record_attempt(conn, coid, intent.account, broker.name,
                   journal_details(new_order, run_id=run_id, event_time=event_time, stop_price=stop_price),
                   apart=journal_apart(broker))  # fmt: skip
    try:
        report = broker.submit(request)
    except (KillSwitchEngagedError, OrderRejectedError) as exc:
        return record_rejection(conn, exc, run_id, coid, event_time, new_order)
    except (UnknownOrderStateError, VenueTemporaryError) as exc:
        record_unknown(conn, exc, run_id, coid, event_time, new_order)
        return OrderOutcome(coid, OrderStatus.SUBMITTED, reason="outcome unknown; reconcile by client order id")
    status = apply_report(conn, run_id=run_id, current=OrderStatus.NEW, report=report, account=intent.account,
                           base_currency=account.base_currency, event_time=event_time, new_order=new_order)  # fmt: skip
    return OrderOutcome(coid, status, report.fills, report.reason)
