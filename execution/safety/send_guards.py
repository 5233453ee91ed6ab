"""The gate stage of ``execution.submit.execute``: the guards an order meets at send time, after the decision.

In order: the kill switch (engaged -> ``BLOCKED``: nothing sent, no broker call); then, all checked and every breach
kept (-> ``REFUSED``): a released slice's portfolio risk gate (``SliceGate``: denied, or shrunk and the smaller order
checked), live arming (a ``live`` broker needs an account in mode live/shadow with ``live_enabled``), account halt,
daily loss limit (halts the account), orders per decision run, the hard limits of ``alphaloom.guards`` (max notional
per order, max position: in the account's base currency at the rate known at ``event_time``, an order whose quote
currency has none is refused naming the pair; price band: the venue's current price asked now through a
``QuotingBroker`` against the decision's price, a protective exit never refused by it) and long-only. A block or a
refusal sends nothing and raises nothing: it is recorded as an ``execution_guard`` risk check with the numbers, and
each trip in ``audit.guard_trips``. A pass carries the numbers recorded with the order's approved risk check.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from alphaloom.domain import ClientOrderId, OrderIntent, Side, quote_currency
from alphaloom.errors import VenueError, VenueTemporaryError
from alphaloom.fx import QuoteRate
from alphaloom.guards import HardLimits, LimitBreach, check_hard_limits
from alphaloom.settings import Settings
from execution.accounts.registry import LIVE_MODES
from execution.brokers.base import Broker, is_quoting
from execution.orders.send_context import SendContext
from execution.orders.store import DB_STORE, GuardRow, OrderState, OrderStore
from execution.safety.fatfinger import check_daily_loss, check_orders_per_run, record_trip

GUARD_CHECK = "execution_guard"


def guard_name(intent: OrderIntent) -> str:
    """The ``execution_guard`` risk check's name for ``intent`` (suffixed with its leg for a child order)."""
    return GUARD_CHECK if intent.leg == 0 else f"{GUARD_CHECK}[leg {intent.leg}]"


def _record_guard(
    conn: Connection, ctx: SendContext, intent: OrderIntent, approved: bool, reason: str, numbers: Mapping[str, Any]
) -> None:
    ctx.store.record_guard(conn, ctx.run_id, intent, GuardRow(guard_name(intent), approved, reason, numbers))


class GateDecision(enum.Enum):
    PASSED = "passed"
    BLOCKED = "blocked"  # the kill switch
    REFUSED = "refused"  # one breach or more


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """The gate's answer for one order: ``intent`` is the order that may go (a slice the portfolio gate shrank: the
    smaller one); ``numbers``: what the checks measured (recorded with the order's risk check)."""

    decision: GateDecision
    intent: OrderIntent
    breaches: tuple[LimitBreach, ...] = ()
    numbers: Mapping[str, Any] = field(default_factory=dict)


def gate_order(
    conn: Connection, intent: OrderIntent, coid: ClientOrderId, state: OrderState, ctx: SendContext,
    *, last_price: Decimal | None,
) -> GateVerdict:  # fmt: skip
    """Check ``intent`` (client id ``coid``, read as ``state``) at send time; ``last_price``: the band's reference
    (the override, else the last close known at the event time). See the module docstring."""
    switch = state.kill_switch
    if switch.engaged:
        _record_guard(conn, ctx, intent, False, f"kill switch engaged: {switch.reason}", {"engaged": "True"})
        record_trip(conn, run_id=ctx.run_id, account=intent.account, guard="kill_switch", reason=switch.reason,
                    numbers={"engaged": True}, symbol=intent.symbol, decision_id=intent.decision_id,
                    alert_kind=ctx.trip_alert)  # fmt: skip
        return GateVerdict(GateDecision.BLOCKED, intent)
    gated: list[LimitBreach] = []
    if ctx.slice_gate is not None:
        allowed, denied = ctx.slice_gate(conn, intent, ctx.event_time)
        intent, gated = allowed or intent, list(denied)
    breaches = gated + account_guards(conn, intent, state, broker=ctx.broker, settings=ctx.settings, store=ctx.store)
    breaches, numbers = _limit_breaches(intent, state, ctx, breaches, last_price=last_price)
    if not breaches:
        return GateVerdict(GateDecision.PASSED, intent, (), numbers)
    _record_guard(conn, ctx, intent, False, "; ".join(b.reason for b in breaches), numbers)
    for b in breaches:
        record_trip(conn, run_id=ctx.run_id, account=intent.account, guard=b.limit, reason=b.reason,
                    numbers=b.numbers, symbol=intent.symbol, client_order_id=coid, decision_id=intent.decision_id,
                    alert_kind=ctx.trip_alert)  # fmt: skip
    return GateVerdict(GateDecision.REFUSED, intent, tuple(breaches), numbers)


def _limit_breaches(
    intent: OrderIntent, state: OrderState, ctx: SendContext, breaches: list[LimitBreach], *, last_price: Decimal | None
) -> tuple[list[LimitBreach], dict[str, Any]]:
    """``breaches`` and those of the venue's quote, the fx rate, the hard limits and long-only; with the numbers."""
    holding = state.holding
    signed = intent.quantity if intent.side is Side.BUY else -intent.quantity
    quote_rate = QuoteRate(quote_currency(intent.symbol, state.base_currency), state.base_currency,
                           state.quote_rate, ctx.event_time)  # fmt: skip
    venue_now, unquoted = venue_price(ctx.broker, intent)
    if unquoted is not None:
        breaches.append(unquoted)
    if quote_rate.rate is None:
        pair = {"quote": quote_rate.quote, "base": quote_rate.base}
        breaches.append(LimitBreach("fx_rate", str(quote_rate.missing), pair))
    else:
        breaches += check_hard_limits(
            HardLimits.from_settings(ctx.settings),
            signed_quantity=signed,
            price=intent.reference_price,
            current_quantity=holding.quantity,
            last_price=venue_now or last_price or intent.reference_price,
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
        "venue_price": str(venue_now) if venue_now is not None else _UNQUOTED,
        "breaches": {b.limit: b.numbers for b in breaches},
    }
    return breaches, numbers


_UNQUOTED = "not quoted (paper: the last close known at the event time is its current price)"


def venue_price(broker: Broker, intent: OrderIntent) -> tuple[Decimal | None, LimitBreach | None]:
    """The venue's current price for the price band, asked at send time (``QuotingBroker``), or why there is none.

    The decision's reference price is the close of the bar it read, so the band around that same bar's close can
    never trip; the band that protects a send is the move since the decision, measured at the venue just before the
    order leaves. A live venue that cannot quote means the order is not sent (a market order is never sent blind),
    except a protective exit. A paper broker has no quote of its own: its current price is the last close known at
    the event time (its simulated clock), which is the band's ``last_price``."""
    if not is_quoting(broker):
        return None, None
    try:
        return broker.current_price(intent.symbol, intent.side), None
    except (VenueError, VenueTemporaryError) as exc:
        return None, LimitBreach(
            "price_band",
            f"no current price from {broker.name} for {intent.symbol}: {type(exc).__name__}: {exc}",
            {"venue": broker.name, "error": type(exc).__name__, "reference_price": str(intent.reference_price)},
        )


def account_guards(
    conn: Connection,
    intent: OrderIntent,
    state: OrderState,
    *,
    broker: Broker,
    settings: Settings,
    store: OrderStore = DB_STORE,
) -> list[LimitBreach]:
    """Account-level guards before any submit: live arming, account halt, daily loss limit, orders per run (a
    tripped daily loss limit halts the account through ``store``)."""
    breaches: list[LimitBreach] = []
    if broker.live and not (state.live_enabled and state.mode in LIVE_MODES):
        mode = str(state.mode or "")
        breaches.append(
            LimitBreach(
                "live_not_armed",
                f"account {intent.account!r} (mode {mode}) is not armed for live orders",
                {"mode": mode, "live_enabled": str(state.live_enabled), "broker": broker.name},
            )
        )
    if state.halted:
        breaches.append(
            LimitBreach("account_halted", f"account halted: {state.halt_reason}", {"reason": state.halt_reason})
        )
    else:
        loss = check_daily_loss(state.day_start_equity, state.equity, settings.risk.daily_loss_limit)
        if loss is not None:
            store.halt(conn, intent.account, loss.reason, loss.numbers)
            breaches.append(loss)
    too_many = check_orders_per_run(state.orders_in_run, settings.risk.max_orders_per_run)
    if too_many is not None:
        breaches.append(too_many)
    return breaches
