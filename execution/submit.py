"""Execution: turn approved ``OrderIntent``s into orders at a broker, exactly once, and book what filled.

First, an intent whose notional in the account's base currency (at the rate known at ``event_time``) is above
``settings.split_above_notional`` is replaced by its child orders (``execution.algos.splitting``:
TWAP or iceberg, legs ``leg * 1000 + n``, each recorded with ``parent_client_order_id``). A TWAP spread over
``twap_duration_minutes`` has its whole schedule recorded (``execution.algos.schedule``) before its first slice is sent;
the later slices are sent by ``execution.algos.release`` when due, through this same path. An iceberg parent likewise:
only its first child is sent, each next one is released once the one before it has filled. Each intent's read also cancels
the account's TWAP slices of that symbol still scheduled on the other side (a later decision supersedes them). With a
``RoutingBroker``, each intent is then replaced by its route legs across venues (``execution.algos.routing``: best price
after fees walking several levels of each order book), the plan committed in ``audit.route_legs`` before anything is sent; each leg goes only
to the venue its plan names and is recorded with that venue and the plan's arrival price. Then for each intent, in
order (on the caller's connection; the caller's transaction decides), under a per-account advisory lock:

1. an order with the intent's client order id (``client_order_id_for(decision_id, leg)``) already exists -> nothing is
   sent; it is returned in ``duplicates``, after reconciling with ``broker.lookup`` when its status was not final;
   likewise an order whose family was recorded in another shape (a child whose parent exists unsplit, or whose
   siblings were split differently; an unsplit order with recorded children) is not sent;
2. the submit journal (``execution.orders.journal``) shows an earlier attempt that never got recorded (a crash between
   submit and record) -> the venue is asked by client order id first; what it has is recorded (``recovered``) and
   nothing is resent; only an order the venue never saw may be sent;
3. kill switch engaged -> nothing is sent (no broker call), counted in ``kill_switch_blocked``;
4. the guards: live arming (a ``live`` broker needs an account in mode live/shadow with ``live_enabled``), account
   halt, daily loss limit (halts the account), orders per decision run, the hard limits of ``alphaloom.guards``
   (max notional per order, max position: in the account's base currency at the rate known at ``event_time``, an order
   whose quote currency has none is refused naming the pair; price band: the venue's current price asked at send
   time through a ``QuotingBroker`` against the decision's price, a protective exit never refused by it) and
   long-only -> a breach sends nothing, raises nothing, is returned in ``refused``; every trip is recorded
   (``audit.guard_trips``);
5. the attempt is journaled and committed, the order submitted, and the order row with its events (new -> submitted
   -> filled | expired...), fills, position and cash written in one statement (``execution.orders.store``).

Steps 3-4 are also recorded as an ``execution_guard`` risk check, denied or approved, with the numbers.

Writes: ``audit.orders`` (with ``arrival_price``: the last trade at submit, and ``parent_client_order_id`` for child
orders), ``audit.order_events`` (``event_ts`` = ``event_time``; the final event of a filled order carries its
average fill price and slippage versus the arrival price, also when the order is reconciled later after an unknown
outcome), ``audit.fills``, ``audit.positions``,
``audit.balances`` (the account's base currency), ``audit.risk_checks``, ``audit.guard_trips``, ``audit.lineage``
(order -> decision, fill -> order), and ``audit.submit_attempts`` (committed separately). Cash moves in the
symbol's quote currency (``audit.balances`` per currency); views convert it into the base currency (``alphaloom.fx``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from alphaloom.domain import (
    ClientOrderId,
    DecisionId,
    Fill,
    OrderIntent,
    OrderStatus,
    Side,
    client_order_id_for,
    last_closed_open,
    quote_currency,
    require_utc,
)
from alphaloom.errors import (
    ConfigError,
    KillSwitchEngagedError,
    OrderRejectedError,
    UnknownOrderStateError,
    VenueError,
    VenueTemporaryError,
)
from alphaloom.fx import QuoteRate
from alphaloom.guards import HardLimits, LimitBreach, check_hard_limits, kill_switch_state
from alphaloom.settings import Settings
from execution.accounts.holdings import Holding, apply_fill, cash_change, fee_charged_in
from execution.accounts.holdings import fee_cash as fee_cash_of
from execution.algos.routing import RoutedIntents, RoutingBroker, route_intents
from execution.algos.schedule import (
    CANCELLED,
    REFUSED,
    RELEASED,
    SCHEDULED,
    ScheduledSlice,
    cancel_parents,
    family_recorded,
    mark_slices,
    record_schedule,
    schedule_of,
)
from execution.algos.splitting import SplitPlan, SplitPolicy, arrival_slippage, split_intents
from execution.brokers.base import Broker, BrokerReport, OrderRequest, QuotingBroker
from execution.orders.journal import record_attempt
from execution.orders.state import is_terminal, path_to
from execution.orders.store import (
    EventRow,
    FillBooking,
    GuardRow,
    NewOrder,
    OrderState,
    read_order_state,
    read_quote_rates,
    record_guard,
    write_report,
)
from execution.safety.fatfinger import check_daily_loss, check_orders_per_run, record_trip, set_halt

GUARD_CHECK = "execution_guard"
# The portfolio risk gate a released slice passes (``agents.risk.gate.portfolio_gate``): the intent that may go (maybe
# shrunk) and no breaches, or None and the breaches that denied it.
SliceGate = Callable[[Connection, OrderIntent, datetime], tuple[OrderIntent | None, tuple[LimitBreach, ...]]]
# Told of every booking (fills, the position they leave, the cash they move) right after it is written: an in-memory
# copy of the account kept up to date without reading it back (``agents.replay_account`` in a replay).
BookingListener = Callable[[FillBooking], None]


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    client_order_id: ClientOrderId
    status: OrderStatus
    fills: tuple[Fill, ...] = ()
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Refusal:
    """An intent the execution guard refused; ``breaches`` carry the numbers."""

    intent: OrderIntent
    breaches: tuple[LimitBreach, ...]


@dataclass
class ExecutionResult:
    """What ``execute`` did. ``broker_submits`` counts calls to ``broker.submit``; ``scheduled``: TWAP slices left
    for later (``execution.algos.release``); ``blocked``: client ids the kill switch stopped; ``superseded``: scheduled
    slices of the other side cancelled by this call's intents."""

    submitted: list[OrderOutcome] = field(default_factory=list)
    duplicates: list[OrderOutcome] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    rejected: list[OrderOutcome] = field(default_factory=list)
    unknown: list[ClientOrderId] = field(default_factory=list)
    recovered: list[OrderOutcome] = field(default_factory=list)
    kill_switch_blocked: int = 0
    broker_submits: int = 0
    scheduled: list[ClientOrderId] = field(default_factory=list)
    blocked: list[ClientOrderId] = field(default_factory=list)
    superseded: int = 0


def _holding(conn: Connection, account: str, symbol: str, *, lock: bool = False) -> Holding:
    row = conn.execute(
        text(
            "select quantity, avg_price, realized_pnl from audit.positions where account = :a and symbol = :s"
            + (" for update" if lock else "")
        ),
        {"a": account, "s": symbol},
    ).first()
    if row is None:
        return Holding.flat()
    return Holding(Decimal(row.quantity), Decimal(row.avg_price), Decimal(row.realized_pnl))


def _guard_name(intent: OrderIntent) -> str:
    return GUARD_CHECK if intent.leg == 0 else f"{GUARD_CHECK}[leg {intent.leg}]"


def _record_guard(
    conn: Connection, run_id: str, intent: OrderIntent, approved: bool, reason: str, numbers: Mapping[str, Any]
) -> None:
    record_guard(conn, run_id, intent, GuardRow(_guard_name(intent), approved, reason, numbers))


def _apply_report(
    conn: Connection,
    *,
    run_id: str,
    current: OrderStatus,
    report: BrokerReport,
    account: str,
    base_currency: str,
    event_time: datetime,
    holding: Holding | None = None,
    new_order: NewOrder | None = None,
    arrival_price: Decimal | None = None,
    on_booking: BookingListener | None = None,
) -> OrderStatus:
    """Bring the recorded order up to the venue's report: events along the transition table, then the fills not
    booked yet (by fill id ``<client order id>-<n>``), position, cash and status, written in one statement.
    ``new_order``: the order is not recorded yet (so no fill is booked either) and is inserted with the report;
    ``holding``: the position already read (and locked) by the caller. With an arrival price (the new order's, else
    ``arrival_price``: the one recorded with the order), the final event records the fills' slippage versus it.
    ``on_booking`` is told of the booking once written. Returns the new status."""
    coid = report.client_order_id
    if new_order is not None:
        arrival_price = new_order.arrival_price
    booked: set[str] = (
        set()
        if new_order is not None
        else set(
            conn.execute(text("select fill_id from audit.fills where client_order_id = :c"), {"c": coid}).scalars()
        )
    )
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
        events.append(EventRow(status, step, details))
        status = step
    booking = None
    if new_fills:
        symbol = new_fills[0][1].symbol
        if holding is None:
            holding = _holding(conn, account, symbol, lock=True)
        cash = Decimal(0)
        fee_cash: dict[str, Decimal] = {}
        for _, fill in new_fills:
            charged = fee_charged_in(fill.symbol, fill.fee_currency)
            holding = apply_fill(holding, side=fill.side, quantity=fill.quantity, price=fill.price, fee=fill.fee,
                                 fee_in=charged)  # fmt: skip
            cash += cash_change(side=fill.side, quantity=fill.quantity, price=fill.price, fee=fill.fee, fee_in=charged)
            if (paid := fee_cash_of(fill)) is not None:
                fee_cash[paid[0]] = fee_cash.get(paid[0], Decimal(0)) + paid[1]
        # cash moves in the symbol's quote currency; a fee in a third asset (BNB) in that asset's balance
        booking = FillBooking(new_fills, account, symbol, holding, quote_currency(symbol, base_currency), cash,
                              fee_cash)  # fmt: skip
    write_report(conn, run_id=run_id, client_order_id=coid, event_time=event_time, events=events, booking=booking,
                 status=status, venue_order_id=report.venue_order_id, filled_quantity=report.filled_quantity,
                 new_order=new_order)  # fmt: skip
    if booking is not None and on_booking is not None:
        on_booking(booking)
    return status


_UNQUOTED = "not quoted (paper: the last close known at the event time is its current price)"


def _venue_price(broker: Broker, intent: OrderIntent) -> tuple[Decimal | None, LimitBreach | None]:
    """The venue's current price for the price band, asked at send time (``QuotingBroker``), or why there is none.

    The decision's reference price is the close of the bar it read, so the band around that same bar's close can
    never trip; the band that protects a send is the move since the decision, measured at the venue just before the
    order leaves. A live venue that cannot quote means the order is not sent (a market order is never sent blind),
    except a protective exit. A paper broker has no quote of its own: its current price is the last close known at
    the event time (its simulated clock), which is the band's ``last_price``."""
    if not isinstance(broker, QuotingBroker):
        return None, None
    try:
        return broker.current_price(intent.symbol, intent.side), None
    except (VenueError, VenueTemporaryError) as exc:
        return None, LimitBreach(
            "price_band",
            f"no current price from {broker.name} for {intent.symbol}: {type(exc).__name__}: {exc}",
            {"venue": broker.name, "error": type(exc).__name__, "reference_price": str(intent.reference_price)},
        )


def _account_guards(
    conn: Connection,
    intent: OrderIntent,
    state: OrderState,
    *,
    broker: Broker,
    settings: Settings,
) -> list[LimitBreach]:
    """Account-level guards before any submit: live arming, account halt, daily loss limit, orders per run."""
    breaches: list[LimitBreach] = []
    if getattr(broker, "live", False) and not (state.live_enabled and state.mode in ("live", "shadow")):
        breaches.append(
            LimitBreach(
                "live_not_armed",
                f"account {intent.account!r} (mode {state.mode}) is not armed for live orders",
                {"mode": state.mode, "live_enabled": str(state.live_enabled), "broker": broker.name},
            )
        )
    if state.halted:
        breaches.append(
            LimitBreach("account_halted", f"account halted: {state.halt_reason}", {"reason": state.halt_reason})
        )
    else:
        loss = check_daily_loss(state.day_start_equity, state.equity, settings.daily_loss_limit)
        if loss is not None:
            set_halt(conn, intent.account, True, loss.reason, loss.numbers)
            breaches.append(loss)
    too_many = check_orders_per_run(state.orders_in_run, settings.max_orders_per_run)
    if too_many is not None:
        breaches.append(too_many)
    return breaches


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
) -> ExecutionResult:
    """Send each intent at most once (see the module docstring). ``last_prices`` overrides the price-band reference;
    by default it is the newest ``raw.ohlcv`` close known at ``event_time``, else the intent's reference price.
    ``parents`` maps a child order's client id to its parent's (TWAP, iceberg, routed splits).

    A TWAP spread over time (``twap_duration_minutes`` > 0): the parent's whole schedule is recorded first
    (``execution.algos.schedule``), then only the slices due by ``event_time`` go on (the first); the others are returned
    in ``scheduled``. A retry finds the schedule and sends only what is due and not yet recorded; a retry split in
    another shape sends nothing. ``slices``: scheduled slices being released (``execution.algos.release``): sent as they
    are (not split again, no other slice superseded), measured against their parent's arrival price; with ``gate``
    (the portfolio risk gate, built by the flows from ``agents.risk.gate``) each slice first passes it at
    ``event_time``: denied, it is refused with the gate's breaches (recorded like every guard trip); shrunk, the
    smaller order is sent.

    ``replay`` (a backtest step: one run holds every step of the replay): the per-run caps count this decision
    step's orders only, and guard trips are recorded without an alert each (the backtest counts them by reason and
    reports them once).

    ``on_booking``: told of every booking of fills this call writes (position and cash), as it is written."""
    event_time = require_utc(event_time, "event_time")
    trip_alert = None if replay else "fat_finger"
    limits = HardLimits.from_settings(settings)
    releasing = bool(slices)
    if releasing:
        plan = SplitPlan([s.intent for s in slices], {s.client_order_id: s.parent_client_order_id for s in slices})
        schedules = {s.parent_client_order_id: s for s in slices}
    else:
        policy = SplitPolicy.from_settings(settings)
        # the thresholds are base-currency notionals: read the quote rates only when a split is configured
        rates = read_quote_rates(conn, intents, event_time) if policy.above_notional is not None else {}
        plan = split_intents(intents, policy, rates)
    result = ExecutionResult()
    locked: set[str] = set()
    timed: dict[str, ClientOrderId] = {}  # TWAP slice sent by this call -> its parent, settled after the loop
    planned: dict[ClientOrderId, list[str]] = {}  # parent -> every slice id of its recorded schedule
    arrivals: dict[str, Decimal] = {}  # slice -> its parent's arrival price
    if releasing:
        for parent in schedules:
            planned[parent] = [c.client_order_id for c in schedule_of(conn, [parent])]
        for s in slices:
            timed[s.client_order_id] = s.parent_client_order_id
            if s.arrival_price is not None:
                arrivals[s.client_order_id] = s.arrival_price
    elif plan.offsets:
        plan = _schedule_twap(conn, plan, run_id=run_id, settings=settings, event_time=event_time,
                              last_prices=last_prices or {}, locked=locked, result=result, timed=timed,
                              planned=planned, arrivals=arrivals)  # fmt: skip
    intents, parents = plan.intents, {**plan.parents, **(parents or {})}
    routed = RoutedIntents(list(intents))
    if isinstance(broker, RoutingBroker):
        for account in sorted({i.account for i in intents}):  # one plan per parent: plan under the account lock
            lock_account(conn, account)
            locked.add(account)
        routed = route_intents(conn, intents, broker, run_id=run_id)
        intents, parents = routed.intents, {**parents, **routed.parents}
    recorded: list[str] = []  # client ids recorded by this call (a child's siblings are not another shape)
    bar_cutoff = last_closed_open(event_time, settings.timeframe)
    day_start = datetime.combine(event_time.date(), time(0), tzinfo=event_time.tzinfo)
    for intent in intents:
        if intent.account not in locked:  # held until the transaction ends: once per account is enough
            lock_account(conn, intent.account)
            locked.add(intent.account)
        coid = client_order_id_for(intent.decision_id, intent.leg)
        parent = parents.get(coid)
        venue = broker.venue_of(coid) if isinstance(broker, RoutingBroker) else broker.name
        # a routed leg's planned siblings are its own shape, whatever an earlier run managed to record of them
        own = recorded + routed.siblings.get(parent, []) + planned.get(parent, []) if parent is not None else recorded
        if parent is not None and parent in timed:  # a routed leg of a TWAP slice: the slice's schedule is its shape
            own = own + planned.get(timed[parent], [])
        state = read_order_state(conn, account=intent.account, symbol=intent.symbol, client_order_id=coid,
                                 run_id=run_id, exchange=settings.exchange, timeframe=settings.timeframe,
                                 bar_cutoff=bar_cutoff, day_start=day_start, event_time=event_time, parent=parent,
                                 own=own, supersede=None if releasing else intent, per_step=replay)  # fmt: skip
        result.superseded += state.superseded
        if state.account_venue is None:
            raise ConfigError(
                f"account {intent.account!r} does not exist; create it with execution.accounts.registry.ensure_account"
            )

        if state.existing_status is not None:
            outcome = _reconcile(
                conn,
                run_id=run_id,
                broker=broker,
                coid=coid,
                status=state.existing_status,
                account=intent.account,
                base_currency=state.base_currency,
                event_time=event_time,
                on_booking=on_booking,
            )
            result.duplicates.append(outcome)
            continue
        if state.family_recorded:
            # Split differently (or not at all) by an earlier run: what that run recorded stands, nothing is added.
            result.duplicates.append(
                OrderOutcome(coid, OrderStatus.NEW, reason="its parent or siblings were recorded in another shape")
            )
            continue

        override = (last_prices or {}).get(intent.symbol)
        last_price = override or state.last_close
        # a TWAP slice: its parent's arrival; a routed leg: the best touch when it was planned
        arrival_price = arrivals.get(coid) or (arrivals.get(parent) if parent else None)
        arrival_price = arrival_price or routed.arrival.get(coid, last_price)
        if state.attempted:
            # An earlier attempt's outcome is unknown (it crashed before recording): ask the venue before resending.
            report = broker.lookup(coid)
            if report is not None:
                status = _apply_report(conn, run_id=run_id, current=OrderStatus.NEW, report=report,
                                       account=intent.account, base_currency=state.base_currency,
                                       event_time=event_time, holding=state.holding,
                                       new_order=NewOrder(intent, venue, parent, arrival_price),
                                       on_booking=on_booking)  # fmt: skip
                recorded.append(coid)
                result.recovered.append(OrderOutcome(coid, status, report.fills, "recovered from the venue"))
                continue

        switch = state.kill_switch
        if switch.engaged:
            result.kill_switch_blocked += 1
            result.blocked.append(coid)
            _record_guard(conn, run_id, intent, False, f"kill switch engaged: {switch.reason}", {"engaged": "True"})
            record_trip(conn, run_id=run_id, account=intent.account, guard="kill_switch", reason=switch.reason,
                        numbers={"engaged": True}, symbol=intent.symbol, decision_id=intent.decision_id,
                        alert_kind=trip_alert)  # fmt: skip
            continue

        holding = state.holding
        gated: list[LimitBreach] = []
        if releasing and gate is not None:
            allowed, denied = gate(conn, intent, event_time)
            intent, gated = allowed or intent, list(denied)
        signed = intent.quantity if intent.side is Side.BUY else -intent.quantity
        breaches = gated + _account_guards(conn, intent, state, broker=broker, settings=settings)
        quote_rate = QuoteRate(quote_currency(intent.symbol, state.base_currency), state.base_currency,
                               state.quote_rate, event_time)  # fmt: skip
        venue_price, unquoted = _venue_price(broker, intent)
        if unquoted is not None:
            breaches.append(unquoted)
        if quote_rate.rate is None:
            pair = {"quote": quote_rate.quote, "base": quote_rate.base}
            breaches.append(LimitBreach("fx_rate", str(quote_rate.missing), pair))
        else:
            breaches += check_hard_limits(
                limits,
                signed_quantity=signed,
                price=intent.reference_price,
                current_quantity=holding.quantity,
                last_price=venue_price or last_price or intent.reference_price,
                quote_rate=quote_rate.rate,
            )
        if intent.protective:  # a stop that gapped through the band must still get out
            breaches = [b for b in breaches if b.limit != "price_band"]
        if holding.quantity + signed < 0:
            breaches.append(
                LimitBreach(
                    "long_only",
                    f"selling {intent.quantity} exceeds the position {holding.quantity}",
                    {"position": str(holding.quantity), "order_quantity": str(signed)},
                )
            )
        numbers = {
            "notional": str(intent.notional if quote_rate.rate is None else quote_rate.to_base(intent.notional)),
            **({"quote_rate": str(quote_rate.rate)} if quote_rate.rate not in (None, 1) else {}),
            "position_quantity": str(holding.quantity),
            "reference_price": str(intent.reference_price),
            "last_price": str(last_price) if last_price is not None else "unknown (reference price used)",
            "venue_price": str(venue_price) if venue_price is not None else _UNQUOTED,
            "breaches": {b.limit: b.numbers for b in breaches},
        }
        if breaches:
            result.refused.append(Refusal(intent, tuple(breaches)))
            _record_guard(conn, run_id, intent, False, "; ".join(b.reason for b in breaches), numbers)
            for b in breaches:
                record_trip(conn, run_id=run_id, account=intent.account, guard=b.limit, reason=b.reason,
                            numbers=b.numbers, symbol=intent.symbol, client_order_id=coid,
                            decision_id=intent.decision_id, alert_kind=trip_alert)  # fmt: skip
            continue

        # The order row is written with the venue's answer, in one statement after the submit: under the account
        # lock nobody else can record this client id meanwhile, and the journal (committed before the submit) is what
        # makes a crash in between recoverable.
        new_order = NewOrder(intent, venue, parent, arrival_price,
                             GuardRow(_guard_name(intent), True, "hard limits hold at execution", numbers))  # fmt: skip
        request = OrderRequest(
            client_order_id=coid,
            account=intent.account,
            symbol=intent.symbol,
            side=intent.side,
            quantity=intent.quantity,
            reference_price=intent.reference_price,
            submitted_at=event_time,
            bar_volume=state.last_volume,
        )
        record_attempt(conn, coid, intent.account, venue,
                       journal_details(new_order, run_id=run_id, event_time=event_time, timeframe=settings.timeframe))  # fmt: skip
        result.broker_submits += 1
        recorded.append(coid)
        try:
            report = broker.submit(request)
        except (KillSwitchEngagedError, OrderRejectedError) as exc:
            result.rejected.append(_record_refusal(conn, exc, run_id, coid, event_time, new_order))
            continue
        except (UnknownOrderStateError, VenueTemporaryError) as exc:
            _record_unknown(conn, exc, run_id, coid, event_time, new_order)
            result.unknown.append(coid)
            continue
        status = _apply_report(
            conn,
            run_id=run_id,
            current=OrderStatus.NEW,
            report=report,
            account=intent.account,
            base_currency=state.base_currency,
            event_time=event_time,
            holding=holding,
            new_order=new_order,
            on_booking=on_booking,
        )
        result.submitted.append(OrderOutcome(coid, status, report.fills, report.reason))
    if timed:
        _settle_slices(conn, result, timed, routed.parents, run_id=run_id)
    return result


def _last_close(conn: Connection, settings: Settings, symbol: str, cutoff: datetime) -> Decimal | None:
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
    locked: set[str],
    result: ExecutionResult,
    timed: dict[str, ClientOrderId],
    planned: dict[ClientOrderId, list[str]],
    arrivals: dict[str, Decimal],
) -> SplitPlan:
    """Record each TWAP parent's schedule (unless it exists, or the family was recorded in another shape) and keep
    only its first slice, when due by ``event_time`` and still scheduled (as recorded); the others go to
    ``result.scheduled`` (or, not in the recorded schedule or no longer scheduled, to ``result.duplicates``)."""
    families: dict[ClientOrderId, list[OrderIntent]] = {}
    for intent in plan.intents:
        coid = client_order_id_for(intent.decision_id, intent.leg)
        if coid in plan.offsets:
            families.setdefault(plan.parents[coid], []).append(intent)
    dropped: set[str] = set()
    recorded_as: dict[str, OrderIntent] = {}
    for parent, children in families.items():
        account = children[0].account
        if account not in locked:
            lock_account(conn, account)
            locked.add(account)
        recorded = {s.client_order_id: s for s in schedule_of(conn, [parent])}
        if not recorded:
            if family_recorded(conn, parent):  # sent all at once (or split otherwise) before: execute's checks hold
                continue
            symbol = children[0].symbol
            arrival = last_prices.get(symbol) or _last_close(
                conn, settings, symbol, last_closed_open(event_time, settings.timeframe)
            )
            due = {client_order_id_for(c.decision_id, c.leg): event_time + plan.offsets[client_order_id_for(
                c.decision_id, c.leg)] for c in children}  # fmt: skip
            record_schedule(conn, children, parent=parent, due=due, arrival_price=arrival, run_id=run_id,
                            after=plan.after)  # fmt: skip
            recorded = {s.client_order_id: s for s in schedule_of(conn, [parent])}
        planned[parent] = list(recorded)
        start = min(s.due_at for s in recorded.values())
        for child in children:
            coid = client_order_id_for(child.decision_id, child.leg)
            row = recorded.get(coid)
            if row is not None and row.arrival_price is not None:
                arrivals[coid] = row.arrival_price
            if row is None or row.status in (REFUSED, CANCELLED):
                dropped.add(coid)
                why = "its parent was scheduled in another shape" if row is None else f"slice {row.status}"
                result.duplicates.append(OrderOutcome(coid, OrderStatus.NEW, reason=why))
            elif row.status == SCHEDULED and (
                row.due_at > event_time or row.due_at > start or row.after_client_order_id is not None
            ):
                # the decision sends only its first slice: a later one (even overdue, or an iceberg child waiting
                # for the one before it to fill) is the release pass's
                dropped.add(coid)
                result.scheduled.append(coid)
            elif row.status == SCHEDULED:
                timed[coid] = parent
                recorded_as[coid] = row.intent
    kept = [
        recorded_as.get(client_order_id_for(i.decision_id, i.leg), i)  # as scheduled, whatever this call's shape
        for i in plan.intents
        if client_order_id_for(i.decision_id, i.leg) not in dropped
    ]
    return SplitPlan(kept, plan.parents, plan.offsets, plan.after)


def _settle_slices(
    conn: Connection,
    result: ExecutionResult,
    timed: Mapping[str, ClientOrderId],
    route_parents: Mapping[ClientOrderId, ClientOrderId],
    *,
    run_id: str,
) -> None:
    """A TWAP slice sent through this call leaves ``scheduled``: ``released`` once its order (or a routed leg of it)
    is recorded, ``refused`` when the guard refused it; when the kill switch stopped it, its parent's remaining
    schedule is cancelled (nothing of it may leave later on its own)."""

    def slice_of(coid: str) -> str | None:
        return coid if coid in timed else route_parents.get(ClientOrderId(coid))

    released: set[str] = set()
    for outcome in result.submitted + result.duplicates + result.recovered + result.rejected:
        if outcome.reason != "its parent was scheduled in another shape" and not outcome.reason.startswith("slice "):
            released.add(slice_of(outcome.client_order_id) or "")
    released |= {slice_of(c) or "" for c in result.unknown}
    released.discard("")
    refused: dict[str, str] = {}
    for refusal in result.refused:
        coid = slice_of(client_order_id_for(refusal.intent.decision_id, refusal.intent.leg))
        if coid is not None and coid not in released:
            refused[coid] = "; ".join(b.reason for b in refusal.breaches)
    mark_slices(conn, sorted(released & set(timed)), RELEASED, "sent", run_id)
    for coid, why in sorted(refused.items()):
        mark_slices(conn, [coid], REFUSED, why, run_id)
    stopped = sorted({timed[s] for c in result.blocked if (s := slice_of(c)) is not None and s in timed})
    cancel_parents(conn, stopped, "kill switch engaged", run_id)


def _record_unknown(
    conn: Connection, exc: Exception, run_id: str, coid: ClientOrderId, event_time: datetime, new_order: NewOrder
) -> None:
    """A submit whose outcome is unknown (timeout, dropped connection): the venue may have the order, so it is written
    as new -> submitted and reconciled by client order id before anything is resent."""
    unknown = {"outcome": "unknown", "error": f"{type(exc).__name__}: {exc}"}
    write_report(conn, run_id=run_id, client_order_id=coid, event_time=event_time,
                 events=[EventRow(OrderStatus.NEW, OrderStatus.SUBMITTED, unknown)], booking=None,
                 status=OrderStatus.SUBMITTED, venue_order_id=None, filled_quantity=None, new_order=new_order)  # fmt: skip


def _record_refusal(
    conn: Connection, exc: Exception, run_id: str, coid: ClientOrderId, event_time: datetime, new_order: NewOrder
) -> OrderOutcome:
    """A submit the broker refused outright (kill switch, venue rejection): the order is written as new -> rejected
    with the reason, so it is never resent."""
    reason = f"{type(exc).__name__}: {exc}"
    write_report(conn, run_id=run_id, client_order_id=coid, event_time=event_time,
                 events=[EventRow(OrderStatus.NEW, OrderStatus.REJECTED, {"reason": reason})], booking=None,
                 status=OrderStatus.REJECTED, venue_order_id=None, filled_quantity=None, new_order=new_order)  # fmt: skip
    return OrderOutcome(coid, OrderStatus.REJECTED, reason=reason)


def lock_account(conn: Connection, account: str) -> None:
    conn.execute(text("select pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"alphaloom:account:{account}"})


def _reconcile(
    conn: Connection,
    *,
    run_id: str,
    broker: Broker,
    coid: ClientOrderId,
    status: OrderStatus,
    account: str,
    base_currency: str,
    event_time: datetime,
    on_booking: BookingListener | None = None,
) -> OrderOutcome:
    """An order that already exists is never sent again; when its outcome was not final, ask the venue."""
    if is_terminal(status):
        return OrderOutcome(coid, status, reason="already recorded")
    report = broker.lookup(coid)
    if report is None:
        return OrderOutcome(coid, status, reason="not known to the venue; left for a human to resolve")
    arrival = conn.execute(
        text("select arrival_price from audit.orders where client_order_id = :c"), {"c": coid}
    ).scalar()
    new_status = _apply_report(
        conn,
        run_id=run_id,
        current=status,
        report=report,
        account=account,
        base_currency=base_currency,
        event_time=event_time,
        arrival_price=None if arrival is None else Decimal(arrival),
        on_booking=on_booking,
    )
    return OrderOutcome(coid, new_status, report.fills, "reconciled with the venue")


# --- applying a venue report outside ``execute`` (kill-switch cancels, reconciliation) --------------------------------


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
        "order_type": new_order.order_type, "parent": new_order.parent, "run_id": run_id,
        "event_time": event_time.isoformat(), "timeframe": timeframe,
        **{k: None if v is None else str(v) for k, v in optional.items()},
    }  # fmt: skip


def book_journaled_order(
    conn: Connection,
    *,
    run_id: str,
    report: BrokerReport,
    account: str,
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
    intent = OrderIntent(DecisionId(str(details["decision_id"])), account, str(details["symbol"]),
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
    base_currency = conn.execute(
        text("select base_currency from audit.accounts where id = :a"), {"a": account}
    ).scalar_one()
    limit = details.get("limit_price")
    arrival = details.get("arrival_price")
    new_order = NewOrder(intent, venue, details.get("parent"), None if arrival is None else Decimal(str(arrival)),
                         order_type=str(details.get("order_type") or "market"),
                         limit_price=None if limit is None else Decimal(str(limit)))  # fmt: skip
    return _apply_report(conn, run_id=run_id, current=OrderStatus.NEW, report=report, account=account,
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
    return _apply_report(conn, run_id=run_id, current=OrderStatus(row.status), report=report, account=row.account,
                         base_currency=row.base_currency, event_time=require_utc(event_time, "event_time"),
                         arrival_price=None if row.arrival_price is None else Decimal(row.arrival_price))  # fmt: skip


def place_standing_order(
    conn: Connection,
    intent: OrderIntent,
    *,
    order_type: str,
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
    if getattr(broker, "live", False) and not (account.live_enabled and account.mode in ("live", "shadow")):
        raise ConfigError(f"account {intent.account!r} (mode {account.mode}) is not armed for live orders")
    new_order = NewOrder(intent, broker.name, None, None, order_type=order_type, limit_price=limit_price)
    request = OrderRequest(coid, intent.account, intent.symbol, intent.side, intent.quantity, intent.reference_price,
                           event_time, order_type=order_type, limit_price=limit_price, stop_price=stop_price)  # fmt: skip
    record_attempt(conn, coid, intent.account, broker.name,
                   journal_details(new_order, run_id=run_id, event_time=event_time, stop_price=stop_price))  # fmt: skip
    try:
        report = broker.submit(request)
    except (KillSwitchEngagedError, OrderRejectedError) as exc:
        return _record_refusal(conn, exc, run_id, coid, event_time, new_order)
    except (UnknownOrderStateError, VenueTemporaryError) as exc:
        _record_unknown(conn, exc, run_id, coid, event_time, new_order)
        return OrderOutcome(coid, OrderStatus.SUBMITTED, reason="outcome unknown; reconcile by client order id")
    status = _apply_report(conn, run_id=run_id, current=OrderStatus.NEW, report=report, account=intent.account,
                           base_currency=account.base_currency, event_time=event_time, new_order=new_order)  # fmt: skip
    return OrderOutcome(coid, status, report.fills, report.reason)
