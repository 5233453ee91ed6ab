"""The plan stage of ``execution.submit.execute``: what each intent becomes before anything is checked or sent.

- Scheduled slices being released (``execution.algos.release``) are sent as they are: not split again, measured
  against their parent's arrival price.
- Otherwise an intent whose notional in the account's base currency (at the rate known at ``event_time``) is above
  ``settings.split.above_notional`` is replaced by its child orders (``execution.algos.splitting``: TWAP or iceberg,
  legs ``leg * 1000 + n``). A TWAP spread over ``twap_duration_minutes`` has its whole schedule recorded
  (``execution.algos.schedule``) before its first slice is sent; only that first slice goes on when due (the others
  are ``SCHEDULED`` for the release pass). An iceberg parent likewise: only its first child is sent. A retry finds the
  schedule and sends only what is due and not yet recorded; a slice not in the recorded schedule or no longer
  scheduled is ``SLICE_SKIPPED``.
- With a ``LegRoutingBroker`` each order is then replaced by its route legs across venues
  (``execution.algos.routing``), the plan committed before anything is sent.

Each ``PlannedOrder`` carries what the later stages need: its parent, its venue, the client ids of its own shape
(routed siblings, scheduled slices: not "another shape" when recorded), the arrival price its plan fixed, and the
TWAP slice it sends. ``settle_slices`` moves those slices out of ``scheduled`` once the orders are disposed of.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, text

from alphaloom.domain import ClientOrderId, OrderIntent, OrderStatus, Symbol, client_order_id_for, last_closed_open
from alphaloom.settings import Settings
from execution.accounts.registry import AccountLocks
from execution.algos.schedule import (
    ScheduledSlice,
    SliceStatus,
    cancel_parents,
    family_recorded,
    mark_slices,
    record_schedule,
    schedule_of,
)
from execution.algos.splitting import SplitPlan, SplitPolicy, split_intents
from execution.brokers.base import Broker, RoutedOrders, routes_legs
from execution.orders.outcomes import Disposition, OrderOutcome, Outcome
from execution.orders.store import read_quote_rates


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """One order to check and send. ``family``: client ids of its own shape besides those this call records;
    ``arrival_price``: fixed by its plan (a slice's parent's, a routed leg's touch), None: the last price at send;
    ``slice``: the TWAP / iceberg slice it sends (its own id, or the slice it is a routed leg of)."""

    intent: OrderIntent
    client_order_id: ClientOrderId
    parent: ClientOrderId | None
    venue: str
    family: tuple[str, ...] = ()
    arrival_price: Decimal | None = None
    slice: ClientOrderId | None = None


@dataclass
class SendPlan:
    """The orders to send, in order; ``held``: the slices this call does not send (``SCHEDULED``,
    ``SLICE_SKIPPED``); ``slice_parents``: each slice sent by this call -> its TWAP / iceberg parent."""

    orders: list[PlannedOrder]
    held: list[Outcome] = field(default_factory=list)
    slice_parents: dict[ClientOrderId, ClientOrderId] = field(default_factory=dict)


@dataclass
class _Schedules:
    """The recorded schedules this call sends from: slice sent now -> its parent, parent -> every slice id of its
    schedule, slice -> its parent's arrival price, and the slices held back."""

    timed: dict[ClientOrderId, ClientOrderId] = field(default_factory=dict)
    planned: dict[ClientOrderId, list[str]] = field(default_factory=dict)
    arrivals: dict[str, Decimal] = field(default_factory=dict)
    held: list[Outcome] = field(default_factory=list)


def plan_sends(
    conn: Connection,
    intents: Sequence[OrderIntent],
    *,
    slices: Sequence[ScheduledSlice],
    parents: Mapping[ClientOrderId, ClientOrderId],
    broker: Broker,
    settings: Settings,
    run_id: str,
    event_time: datetime,
    last_prices: Mapping[str, Decimal],
    locks: AccountLocks,
) -> SendPlan:
    """Split, schedule and route ``intents`` (or release ``slices``); see the module docstring. ``parents``: child
    client id -> parent's, given by the caller; ``locks``: the call's account locks (taken before a schedule or a
    route plan is read)."""
    if slices:
        split, schedules = _releasing(conn, slices)
    else:
        policy = SplitPolicy.from_settings(settings)
        # the thresholds are base-currency notionals: read the quote rates only when a split is configured
        rates = read_quote_rates(conn, intents, event_time) if policy.above_notional is not None else {}
        split, schedules = split_intents(intents, policy, rates), _Schedules()
        if split.offsets:
            split, schedules = _schedule_twap(conn, split, run_id=run_id, settings=settings, event_time=event_time,
                                              last_prices=last_prices, locks=locks)  # fmt: skip
    routed = _route(conn, split.intents, broker, run_id=run_id, locks=locks)
    all_parents = {**split.parents, **parents, **routed.parents}
    orders = [_planned(i, all_parents, broker, routed, schedules) for i in routed.intents]
    return SendPlan(orders, schedules.held, schedules.timed)


def _releasing(conn: Connection, slices: Sequence[ScheduledSlice]) -> tuple[SplitPlan, _Schedules]:
    plan = SplitPlan([s.intent for s in slices], {s.client_order_id: s.parent_client_order_id for s in slices})
    schedules = _Schedules()
    for parent in {s.parent_client_order_id: s for s in slices}:
        schedules.planned[parent] = [c.client_order_id for c in schedule_of(conn, [parent])]
    for s in slices:
        schedules.timed[s.client_order_id] = s.parent_client_order_id
        if s.arrival_price is not None:
            schedules.arrivals[s.client_order_id] = s.arrival_price
    return plan, schedules


def _route(
    conn: Connection, intents: list[OrderIntent], broker: Broker, *, run_id: str, locks: AccountLocks
) -> RoutedOrders:
    if not routes_legs(broker):
        return RoutedOrders(list(intents))
    for account in sorted({i.account for i in intents}):  # one plan per parent: plan under the account lock
        locks.take(account)
    return broker.route(conn, intents, run_id=run_id)


def _planned(
    intent: OrderIntent,
    parents: Mapping[ClientOrderId, ClientOrderId],
    broker: Broker,
    routed: RoutedOrders,
    schedules: _Schedules,
) -> PlannedOrder:
    coid = client_order_id_for(intent.decision_id, intent.leg)
    parent = parents.get(coid)
    family: list[str] = []
    if parent is not None:
        # a routed leg's planned siblings are its own shape, whatever an earlier run managed to record of them
        family = routed.siblings.get(parent, []) + schedules.planned.get(parent, [])
        if parent in schedules.timed:  # a routed leg of a TWAP slice: the slice's schedule is its shape
            family += schedules.planned.get(schedules.timed[parent], [])
    # a TWAP slice: its parent's arrival; a routed leg: the best touch when it was planned
    arrival = schedules.arrivals.get(coid) or (schedules.arrivals.get(parent) if parent else None)
    if not arrival:
        arrival = routed.arrival.get(coid)
    if coid in schedules.timed:
        sent_slice: ClientOrderId | None = coid
    else:
        route_parent = routed.parents.get(coid)
        sent_slice = route_parent if route_parent in schedules.timed else None
    return PlannedOrder(intent, coid, parent, routed.venues.get(coid, broker.name), tuple(family), arrival,
                        sent_slice)  # fmt: skip


def _last_close(conn: Connection, settings: Settings, symbol: Symbol, cutoff: datetime) -> Decimal | None:
    close = conn.execute(
        text("""select close from raw.ohlcv where exchange = :e and symbol = :s and timeframe = :tf and ts <= :c
                order by ts desc limit 1"""),
        {"e": settings.exchange, "s": symbol, "tf": settings.timeframe, "c": cutoff},
    ).scalar()  # fmt: skip
    return None if close is None else Decimal(close)


def _schedule_twap(
    conn: Connection,
    plan: SplitPlan,
    *,
    run_id: str,
    settings: Settings,
    event_time: datetime,
    last_prices: Mapping[str, Decimal],
    locks: AccountLocks,
) -> tuple[SplitPlan, _Schedules]:
    """Record each TWAP parent's schedule (unless it exists, or the family was recorded in another shape) and keep
    only its first slice, when due by ``event_time`` and still scheduled (as recorded); the others are held:
    ``SCHEDULED``, or (not in the recorded schedule, or no longer scheduled) ``SLICE_SKIPPED``."""
    families: dict[ClientOrderId, list[OrderIntent]] = {}
    for intent in plan.intents:
        coid = client_order_id_for(intent.decision_id, intent.leg)
        if coid in plan.offsets:
            families.setdefault(plan.parents[coid], []).append(intent)
    schedules = _Schedules()
    dropped: set[str] = set()
    recorded_as: dict[str, OrderIntent] = {}
    for parent, children in families.items():
        locks.take(children[0].account)
        recorded = _recorded_schedule(conn, plan, parent, children, run_id=run_id, settings=settings,
                                      event_time=event_time, last_prices=last_prices)  # fmt: skip
        if recorded is None:  # sent all at once (or split otherwise) before: execute's checks hold
            continue
        schedules.planned[parent] = list(recorded)
        start = min(s.due_at for s in recorded.values())
        for child in children:
            coid = client_order_id_for(child.decision_id, child.leg)
            row = recorded.get(coid)
            if row is not None and row.arrival_price is not None:
                schedules.arrivals[coid] = row.arrival_price
            if row is None or row.status in (SliceStatus.REFUSED, SliceStatus.CANCELLED):
                dropped.add(coid)
                why = "its parent was scheduled in another shape" if row is None else f"slice {row.status}"
                schedules.held.append(
                    Outcome(Disposition.SLICE_SKIPPED, coid, OrderOutcome(coid, OrderStatus.NEW, reason=why))
                )
            elif row.status == SliceStatus.SCHEDULED and (
                row.due_at > event_time or row.due_at > start or row.after_client_order_id is not None
            ):
                # the decision sends only its first slice: a later one (even overdue, or an iceberg child waiting
                # for the one before it to fill) is the release pass's
                dropped.add(coid)
                schedules.held.append(Outcome(Disposition.SCHEDULED, coid))
            elif row.status == SliceStatus.SCHEDULED:
                schedules.timed[coid] = parent
                recorded_as[coid] = row.intent
    kept = [
        recorded_as.get(client_order_id_for(i.decision_id, i.leg), i)  # as scheduled, whatever this call's shape
        for i in plan.intents
        if client_order_id_for(i.decision_id, i.leg) not in dropped
    ]
    return SplitPlan(kept, plan.parents, plan.offsets, plan.after), schedules


def _recorded_schedule(
    conn: Connection,
    plan: SplitPlan,
    parent: ClientOrderId,
    children: list[OrderIntent],
    *,
    run_id: str,
    settings: Settings,
    event_time: datetime,
    last_prices: Mapping[str, Decimal],
) -> dict[ClientOrderId, ScheduledSlice] | None:
    """``parent``'s recorded schedule, recorded now (due times from ``event_time``, arrival price: the last close)
    when there is none yet; None when its family was recorded otherwise before (no schedule is made then)."""
    recorded = {s.client_order_id: s for s in schedule_of(conn, [parent])}
    if recorded:
        return recorded
    if family_recorded(conn, parent):
        return None
    symbol = children[0].symbol
    arrival = last_prices.get(symbol) or _last_close(
        conn, settings, symbol, last_closed_open(event_time, settings.timeframe)
    )
    due = {}
    for c in children:
        coid = client_order_id_for(c.decision_id, c.leg)
        due[coid] = event_time + plan.offsets[coid]
    record_schedule(conn, children, parent=parent, due=due, arrival_price=arrival, run_id=run_id, after=plan.after)
    return {s.client_order_id: s for s in schedule_of(conn, [parent])}


def settle_slices(
    conn: Connection, plan: SendPlan, disposed: Sequence[tuple[PlannedOrder, Outcome]], *, run_id: str
) -> None:
    """Each slice sent through this call leaves ``scheduled``: ``released`` once its order (or a routed leg of it) is
    recorded, ``refused`` when the guard refused it; when the kill switch stopped it, its parent's remaining
    schedule is cancelled (nothing of it may leave later on its own)."""
    if not plan.slice_parents:
        return
    released = {o.slice for o, out in disposed if o.slice is not None and out.disposition.order_exists}
    refused: dict[ClientOrderId, str] = {}
    for order, out in disposed:
        if out.refusal is not None and order.slice is not None and order.slice not in released:
            refused[order.slice] = "; ".join(b.reason for b in out.refusal.breaches)
    mark_slices(conn, sorted(released), SliceStatus.RELEASED, "sent", run_id)
    for coid, why in sorted(refused.items()):
        mark_slices(conn, [coid], SliceStatus.REFUSED, why, run_id)
    stopped = {plan.slice_parents[o.slice] for o, out in disposed
               if o.slice is not None and out.disposition is Disposition.BLOCKED}  # fmt: skip
    cancel_parents(conn, sorted(stopped), "kill switch engaged", run_id)
