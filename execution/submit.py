"""Execution: turn approved ``OrderIntent``s into orders at a broker, exactly once, and book what filled.

``execute`` runs three stages, each with a typed outcome (``execution.orders.outcomes.Disposition``):

1. plan (``execution.algos.planning``): split large intents into TWAP / iceberg children (a TWAP's whole schedule
   recorded before its first slice is sent; the later slices are sent by ``execution.algos.release`` when due,
   through this same path), cancel the account's TWAP slices of that symbol still scheduled on the other side (a later
   decision supersedes them), and with a ``LegRoutingBroker`` replace each order by its route legs across venues
   (``execution.algos.routing``), the plan committed before anything is sent;
2. for each order, in order (on the caller's connection; the caller's transaction decides), under a per-account
   advisory lock, its state read in one statement (``execution.orders.store``), then:

   - an order with its client order id (``client_order_id_for(decision_id, leg)``) already exists -> nothing is
     sent (``DUPLICATE``), after reconciling with ``broker.lookup`` when its status was not final; likewise an order
     whose family was recorded in another shape (``OTHER_SHAPE``: a child whose parent exists unsplit, or whose
     siblings were split differently; an unsplit order with recorded children);
   - the submit journal (``execution.orders.journal``) shows an earlier attempt that never got recorded (a crash
     between submit and record) -> the venue is asked by client order id first; what it has is recorded
     (``RECOVERED``) and nothing is resent; only an order the venue never saw may be sent;
   - gate (``execution.safety.send_guards``): the kill switch (``BLOCKED``: no broker call), then live arming,
     account halt, daily loss limit, orders per run, the hard limits and long-only (``REFUSED``: sends nothing,
     raises nothing; every trip recorded in ``audit.guard_trips``, the check in ``audit.risk_checks`` as
     ``execution_guard``, denied or approved, with the numbers);
   - send (``execution.orders.sending``): the attempt journaled and committed, the order submitted, and the order row
     with its events (new -> submitted -> filled | expired...), fills, position and cash written in one statement
     (``SUBMITTED``; ``REJECTED`` or ``UNKNOWN`` when the venue refused it or its outcome is unknown);
3. the TWAP slices sent leave ``scheduled`` (``execution.algos.planning.settle_slices``).

Writes: ``audit.orders`` (with ``arrival_price``: the last trade at submit, and ``parent_client_order_id`` for child
orders), ``audit.order_events`` (``event_ts`` = ``event_time``; the final event of a filled order carries its
average fill price and slippage versus the arrival price, also when the order is reconciled later after an unknown
outcome), ``audit.fills``, ``audit.positions``,
``audit.balances`` (the account's base currency), ``audit.risk_checks``, ``audit.guard_trips``, ``audit.lineage``
(order -> decision, fill -> order), and ``audit.submit_attempts`` (committed separately). Cash moves in the
symbol's quote currency (``audit.balances`` per currency); views convert it into the base currency (``alphaloom.fx``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, time
from decimal import Decimal

from sqlalchemy import Connection

from alphaloom.domain import ClientOrderId, OrderIntent, OrderStatus, require_utc
from alphaloom.errors import ConfigError
from alphaloom.settings import Settings
from execution.accounts.registry import AccountLocks
from execution.algos.planning import PlannedOrder, plan_sends, settle_slices
from execution.algos.schedule import ScheduledSlice
from execution.brokers.base import Broker
from execution.orders.outcomes import Disposition, ExecutionResult, OrderOutcome, Outcome, Refusal
from execution.orders.send_context import SendContext, SliceGate
from execution.orders.sending import send_order
from execution.orders.store import DB_STORE, GuardRow, NewOrder, OrderState, OrderStore
from execution.orders.venue_reports import BookingListener, apply_report, reconcile_existing
from execution.safety.send_guards import GateDecision, gate_order, guard_name


def execute(
    conn: Connection,
    intents: Sequence[OrderIntent],
    *,
    run_id: str,
    broker: Broker,
    settings: Settings,
    event_time: datetime,
    last_prices: Mapping[str, Decimal] | None = None,
    parents: Mapping[ClientOrderId, ClientOrderId] | None = None,
    slices: Sequence[ScheduledSlice] = (),
    gate: SliceGate | None = None,
    replay: bool = False,
    on_booking: BookingListener | None = None,
    store: OrderStore = DB_STORE,
) -> ExecutionResult:
    """Send each intent at most once (see the module docstring). ``last_prices`` overrides the price-band reference;
    by default it is the newest ``raw.ohlcv`` close known at ``event_time``, else the intent's reference price.
    ``parents`` maps a child order's client id to its parent's (TWAP, iceberg, routed splits).

    A TWAP spread over time (``twap_duration_minutes`` > 0): the parent's whole schedule is recorded first
    (``execution.algos.schedule``), then only the slices due by ``event_time`` go on (the first); the others are
    returned in ``scheduled``. A retry finds the schedule and sends only what is due and not yet recorded; a retry
    split in another shape sends nothing. ``slices``: scheduled slices being released (``execution.algos.release``):
    sent as they are (not split again, no other slice superseded), measured against their parent's arrival price;
    with ``gate`` (the portfolio risk gate, built by the flows from ``agents.risk.gate``) each slice first passes it
    at ``event_time``: denied, it is refused with the gate's breaches (recorded like every guard trip); shrunk, the
    smaller order is sent.

    ``replay`` (a backtest step: one run holds every step of the replay): the per-run caps count this decision
    step's orders only, and guard trips are recorded without an alert each (the backtest counts them by reason and
    reports them once).

    ``on_booking``: told of every booking of fills this call writes (position and cash), as it is written.

    ``store`` (``execution.orders.store.OrderStore``): where each order's state is read and its rows written; the
    database by default, a replay's memory (``execution.orders.memory_store``) in a replay whose plans are plain
    orders (no splitting, no routing: the plan stage's own rows are in the database)."""
    event_time = require_utc(event_time, "event_time")
    ctx = SendContext(run_id, broker, settings, event_time, last_prices or {}, on_booking,
                      trip_alert=None if replay else "fat_finger", slice_gate=gate if slices else None,
                      releasing=bool(slices), per_step=replay, store=store)  # fmt: skip
    locks = AccountLocks(conn)
    plan = plan_sends(conn, intents, slices=slices, parents=parents or {}, broker=broker, settings=settings,
                      run_id=run_id, event_time=event_time, last_prices=ctx.last_prices, locks=locks)  # fmt: skip
    result = ExecutionResult()
    for held in plan.held:
        result.add(held)
    recorded: list[str] = []  # client ids recorded by this call (a child's siblings are not another shape)
    disposed: list[tuple[PlannedOrder, Outcome]] = []
    for order in plan.orders:
        store.lock(locks, order.intent.account)  # held until the transaction ends
        state = _read_state(conn, order, ctx, recorded)
        result.superseded += state.superseded
        outcome = _dispose(conn, order, state, ctx)
        if outcome.disposition.recorded_now:
            recorded.append(order.client_order_id)
        result.add(outcome)
        disposed.append((order, outcome))
    settle_slices(conn, plan, disposed, run_id=run_id)
    return result


def _read_state(conn: Connection, order: PlannedOrder, ctx: SendContext, recorded: list[str]) -> OrderState:
    """The order's state in one statement (a decision's intent also supersedes the other side's slices)."""
    intent, settings, t = order.intent, ctx.settings, ctx.event_time
    state = ctx.store.read_order_state(conn, account=intent.account, symbol=intent.symbol, client_order_id=order.client_order_id,
                             run_id=ctx.run_id, exchange=settings.exchange, timeframe=settings.timeframe,
                             bar_cutoff=ctx.bar_cutoff, day_start=datetime.combine(t.date(), time(0), tzinfo=t.tzinfo),
                             event_time=t, parent=order.parent, own=[*recorded, *order.family],
                             supersede=None if ctx.releasing else intent, per_step=ctx.per_step)  # fmt: skip
    if state.account_venue is None:
        raise ConfigError(
            f"account {intent.account!r} does not exist; create it with execution.accounts.registry.ensure_account"
        )
    return state


def _dispose(conn: Connection, order: PlannedOrder, state: OrderState, ctx: SendContext) -> Outcome:
    """One planned order: already there (recorded, or found at the venue) -> gate -> send."""
    coid = order.client_order_id
    if state.existing_status is not None:
        existing = reconcile_existing(conn, run_id=ctx.run_id, broker=ctx.broker, coid=coid,
                                      status=state.existing_status, account=order.intent.account,
                                      base_currency=state.base_currency, event_time=ctx.event_time,
                                      on_booking=ctx.on_booking, store=ctx.store)  # fmt: skip
        return Outcome(Disposition.DUPLICATE, coid, existing)
    if state.family_recorded:
        # Split differently (or not at all) by an earlier run: what that run recorded stands, nothing is added.
        reason = "its parent or siblings were recorded in another shape"
        return Outcome(Disposition.OTHER_SHAPE, coid, OrderOutcome(coid, OrderStatus.NEW, reason=reason))
    last_price = ctx.last_prices.get(order.intent.symbol) or state.last_close
    arrival_price = order.arrival_price if order.arrival_price is not None else last_price
    if state.attempted and (recovered := _recover(conn, order, state, ctx, arrival_price)) is not None:
        return recovered
    verdict = gate_order(conn, order.intent, coid, state, ctx, last_price=last_price)
    if verdict.decision is GateDecision.BLOCKED:
        return Outcome(Disposition.BLOCKED, coid)
    if verdict.decision is GateDecision.REFUSED:
        return Outcome(Disposition.REFUSED, coid, refusal=Refusal(verdict.intent, verdict.breaches))
    guard = GuardRow(guard_name(verdict.intent), True, "hard limits hold at execution", verdict.numbers)
    new_order = NewOrder(verdict.intent, order.venue, order.parent, arrival_price, guard)
    return send_order(conn, new_order, state, ctx, coid)


def _recover(
    conn: Connection, order: PlannedOrder, state: OrderState, ctx: SendContext, arrival_price: Decimal | None
) -> Outcome | None:
    """An earlier attempt's outcome is unknown (it crashed before recording): ask the venue before resending; what
    it has is recorded. None: the venue never saw it (it may be sent)."""
    coid, intent = order.client_order_id, order.intent
    report = ctx.broker.lookup(coid)
    if report is None:
        return None
    status = apply_report(conn, run_id=ctx.run_id, current=OrderStatus.NEW, report=report, account=intent.account,
                          base_currency=state.base_currency, event_time=ctx.event_time, holding=state.holding,
                          new_order=NewOrder(intent, order.venue, order.parent, arrival_price),
                          on_booking=ctx.on_booking, store=ctx.store)  # fmt: skip
    return Outcome(Disposition.RECOVERED, coid, OrderOutcome(coid, status, report.fills, "recovered from the venue"))
