"""Reads and writes of one order's audit rows, batched so that a decision costs few round trips to PostgreSQL.

Why batched: a decision's order touches a dozen audit rows (order, events, fills, position, cash, lineage, risk
check); written one statement each, round trips dominate the decision's latency. Each function here sends one
statement. Several writes in one statement are data-modifying CTEs: PostgreSQL runs each exactly once and all of
them see the same snapshot, so no two parts of one statement may touch the same row (callers aggregate first: one
position row, one balance row per statement).

- ``read_order_state``: everything the submit path needs to know about an intent before sending it (account,
  existing order, journal, kill switch, halt, day equity marks, orders in the run, last bar, the fx rate of the
  symbol's quote currency into the account's base currency, the position locked
  ``FOR UPDATE``), in one statement. Call it after taking the account lock, so its snapshot includes every commit
  made under that lock.
- ``write_report``: the events of a venue report, its new fills with their lineage, the position, the cash and the
  order's status, in one statement; for a new order (``NewOrder``) also the order row itself, its ``created`` event,
  its lineage edge to the decision and its ``execution_guard`` risk check.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from alphaloom.db.batch import Statement, cached_text
from alphaloom.domain import AccountId, ClientOrderId, Fill, OrderIntent, OrderStatus, Side, Symbol
from alphaloom.errors import InvalidOrderTransitionError
from alphaloom.ops.kill_switch import KillSwitchState
from execution.accounts.holdings import Holding, fee_charged_in, realized_on_sell
from execution.accounts.registry import AccountMode
from execution.brokers.base import OrderType
from execution.orders.state import transition


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


@dataclass(frozen=True, slots=True)
class OrderState:
    """What the submit path reads before sending one intent; ``account_venue`` is None when the account is unknown."""

    account_venue: str | None
    base_currency: str
    mode: AccountMode | None
    live_enabled: bool
    existing_status: OrderStatus | None
    attempted: bool
    kill_switch: KillSwitchState
    halted: bool
    halt_reason: str
    day_start_equity: Decimal | None
    equity: Decimal | None
    orders_in_run: int
    last_close: Decimal | None
    last_volume: Decimal | None
    holding: Holding
    # The order's family was recorded in another shape: for an unsplit order, children of it exist; for a child, its
    # parent exists as an order, or siblings not sent by this call do (split differently before).
    family_recorded: bool = False
    # TWAP slices of the other side on this account and symbol, cancelled by this read (``supersede``).
    superseded: int = 0
    # Units of the base currency per unit of the symbol's quote currency known at ``event_time`` (None: no rate stored;
    # 1 for a symbol quoted in the base currency), read in the same statement as the rest.
    quote_rate: Decimal | None = None


_ORDERS_IN_RUN = "(select count(*) from audit.orders where account = :a and run_id = :r)"
_ORDERS_IN_STEP = """(select count(*) from audit.orders o join audit.decisions d using (decision_id)
                      where o.account = :a and o.run_id = :r and d.as_of = :t)"""


def read_order_state(
    conn: Connection,
    *,
    account: AccountId,
    symbol: Symbol,
    client_order_id: ClientOrderId,
    run_id: str,
    exchange: str,
    timeframe: str,
    bar_cutoff: datetime,
    day_start: datetime,
    event_time: datetime,
    parent: ClientOrderId | None = None,
    own: Sequence[str] = (),
    supersede: OrderIntent | None = None,
    per_step: bool = False,
) -> OrderState:
    """One statement; the position row (if any) stays locked ``FOR UPDATE`` until the transaction ends. ``parent``:
    the order's parent client id when it is a child; ``own``: the client ids this call already recorded;
    ``supersede``: a decision's intent, whose account's TWAP slices of this symbol still scheduled on the other side
    are cancelled in the same statement (the decision changed its mind). ``per_step`` (a backtest replay, where
    one run holds every step): ``orders_in_run`` counts only the run's orders decided at ``event_time``."""
    family = (
        "exists (select 1 from audit.orders where parent_client_order_id = :c)"
        if parent is None
        else """(exists (select 1 from audit.orders where client_order_id = :parent)
                 or exists (select 1 from audit.orders where parent_client_order_id = :parent
                            and client_order_id <> all(:own)))"""
    )
    cancel = (
        """superseded as (
               update audit.scheduled_slices set status = 'cancelled', updated_at = now(), released_run_id = :r,
                      reason = 'superseded by decision ' || cast(:sd as text) || ' (' || cast(:sside as text) || ')'
               where account = :a and symbol = :s and status = 'scheduled' and side <> :sside
               returning 1
           ),"""
        if supersede is not None
        else ""
    )
    row = conn.execute(
        cached_text(
            f"""with {cancel} pos as (
                   select quantity, avg_price, realized_pnl from audit.positions
                   where account = :a and symbol = :s for update
               ),
               acct as (select venue, base_currency, mode, live_enabled from audit.accounts where id = :a),
               ks as (select engaged, reason, changed_by from audit.kill_switch order by id desc limit 1),
               halt as (select halted, reason from audit.account_halts where account = :a order by id desc limit 1),
               bar as (
                   select close, volume from raw.ohlcv
                   where exchange = :e and symbol = :s and timeframe = :tf and ts <= :cutoff
                   order by ts desc limit 1
               ),
               fx as (
                   select case when q.ccy = acct.base_currency then 1
                               when r.base = q.ccy then r.rate else 1 / r.rate end as rate
                   from acct
                   cross join lateral (select coalesce(nullif(split_part(:s, '/', 2), ''), acct.base_currency) as ccy) q
                   left join lateral (
                       select base, rate from audit.fx_rates
                       where ((base = q.ccy and quote = acct.base_currency)
                              or (base = acct.base_currency and quote = q.ccy)) and as_of <= :t
                       order by as_of desc, base = q.ccy desc limit 1
                   ) r on true
               )
               select acct.venue, acct.base_currency, acct.mode, acct.live_enabled,
                      (select status from audit.orders where client_order_id = :c) as existing_status,
                      exists (select 1 from audit.submit_attempts where client_order_id = :c) as attempted,
                      ks.engaged as ks_engaged, ks.reason as ks_reason, ks.changed_by as ks_changed_by,
                      halt.halted, halt.reason as halt_reason,
                      (select equity from audit.equity_marks where account = :a and as_of >= :d and as_of <= :t
                       order by as_of limit 1) as day_start_equity,
                      (select equity from audit.equity_marks where account = :a and as_of <= :t
                       order by as_of desc limit 1) as equity,
                      {_ORDERS_IN_STEP if per_step else _ORDERS_IN_RUN} as orders_in_run,
                      bar.close, bar.volume, pos.quantity, pos.avg_price, pos.realized_pnl,
                      {family} as family_recorded,
                      {"(select count(*) from superseded)" if supersede is not None else "0"} as superseded,
                      (select rate from fx) as quote_rate
               from (select 1) as one
               left join acct on true left join ks on true left join halt on true left join bar on true
               left join pos on true"""
        ),
        {"a": account, "s": symbol, "c": client_order_id, "r": run_id, "e": exchange, "tf": timeframe,
         "cutoff": bar_cutoff, "d": day_start, "t": event_time}
        | ({} if parent is None else {"parent": parent, "own": list(own)})
        | ({} if supersede is None else {"sd": supersede.decision_id, "sside": supersede.side.value}),
    ).one()  # fmt: skip
    return OrderState(
        account_venue=row.venue,
        base_currency=row.base_currency or "",
        mode=None if row.mode is None else AccountMode(row.mode),
        live_enabled=bool(row.live_enabled),
        existing_status=None if row.existing_status is None else OrderStatus(row.existing_status),
        attempted=bool(row.attempted),
        kill_switch=KillSwitchState(False, "never engaged", "")
        if row.ks_engaged is None
        else KillSwitchState(bool(row.ks_engaged), row.ks_reason, row.ks_changed_by),
        halted=bool(row.halted),
        halt_reason="never halted" if row.halted is None else row.halt_reason,
        day_start_equity=None if row.day_start_equity is None else Decimal(row.day_start_equity),
        equity=None if row.equity is None else Decimal(row.equity),
        orders_in_run=int(row.orders_in_run),
        last_close=None if row.close is None else Decimal(row.close),
        last_volume=None if row.volume is None else Decimal(row.volume),
        holding=Holding.flat()
        if row.quantity is None
        else Holding(Decimal(row.quantity), Decimal(row.avg_price), Decimal(row.realized_pnl)),
        family_recorded=bool(row.family_recorded),
        superseded=int(row.superseded),
        quote_rate=None if row.quote_rate is None else Decimal(row.quote_rate),
    )


def read_quote_rates(
    conn: Connection, intents: Sequence[OrderIntent], event_time: datetime
) -> dict[tuple[str, str], Decimal | None]:
    """``{(account, symbol): units of the account's base currency per unit of the symbol's quote currency}`` known at
    ``event_time`` (1 when they are the same; None when no rate is stored, or the account is unknown), read as
    ``read_order_state`` reads it, for every intent in one statement. Splitting compares notionals in the base
    currency through these before any order state is read."""
    pairs = sorted({(i.account, i.symbol) for i in intents})
    if not pairs:
        return {}
    rows = conn.execute(
        cached_text(
            """select p.account, p.symbol,
                      case when q.ccy = acct.base_currency then 1
                           when r.base = q.ccy then r.rate else 1 / r.rate end as rate
               from unnest(cast(:a as text[]), cast(:s as text[])) as p(account, symbol)
               join audit.accounts acct on acct.id = p.account
               cross join lateral (
                   select coalesce(nullif(split_part(p.symbol, '/', 2), ''), acct.base_currency) as ccy
               ) q
               left join lateral (
                   select base, rate from audit.fx_rates
                   where ((base = q.ccy and quote = acct.base_currency)
                          or (base = acct.base_currency and quote = q.ccy)) and as_of <= :t
                   order by as_of desc, base = q.ccy desc limit 1
               ) r on true"""
        ),
        {"a": [a for a, _ in pairs], "s": [s for _, s in pairs], "t": event_time},
    ).all()
    rates: dict[tuple[str, str], Decimal | None] = dict.fromkeys(pairs)
    for row in rows:
        rates[(row.account, row.symbol)] = None if row.rate is None else Decimal(row.rate)
    return rates


@dataclass(frozen=True, slots=True)
class GuardRow:
    """The ``execution_guard`` risk check recorded with the order (``check_name`` already suffixed for its leg)."""

    check_name: str
    approved: bool
    reason: str
    numbers: Mapping[str, Any]


def record_guard(conn: Connection, run_id: str, intent: OrderIntent, guard: GuardRow) -> None:
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
            "c": guard.check_name,
            "ok": guard.approved,
            "reason": guard.reason,
            "n": _dumps(guard.numbers),
        },
    )


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order recorded together with its first venue report (``write_report(new_order=...)``): the row, its
    ``created`` event, its lineage edge to the decision and, optionally, its ``execution_guard`` risk check.
    ``journal``: the submit journal's details of its attempt, written in the same statement (a journal kept in the
    caller's transaction, ``execution.orders.journal.journal_apart`` False: no statement of its own)."""

    intent: OrderIntent
    venue: str
    parent: ClientOrderId | None
    arrival_price: Decimal | None
    guard: GuardRow | None = None
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    journal: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EventRow:
    from_status: OrderStatus | None
    to_status: OrderStatus
    details: Mapping[str, Any]
    event: str | None = None


@dataclass(frozen=True, slots=True)
class FillBooking:
    """The fills to book for one order, the position they leave and the cash they move in ``currency`` (already
    aggregated)."""

    fills: Sequence[tuple[str, Fill]]
    account: AccountId
    symbol: Symbol
    holding: Holding
    currency: str
    cash_delta: Decimal
    # fees charged in a third asset (BNB): that asset's balance change, per asset
    # (``execution.accounts.holdings.fee_cash``)
    fee_cash: Mapping[str, Decimal] = field(default_factory=dict)
    # the position's average cost before these fills, as the caller read it locked in this transaction (None: read
    # again by ``write_report`` when a sell needs it)
    prior_avg_price: Decimal | None = None


def cash_moves(booking: FillBooking) -> dict[str, Decimal]:
    """What the booking adds to each balance of its account: the quote cash, and the assets third-asset fees were
    paid in (``write_report`` adds each to its ``audit.balances`` row, created at that amount when absent)."""
    moves = {booking.currency: booking.cash_delta}
    for currency, amount in booking.fee_cash.items():
        moves[currency] = moves.get(currency, Decimal(0)) + amount
    return moves


def _cash_rows(booking: FillBooking, run_id: str) -> list[tuple[Any, ...]]:
    """One balance row per currency the booking moves (``cash_moves``)."""
    return [(booking.account, currency, amount, run_id) for currency, amount in cash_moves(booking).items()]


def _realizations(conn: Connection, booking: FillBooking) -> list[Decimal | None]:
    """What each fill of ``booking`` realised in the quote currency (None for a buy): against the position's average
    cost before the booking (the row is not updated yet; a sell leaves the average cost unchanged)."""
    if all(f.side is not Side.SELL for _, f in booking.fills):
        return [None] * len(booking.fills)
    avg = booking.prior_avg_price
    if avg is None:
        avg = conn.execute(
            text("select avg_price from audit.positions where account = :a and symbol = :s"),
            {"a": booking.account, "s": booking.symbol},
        ).scalar()
    avg_price = Decimal(avg) if avg is not None else Decimal(0)
    return [
        realized_on_sell(avg_price, quantity=f.quantity, price=f.price, fee=f.fee,
                         fee_in=fee_charged_in(f.symbol, f.fee_currency))
        if f.side is Side.SELL
        else None
        for _, f in booking.fills
    ]  # fmt: skip


def check_moves(events: Sequence[EventRow], status: OrderStatus, *, start: OrderStatus | None = None) -> None:
    """``events`` move an order from ``start`` (when known: ``new`` for an order being inserted) along the transition
    table (``execution.orders.state.transition``), one after the other, and leave it at ``status``; otherwise
    ``InvalidOrderTransitionError``."""
    previous = start
    for event in events:
        if event.from_status is None or (previous is not None and event.from_status != previous):
            raise InvalidOrderTransitionError(str(previous or event.from_status), event.to_status.value)
        previous = transition(event.from_status, event.to_status)
    if previous is not None and previous != status:
        raise InvalidOrderTransitionError(previous.value, status.value)


def write_report(
    conn: Connection,
    *,
    run_id: str,
    client_order_id: ClientOrderId,
    event_time: datetime,
    events: Sequence[EventRow],
    booking: FillBooking | None,
    status: OrderStatus,
    venue_order_id: str | None,
    filled_quantity: Decimal | None,
    new_order: NewOrder | None = None,
) -> None:
    """Events, fills (with lineage to the order), position, cash and the order's status, in one statement. With
    ``new_order`` the order row is inserted in the same statement, already at ``status`` (it must not exist yet:
    the caller holds the account lock and has checked), preceded by its ``created`` event. Every status change goes
    through the transition table (``check_moves``): a forbidden one raises ``InvalidOrderTransitionError`` and
    nothing is written."""
    check_moves(events, status, start=None if new_order is None else OrderStatus.NEW)
    st = Statement()
    parts = []
    lineage: list[tuple[Any, ...]] = []
    if new_order is not None:
        intent, guard = new_order.intent, new_order.guard
        if guard is not None:
            parts.append(
                "g as (insert into audit.risk_checks (run_id, decision_id, account, symbol, check_name, approved,"
                " reason, numbers) values "
                + st.values(
                    [(run_id, intent.decision_id, intent.account, intent.symbol, guard.check_name, guard.approved,
                      guard.reason, _dumps(guard.numbers))],
                    {7: "jsonb"},
                )
                + " on conflict (decision_id, check_name) do nothing)"
            )  # fmt: skip
        parts.append(
            "o as (insert into audit.orders (client_order_id, decision_id, leg, run_id, account, venue, symbol, side,"
            " order_type, quantity, reference_price, status, parent_client_order_id, arrival_price, venue_order_id,"
            " filled_quantity, limit_price) values "
            + st.values(
                [(client_order_id, intent.decision_id, intent.leg, run_id, intent.account, new_order.venue,
                  intent.symbol, intent.side.value, str(new_order.order_type), intent.quantity, intent.reference_price,
                  status.value, new_order.parent, new_order.arrival_price, venue_order_id,
                  Decimal(0) if filled_quantity is None else filled_quantity, new_order.limit_price)]
            )
            + ")"
        )  # fmt: skip
        if new_order.journal is not None:  # as execution.orders.journal.record_attempt writes it
            parts.append(
                "sa as (insert into audit.submit_attempts (client_order_id, account, venue, details) values "
                + st.values([(client_order_id, intent.account, new_order.venue, _dumps(new_order.journal))],
                            {3: "jsonb"})
                + """ on conflict (client_order_id) do update set resolved_at = null, resolution = null,
                      details = coalesce(excluded.details, audit.submit_attempts.details))"""
            )  # fmt: skip
        events = [EventRow(None, OrderStatus.NEW, {"broker": new_order.venue}, "created"), *events]
        lineage.append((run_id, "audit.orders", client_order_id, "audit.decisions",
                        _dumps({"decision_id": intent.decision_id})))  # fmt: skip
    if events:
        event_rows = [(client_order_id, run_id, e.event or e.to_status.value, None if e.from_status is None else
                 e.from_status.value, e.to_status.value, event_time, _dumps(e.details)) for e in events]  # fmt: skip
        parts.append(
            "ev as (insert into audit.order_events (client_order_id, run_id, event, from_status, to_status, event_ts,"
            " details) values " + st.values(event_rows, {6: "jsonb"}) + ")"
        )
    if booking is not None and booking.fills:
        realized = _realizations(conn, booking)
        fill_rows = [(fill_id, f.client_order_id, run_id, booking.account, f.symbol, f.side.value, f.quantity, f.price,
                 f.fee, f.fee_currency, f.slippage, f.ts, pnl)
                for (fill_id, f), pnl in zip(booking.fills, realized, strict=True)]  # fmt: skip
        parts.append(
            "f as (insert into audit.fills (fill_id, client_order_id, run_id, account, symbol, side, quantity, price,"
            " fee, fee_currency, slippage, ts, realized_pnl) values " + st.values(fill_rows, {12: "numeric"}) + ")"
        )
        lineage += [(run_id, "audit.fills", fill_id, "audit.orders", _dumps({"client_order_id": f.client_order_id}))
                    for fill_id, f in booking.fills]  # fmt: skip
        h = booking.holding
        parts.append(
            "p as (insert into audit.positions (account, symbol, quantity, avg_price, realized_pnl, run_id) values "
            + st.values([(booking.account, booking.symbol, h.quantity, h.avg_price, h.realized_pnl, run_id)])
            + """ on conflict (account, symbol) do update
                  set quantity = excluded.quantity, avg_price = excluded.avg_price,
                      realized_pnl = excluded.realized_pnl, run_id = excluded.run_id, updated_at = now())"""
        )
        parts.append(
            "b as (insert into audit.balances (account, currency, amount, run_id) values "
            + st.values(_cash_rows(booking, run_id))
            + """ on conflict (account, currency) do update
                  set amount = audit.balances.amount + excluded.amount, run_id = excluded.run_id,
                      updated_at = now())"""
        )
    if lineage:
        parts.append(
            "l as (insert into audit.lineage (run_id, child_table, child_id, parent_table, parent_key) values "
            + st.values(lineage, {4: "jsonb"})
            + ")"
        )
    if new_order is not None:
        st.execute(conn, "with " + ",\n".join(parts) + "\nselect 1")
        return
    update = f"""update audit.orders set status = {st.bind(status.value)}, updated_at = now(),
               venue_order_id = coalesce({st.bind(venue_order_id)}, venue_order_id),
               filled_quantity = coalesce(cast({st.bind(filled_quantity)} as numeric), filled_quantity)
           where client_order_id = {st.bind(client_order_id)}"""
    sql = ("with " + ",\n".join(parts) + "\n" if parts else "") + update
    st.execute(conn, sql)
