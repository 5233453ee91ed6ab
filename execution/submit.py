"""Execution: turn approved ``OrderIntent``s into orders at a broker, exactly once, and book what filled.

For each intent, in order (on the caller's connection; the caller's transaction decides), under a per-account
advisory lock:

1. an order with the intent's client order id (``client_order_id_for(decision_id, leg)``) already exists -> nothing is
   sent; it is returned in ``duplicates``, after reconciling with ``broker.lookup`` when its status was not final;
2. the submit journal (``execution.journal``) shows an earlier attempt that never got recorded (a crash between
   submit and record) -> the venue is asked by client order id first; what it has is recorded (``recovered``) and
   nothing is resent; only an order the venue never saw may be sent;
3. kill switch engaged -> nothing is sent (no broker call), counted in ``kill_switch_blocked``;
4. the guards: live arming (a ``live`` broker needs an account in mode live/shadow with ``live_enabled``), account
   halt, daily loss limit (halts the account), orders per decision run, the hard limits of ``alphaloom.guards``
   (max notional per order, max position, price band around the last trade) and long-only -> a breach sends nothing,
   raises nothing, is returned in ``refused``; every trip is recorded (``audit.guard_trips``);
5. the order row is inserted (``ON CONFLICT (client_order_id) DO NOTHING``), the attempt journaled and committed,
   the order submitted, and its events (new -> submitted -> filled | expired...), fills, position and cash written.

Steps 3-4 are also recorded as an ``execution_guard`` risk check, denied or approved, with the numbers.

Writes: ``audit.orders`` (with ``arrival_price``: the last trade at submit, and ``parent_client_order_id`` for child
orders), ``audit.order_events`` (``event_ts`` = ``event_time``), ``audit.fills``, ``audit.positions``,
``audit.balances`` (the account's base currency), ``audit.risk_checks``, ``audit.guard_trips``, ``audit.lineage``
(order -> decision, fill -> order), and ``audit.submit_attempts`` (committed separately). Cash moves in the
symbol's quote currency (``audit.balances`` per currency); views convert it into the base currency (``alphaloom.fx``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from alphaloom.audit import add_lineage
from alphaloom.domain import (
    ClientOrderId,
    Fill,
    OrderIntent,
    OrderStatus,
    Side,
    client_order_id_for,
    require_utc,
    timeframe_delta,
)
from alphaloom.errors import (
    ConfigError,
    KillSwitchEngagedError,
    OrderRejectedError,
    UnknownOrderStateError,
    VenueTemporaryError,
)
from alphaloom.guards import HardLimits, LimitBreach, check_hard_limits, kill_switch_state
from alphaloom.settings import Settings
from execution.brokers.base import Broker, BrokerReport, OrderRequest
from execution.fatfinger import (
    check_daily_loss,
    check_orders_per_run,
    day_equity,
    halt_state,
    orders_in_run,
    record_trip,
    set_halt,
)
from execution.journal import record_attempt, was_attempted
from execution.ledger import Holding, apply_fill, cash_change
from execution.orders import is_terminal, path_to

GUARD_CHECK = "execution_guard"


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
    """What ``execute`` did. ``broker_submits`` counts calls to ``broker.submit``."""

    submitted: list[OrderOutcome] = field(default_factory=list)
    duplicates: list[OrderOutcome] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    rejected: list[OrderOutcome] = field(default_factory=list)
    unknown: list[ClientOrderId] = field(default_factory=list)
    recovered: list[OrderOutcome] = field(default_factory=list)
    kill_switch_blocked: int = 0
    broker_submits: int = 0


@dataclass(frozen=True, slots=True)
class _Account:
    venue: str
    base_currency: str
    mode: str
    live_enabled: bool


def _account(conn: Connection, account: str) -> _Account:
    row = conn.execute(
        text("select venue, base_currency, mode, live_enabled from audit.accounts where id = :a"), {"a": account}
    ).first()
    if row is None:
        raise ConfigError(f"account {account!r} does not exist; create it with execution.accounts.ensure_account")
    return _Account(row.venue, row.base_currency, row.mode, bool(row.live_enabled))


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
    conn.execute(
        text(
            """insert into audit.risk_checks (run_id, decision_id, account, symbol, check_name, approved, reason,
                                              numbers)
               values (:r, :d, :a, :s, :c, :ok, :reason, cast(:n as jsonb))
               on conflict (decision_id, check_name) do nothing"""
        ),
        {
            "r": run_id,
            "d": intent.decision_id,
            "a": intent.account,
            "s": intent.symbol,
            "c": _guard_name(intent),
            "ok": approved,
            "reason": reason,
            "n": json.dumps(numbers, default=str),
        },
    )


def _record_event(
    conn: Connection,
    run_id: str,
    client_order_id: str,
    from_status: OrderStatus | None,
    to_status: OrderStatus,
    event_time: datetime,
    details: Mapping[str, Any],
    event: str | None = None,
) -> None:
    conn.execute(
        text(
            """insert into audit.order_events (client_order_id, run_id, event, from_status, to_status, event_ts,
                                               details)
               values (:c, :r, :e, :f, :t, :ts, cast(:d as jsonb))"""
        ),
        {
            "c": client_order_id,
            "r": run_id,
            "e": event or to_status.value,
            "f": None if from_status is None else from_status.value,
            "t": to_status.value,
            "ts": event_time,
            "d": json.dumps(details, default=str),
        },
    )


def _set_status(conn: Connection, client_order_id: str, status: OrderStatus, report: BrokerReport | None) -> None:
    conn.execute(
        text(
            """update audit.orders set status = :s, updated_at = now(),
                   venue_order_id = coalesce(:v, venue_order_id),
                   filled_quantity = coalesce(:fq, filled_quantity)
               where client_order_id = :c"""
        ),
        {
            "s": status.value,
            "v": None if report is None else report.venue_order_id,
            "fq": None if report is None else report.filled_quantity,
            "c": client_order_id,
        },
    )


def _book_fill(conn: Connection, *, run_id: str, fill_id: str, fill: Fill, account: str, base_currency: str) -> None:
    conn.execute(
        text(
            """insert into audit.fills (fill_id, client_order_id, run_id, account, symbol, side, quantity, price, fee,
                                        fee_currency, slippage, ts)
               values (:id, :c, :r, :a, :s, :side, :q, :p, :fee, :fc, :slip, :ts)"""
        ),
        {
            "id": fill_id,
            "c": fill.client_order_id,
            "r": run_id,
            "a": account,
            "s": fill.symbol,
            "side": fill.side.value,
            "q": fill.quantity,
            "p": fill.price,
            "fee": fill.fee,
            "fc": fill.fee_currency,
            "slip": fill.slippage,
            "ts": fill.ts,
        },
    )
    holding = apply_fill(
        _holding(conn, account, fill.symbol, lock=True),
        side=fill.side,
        quantity=fill.quantity,
        price=fill.price,
        fee=fill.fee,
    )
    conn.execute(
        text(
            """insert into audit.positions (account, symbol, quantity, avg_price, realized_pnl, run_id)
               values (:a, :s, :q, :avg, :pnl, :r)
               on conflict (account, symbol) do update
               set quantity = excluded.quantity, avg_price = excluded.avg_price,
                   realized_pnl = excluded.realized_pnl, run_id = excluded.run_id, updated_at = now()"""
        ),
        {
            "a": account,
            "s": fill.symbol,
            "q": holding.quantity,
            "avg": holding.avg_price,
            "pnl": holding.realized_pnl,
            "r": run_id,
        },
    )
    conn.execute(
        text(
            """insert into audit.balances (account, currency, amount, run_id) values (:a, :c, :delta, :r)
               on conflict (account, currency) do update
               set amount = audit.balances.amount + excluded.amount, run_id = excluded.run_id, updated_at = now()"""
        ),
        {
            "a": account,
            "c": _quote_currency(fill.symbol, base_currency),  # cash moves in the symbol's quote currency
            "delta": cash_change(side=fill.side, quantity=fill.quantity, price=fill.price, fee=fill.fee),
            "r": run_id,
        },
    )
    add_lineage(conn, run_id, "audit.fills", fill_id, [("audit.orders", {"client_order_id": fill.client_order_id})])


def _quote_currency(symbol: str, default: str) -> str:
    return symbol.split("/", 1)[1] if "/" in symbol else default


def _apply_report(
    conn: Connection,
    *,
    run_id: str,
    current: OrderStatus,
    report: BrokerReport,
    account: str,
    base_currency: str,
    event_time: datetime,
) -> OrderStatus:
    """Bring the recorded order up to the venue's report: events along the transition table, then the fills not
    booked yet (by fill id ``<client order id>-<n>``). Returns the new status."""
    coid = report.client_order_id
    booked = set(
        conn.execute(text("select fill_id from audit.fills where client_order_id = :c"), {"c": coid}).scalars()
    )
    new_fills = [(f"{coid}-{n}", fill) for n, fill in enumerate(report.fills) if f"{coid}-{n}" not in booked]
    steps = path_to(current, report.status)
    if not steps and new_fills and current is OrderStatus.PARTIALLY_FILLED:
        steps = [OrderStatus.PARTIALLY_FILLED]
    status = current
    for step in steps:
        _record_event(
            conn,
            run_id,
            coid,
            status,
            step,
            event_time,
            {
                "venue_order_id": report.venue_order_id,
                "fill_ids": [fid for fid, _ in new_fills],
                "reason": report.reason,
            }
            if step is steps[-1]
            else {"venue_order_id": report.venue_order_id},
        )
        status = step
    for fill_id, fill in new_fills:
        _book_fill(conn, run_id=run_id, fill_id=fill_id, fill=fill, account=account, base_currency=base_currency)
    _set_status(conn, coid, status, report)
    return status


def _last_bar(
    conn: Connection, settings: Settings, symbol: str, event_time: datetime
) -> tuple[Decimal, Decimal] | None:
    """(close, volume) of the newest ``raw.ohlcv`` bar known at ``event_time`` (point in time), or None."""
    row = conn.execute(
        text(
            """select close, volume from raw.ohlcv
               where exchange = :e and symbol = :s and timeframe = :tf and ts <= :cutoff
               order by ts desc limit 1"""
        ),
        {
            "e": settings.exchange,
            "s": symbol,
            "tf": settings.timeframe,
            "cutoff": event_time - timeframe_delta(settings.timeframe),
        },
    ).first()
    return None if row is None else (Decimal(row.close), Decimal(row.volume))


def _account_guards(
    conn: Connection,
    intent: OrderIntent,
    account: _Account,
    *,
    broker: Broker,
    settings: Settings,
    run_id: str,
    event_time: datetime,
) -> list[LimitBreach]:
    """Account-level guards before any submit: live arming, account halt, daily loss limit, orders per run."""
    breaches: list[LimitBreach] = []
    if getattr(broker, "live", False) and not (account.live_enabled and account.mode in ("live", "shadow")):
        breaches.append(
            LimitBreach(
                "live_not_armed",
                f"account {intent.account!r} (mode {account.mode}) is not armed for live orders",
                {"mode": account.mode, "live_enabled": str(account.live_enabled), "broker": broker.name},
            )
        )
    halt = halt_state(conn, intent.account)
    if halt.halted:
        breaches.append(LimitBreach("account_halted", f"account halted: {halt.reason}", {"reason": halt.reason}))
    else:
        day_start, equity = day_equity(conn, intent.account, event_time)
        loss = check_daily_loss(day_start, equity, settings.daily_loss_limit)
        if loss is not None:
            set_halt(conn, intent.account, True, loss.reason, loss.numbers)
            breaches.append(loss)
    too_many = check_orders_per_run(orders_in_run(conn, intent.account, run_id), settings.max_orders_per_run)
    if too_many is not None:
        breaches.append(too_many)
    return breaches


def _insert_order(
    conn: Connection,
    intent: OrderIntent,
    coid: ClientOrderId,
    *,
    run_id: str,
    broker: Broker,
    parent: ClientOrderId | None,
    arrival_price: Decimal | None,
    event_time: datetime,
) -> bool:
    inserted = conn.execute(
        text(
            """insert into audit.orders (client_order_id, decision_id, leg, run_id, account, venue, symbol, side,
                                         order_type, quantity, reference_price, status, parent_client_order_id,
                                         arrival_price)
               values (:c, :d, :leg, :r, :a, :venue, :s, :side, 'market', :q, :p, 'new', :parent, :arrival)
               on conflict (client_order_id) do nothing returning client_order_id"""
        ),
        {"c": coid, "d": intent.decision_id, "leg": intent.leg, "r": run_id, "a": intent.account,
         "venue": broker.name, "s": intent.symbol, "side": intent.side.value, "q": intent.quantity,
         "p": intent.reference_price, "parent": parent, "arrival": arrival_price},
    ).first()  # fmt: skip
    if inserted is None:
        return False
    _record_event(conn, run_id, coid, None, OrderStatus.NEW, event_time, {"broker": broker.name}, event="created")
    add_lineage(conn, run_id, "audit.orders", coid, [("audit.decisions", {"decision_id": intent.decision_id})])
    return True


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
) -> ExecutionResult:
    """Send each intent at most once (see the module docstring). ``last_prices`` overrides the price-band reference;
    by default it is the newest ``raw.ohlcv`` close known at ``event_time``, else the intent's reference price.
    ``parents`` maps a child order's client id to its parent's (TWAP, iceberg, routed splits)."""
    event_time = require_utc(event_time, "event_time")
    limits = HardLimits.from_settings(settings)
    result = ExecutionResult()
    for intent in intents:
        conn.execute(
            text("select pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"alphaloom:account:{intent.account}"}
        )
        account = _account(conn, intent.account)
        coid = client_order_id_for(intent.decision_id, intent.leg)

        existing = conn.execute(
            text("select status from audit.orders where client_order_id = :c"), {"c": coid}
        ).scalar()
        if existing is not None:
            outcome = _reconcile(
                conn,
                run_id=run_id,
                broker=broker,
                coid=coid,
                status=OrderStatus(existing),
                account=intent.account,
                base_currency=account.base_currency,
                event_time=event_time,
            )
            result.duplicates.append(outcome)
            continue

        bar = _last_bar(conn, settings, intent.symbol, event_time)
        override = (last_prices or {}).get(intent.symbol)
        last_price = override or (bar[0] if bar else None)
        parent = (parents or {}).get(coid)
        if was_attempted(conn, coid):
            # An earlier attempt's outcome is unknown (it crashed before recording): ask the venue before resending.
            report = broker.lookup(coid)
            if report is not None:
                _insert_order(conn, intent, coid, run_id=run_id, broker=broker, parent=parent,
                              arrival_price=last_price, event_time=event_time)  # fmt: skip
                status = _apply_report(conn, run_id=run_id, current=OrderStatus.NEW, report=report,
                                       account=intent.account, base_currency=account.base_currency,
                                       event_time=event_time)  # fmt: skip
                result.recovered.append(OrderOutcome(coid, status, report.fills, "recovered from the venue"))
                continue

        switch = kill_switch_state(conn)
        if switch.engaged:
            result.kill_switch_blocked += 1
            _record_guard(conn, run_id, intent, False, f"kill switch engaged: {switch.reason}", {"engaged": "True"})
            record_trip(conn, run_id=run_id, account=intent.account, guard="kill_switch", reason=switch.reason,
                        numbers={"engaged": True}, symbol=intent.symbol, decision_id=intent.decision_id)  # fmt: skip
            continue

        holding = _holding(conn, intent.account, intent.symbol, lock=True)
        signed = intent.quantity if intent.side is Side.BUY else -intent.quantity
        breaches = _account_guards(conn, intent, account, broker=broker, settings=settings, run_id=run_id,
                                   event_time=event_time)  # fmt: skip
        breaches += check_hard_limits(
            limits,
            signed_quantity=signed,
            price=intent.reference_price,
            current_quantity=holding.quantity,
            last_price=last_price or intent.reference_price,
        )
        if holding.quantity + signed < 0:
            breaches.append(
                LimitBreach(
                    "long_only",
                    f"selling {intent.quantity} exceeds the position {holding.quantity}",
                    {"position": str(holding.quantity), "order_quantity": str(signed)},
                )
            )
        numbers = {
            "notional": str(intent.notional),
            "position_quantity": str(holding.quantity),
            "reference_price": str(intent.reference_price),
            "last_price": str(last_price) if last_price is not None else "unknown (reference price used)",
            "breaches": {b.limit: b.numbers for b in breaches},
        }
        if breaches:
            result.refused.append(Refusal(intent, tuple(breaches)))
            _record_guard(conn, run_id, intent, False, "; ".join(b.reason for b in breaches), numbers)
            for b in breaches:
                record_trip(conn, run_id=run_id, account=intent.account, guard=b.limit, reason=b.reason,
                            numbers=b.numbers, symbol=intent.symbol, client_order_id=coid,
                            decision_id=intent.decision_id)  # fmt: skip
            continue
        _record_guard(conn, run_id, intent, True, "hard limits hold at execution", numbers)

        if not _insert_order(conn, intent, coid, run_id=run_id, broker=broker, parent=parent,
                             arrival_price=last_price, event_time=event_time):  # fmt: skip
            # inserted concurrently since we looked: the other run owns the submit
            result.duplicates.append(OrderOutcome(coid, OrderStatus.NEW, reason="created concurrently"))
            continue

        request = OrderRequest(
            client_order_id=coid,
            account=intent.account,
            symbol=intent.symbol,
            side=intent.side,
            quantity=intent.quantity,
            reference_price=intent.reference_price,
            submitted_at=event_time,
            bar_volume=bar[1] if bar else None,
        )
        record_attempt(conn, coid, intent.account, broker.name)
        result.broker_submits += 1
        try:
            report = broker.submit(request)
        except (KillSwitchEngagedError, OrderRejectedError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            _record_event(conn, run_id, coid, OrderStatus.NEW, OrderStatus.REJECTED, event_time, {"reason": reason})
            _set_status(conn, coid, OrderStatus.REJECTED, None)
            result.rejected.append(OrderOutcome(coid, OrderStatus.REJECTED, reason=reason))
            continue
        except (UnknownOrderStateError, VenueTemporaryError) as exc:
            # The venue may have it: mark it submitted and reconcile by client order id before anything is resent.
            _record_event(
                conn,
                run_id,
                coid,
                OrderStatus.NEW,
                OrderStatus.SUBMITTED,
                event_time,
                {"outcome": "unknown", "error": f"{type(exc).__name__}: {exc}"},
            )
            _set_status(conn, coid, OrderStatus.SUBMITTED, None)
            result.unknown.append(coid)
            continue
        status = _apply_report(
            conn,
            run_id=run_id,
            current=OrderStatus.NEW,
            report=report,
            account=intent.account,
            base_currency=account.base_currency,
            event_time=event_time,
        )
        result.submitted.append(OrderOutcome(coid, status, report.fills, report.reason))
    return result


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
) -> OrderOutcome:
    """An order that already exists is never sent again; when its outcome was not final, ask the venue."""
    if is_terminal(status):
        return OrderOutcome(coid, status, reason="already recorded")
    report = broker.lookup(coid)
    if report is None:
        return OrderOutcome(coid, status, reason="not known to the venue; left for a human to resolve")
    new_status = _apply_report(
        conn,
        run_id=run_id,
        current=status,
        report=report,
        account=account,
        base_currency=base_currency,
        event_time=event_time,
    )
    return OrderOutcome(coid, new_status, report.fills, "reconciled with the venue")


# --- applying a venue report outside ``execute`` (kill-switch cancels, reconciliation) --------------------------------


def apply_venue_report(
    conn: Connection, *, run_id: str, report: BrokerReport, event_time: datetime
) -> OrderStatus | None:
    """Bring the recorded order ``report.client_order_id`` up to the venue's report (events, fills, position, cash),
    as ``execute`` does; None when there is no such order in ``audit.orders``."""
    row = conn.execute(
        text(
            """select o.status, o.account, a.base_currency from audit.orders o
               join audit.accounts a on a.id = o.account where o.client_order_id = :c for update of o"""
        ),
        {"c": report.client_order_id},
    ).first()
    if row is None:
        return None
    return _apply_report(conn, run_id=run_id, current=OrderStatus(row.status), report=report, account=row.account,
                         base_currency=row.base_currency, event_time=require_utc(event_time, "event_time"))  # fmt: skip


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
    account = _account(conn, intent.account)
    if getattr(broker, "live", False) and not (account.live_enabled and account.mode in ("live", "shadow")):
        raise ConfigError(f"account {intent.account!r} (mode {account.mode}) is not armed for live orders")
    _insert_order(conn, intent, coid, run_id=run_id, broker=broker, parent=None, arrival_price=None,
                  event_time=event_time)  # fmt: skip
    conn.execute(
        text("update audit.orders set order_type = :t, limit_price = :l where client_order_id = :c"),
        {"t": order_type, "l": limit_price, "c": coid},
    )
    request = OrderRequest(coid, intent.account, intent.symbol, intent.side, intent.quantity, intent.reference_price,
                           event_time, order_type=order_type, limit_price=limit_price, stop_price=stop_price)  # fmt: skip
    record_attempt(conn, coid, intent.account, broker.name)
    try:
        report = broker.submit(request)
    except (KillSwitchEngagedError, OrderRejectedError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        _record_event(conn, run_id, coid, OrderStatus.NEW, OrderStatus.REJECTED, event_time, {"reason": reason})
        _set_status(conn, coid, OrderStatus.REJECTED, None)
        return OrderOutcome(coid, OrderStatus.REJECTED, reason=reason)
    except (UnknownOrderStateError, VenueTemporaryError) as exc:
        _record_event(conn, run_id, coid, OrderStatus.NEW, OrderStatus.SUBMITTED, event_time,
                      {"outcome": "unknown", "error": f"{type(exc).__name__}: {exc}"})  # fmt: skip
        _set_status(conn, coid, OrderStatus.SUBMITTED, None)
        return OrderOutcome(coid, OrderStatus.SUBMITTED, reason="outcome unknown; reconcile by client order id")
    status = _apply_report(conn, run_id=run_id, current=OrderStatus.NEW, report=report, account=intent.account,
                           base_currency=account.base_currency, event_time=event_time)  # fmt: skip
    return OrderOutcome(coid, status, report.fills, report.reason)
