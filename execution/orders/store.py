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
  its lineage edge to the decision and its ``execution_guard`` risk check. Its rows are built by the pure
  ``report_rows`` (``ReportRows``), which the in-memory store of a replay holds instead.
- ``OrderStore``: the port ``execution.submit.execute`` reads and writes through; ``DB_STORE`` is these functions,
  ``execution.orders.memory_store.MemoryOrderStore`` a replay's memory (same rows, written by ``COPY`` in bulk).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Connection, text

from alphaloom.db.batch import Statement, cached_text
from alphaloom.db.json_text import jsonb_text
from alphaloom.domain import AccountId, ClientOrderId, Fill, OrderIntent, OrderStatus, Side, Symbol
from alphaloom.errors import InvalidOrderTransitionError
from alphaloom.ops.kill_switch import KillSwitchState
from execution.accounts.holdings import Holding, fill_fee_in, realized_on_sell
from execution.accounts.registry import AccountLocks, AccountMode
from execution.brokers.base import OrderType
from execution.orders.state import transition
from execution.safety.fatfinger import set_halt


def _dumps(value: Any) -> str:
    return jsonb_text(value)


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


NEVER_ENGAGED = KillSwitchState(False, "never engaged", "")
NEVER_HALTED = "never halted"

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
    one run holds every step): ``orders_in_run`` counts only the run's orders decided at ``event_time``.

    Stages: the statement for this shape (``_state_sql``), its parameters (``_state_params``), the row read into
    an ``OrderState`` (``_state_from_row``)."""
    params = _state_params(account=account, symbol=symbol, client_order_id=client_order_id, run_id=run_id,
                           exchange=exchange, timeframe=timeframe, bar_cutoff=bar_cutoff, day_start=day_start,
                           event_time=event_time, parent=parent, own=own, supersede=supersede)  # fmt: skip
    sql = _state_sql(child=parent is not None, supersede=supersede is not None, per_step=per_step)
    return _state_from_row(conn.execute(cached_text(sql), params).one())


def _family_clause(child: bool) -> str:
    """Whether the order's family was recorded in another shape (see ``OrderState.family_recorded``)."""
    if not child:
        return "exists (select 1 from audit.orders where parent_client_order_id = :c)"
    return """(exists (select 1 from audit.orders where client_order_id = :parent)
                 or exists (select 1 from audit.orders where parent_client_order_id = :parent
                            and client_order_id <> all(:own)))"""


_SUPERSEDE_CTE = """superseded as (
               update audit.scheduled_slices set status = 'cancelled', updated_at = now(), released_run_id = :r,
                      reason = 'superseded by decision ' || cast(:sd as text) || ' (' || cast(:sside as text) || ')'
               where account = :a and symbol = :s and status = 'scheduled' and side <> :sside
               returning 1
           ),"""


def _state_sql(*, child: bool, supersede: bool, per_step: bool) -> str:
    """The one statement of ``read_order_state`` for an order of this shape."""
    return f"""with {_SUPERSEDE_CTE if supersede else ""} pos as (
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
                      {_family_clause(child)} as family_recorded,
                      {"(select count(*) from superseded)" if supersede else "0"} as superseded,
                      (select rate from fx) as quote_rate
               from (select 1) as one
               left join acct on true left join ks on true left join halt on true left join bar on true
               left join pos on true"""


def _state_params(
    *, account: AccountId, symbol: Symbol, client_order_id: ClientOrderId, run_id: str, exchange: str, timeframe: str,
    bar_cutoff: datetime, day_start: datetime, event_time: datetime, parent: ClientOrderId | None,
    own: Sequence[str], supersede: OrderIntent | None,
) -> dict[str, Any]:  # fmt: skip
    """The bound values of ``_state_sql``."""
    params: dict[str, Any] = {"a": account, "s": symbol, "c": client_order_id, "r": run_id, "e": exchange,
                              "tf": timeframe, "cutoff": bar_cutoff, "d": day_start, "t": event_time}  # fmt: skip
    if parent is not None:
        params |= {"parent": parent, "own": list(own)}
    if supersede is not None:
        params |= {"sd": supersede.decision_id, "sside": supersede.side.value}
    return params


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _state_from_row(row: Any) -> OrderState:
    """The ``OrderState`` of one row of ``_state_sql``."""
    return OrderState(
        account_venue=row.venue,
        base_currency=row.base_currency or "",
        mode=None if row.mode is None else AccountMode(row.mode),
        live_enabled=bool(row.live_enabled),
        existing_status=None if row.existing_status is None else OrderStatus(row.existing_status),
        attempted=bool(row.attempted),
        kill_switch=NEVER_ENGAGED
        if row.ks_engaged is None
        else KillSwitchState(bool(row.ks_engaged), row.ks_reason, row.ks_changed_by),
        halted=bool(row.halted),
        halt_reason=NEVER_HALTED if row.halted is None else row.halt_reason,
        day_start_equity=_decimal(row.day_start_equity),
        equity=_decimal(row.equity),
        orders_in_run=int(row.orders_in_run),
        last_close=_decimal(row.close),
        last_volume=_decimal(row.volume),
        holding=Holding.flat()
        if row.quantity is None
        else Holding(Decimal(row.quantity), Decimal(row.avg_price), Decimal(row.realized_pnl)),
        family_recorded=bool(row.family_recorded),
        superseded=int(row.superseded),
        quote_rate=_decimal(row.quote_rate),
    )


def read_quote_rates(
    conn: Connection, intents: Sequence[OrderIntent], event_time: datetime
) -> dict[tuple[str, str], Decimal | None]:
    """``{(account, symbol): units of the account's base currency per unit of the symbol's quote currency}`` known at
    ``event_time`` (1 when they are the same; None when no rate is stored, or the account is unknown), read as
    ``read_order_state`` reads it, for every intent in one statement. Splitting compares notionals in the base
    currency through these before any order state is read."""
    return read_pair_rates(conn, sorted({(i.account, i.symbol) for i in intents}), event_time)


def read_pair_rates(
    conn: Connection, pairs: Sequence[tuple[str, str]], event_time: datetime
) -> dict[tuple[str, str], Decimal | None]:
    """``read_quote_rates`` for ``(account, symbol)`` pairs."""
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

    def journaled(self, journal: Mapping[str, Any]) -> NewOrder:
        """This order with its submit journal's details (``dataclasses.replace(self, journal=journal)``, built
        directly: once per order a replay sends)."""
        return NewOrder(self.intent, self.venue, self.parent, self.arrival_price, self.guard, self.order_type,
                        self.limit_price, journal)  # fmt: skip


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


def needs_prior_avg(booking: FillBooking | None) -> bool:
    """Whether ``write_report`` must read the position's average cost before booking: a sell among the fills and
    the caller did not give it (``FillBooking.prior_avg_price``)."""
    return (
        booking is not None and booking.prior_avg_price is None and any(f.side is Side.SELL for _, f in booking.fills)
    )


def realizations(booking: FillBooking, avg: Decimal | None) -> list[Decimal | None]:
    """What each fill of ``booking`` realised in the quote currency (None for a buy): against the position's average
    cost before the booking (``avg``, else the booking's own; a sell leaves the average cost unchanged)."""
    prior = booking.prior_avg_price if booking.prior_avg_price is not None else avg
    avg_price = Decimal(prior) if prior is not None else Decimal(0)
    return [
        realized_on_sell(avg_price, quantity=f.quantity, price=f.price, fee=f.fee, fee_in=fill_fee_in(f))
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


# The columns of each table a report writes, in the order of the rows ``report_rows`` builds.
CHECK_COLUMNS = ("run_id", "decision_id", "account", "symbol", "check_name", "approved", "reason", "numbers")
ORDER_COLUMNS = ("client_order_id", "decision_id", "leg", "run_id", "account", "venue", "symbol", "side",
                 "order_type", "quantity", "reference_price", "status", "parent_client_order_id", "arrival_price",
                 "venue_order_id", "filled_quantity", "limit_price")  # fmt: skip
ATTEMPT_COLUMNS = ("client_order_id", "account", "venue", "details")
EVENT_COLUMNS = ("client_order_id", "run_id", "event", "from_status", "to_status", "event_ts", "details")
FILL_COLUMNS = ("fill_id", "client_order_id", "run_id", "account", "symbol", "side", "quantity", "price", "fee",
                "fee_currency", "slippage", "ts", "realized_pnl", "fee_from_units")  # fmt: skip
POSITION_COLUMNS = ("account", "symbol", "quantity", "avg_price", "realized_pnl", "run_id")
BALANCE_COLUMNS = ("account", "currency", "amount", "run_id")
LINEAGE_COLUMNS = ("run_id", "child_table", "child_id", "parent_table", "parent_key")


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A recorded order moved to ``status`` (its venue order id and filled quantity kept when None)."""

    client_order_id: ClientOrderId
    status: OrderStatus
    venue_order_id: str | None
    filled_quantity: Decimal | None


@dataclass(frozen=True, slots=True)
class ReportRows:
    """Every row one venue report writes, in its table's column order (``*_COLUMNS``): for a new order its guard
    check, the order row and its journal entry; the events, fills, position, balance moves and lineage edges; for a
    recorded order its status update instead of an order row. Both order stores write exactly these."""

    guard: tuple[Any, ...] | None
    order: tuple[Any, ...] | None
    attempt: tuple[Any, ...] | None
    events: list[tuple[Any, ...]]
    fills: list[tuple[Any, ...]]
    position: tuple[Any, ...] | None
    balances: list[tuple[Any, ...]]
    lineage: list[tuple[Any, ...]]
    update: StatusUpdate | None


def guard_row(run_id: str, intent: OrderIntent, guard: GuardRow) -> tuple[Any, ...]:
    """The ``audit.risk_checks`` row of ``guard`` (``CHECK_COLUMNS``)."""
    return (run_id, intent.decision_id, intent.account, intent.symbol, guard.check_name, guard.approved,
            guard.reason, _dumps(guard.numbers))  # fmt: skip


def _new_order_rows(
    run_id: str, client_order_id: ClientOrderId, new_order: NewOrder, status: OrderStatus,
    venue_order_id: str | None, filled_quantity: Decimal | None,
) -> tuple[tuple[Any, ...] | None, tuple[Any, ...], tuple[Any, ...] | None, tuple[Any, ...]]:  # fmt: skip
    """A new order's guard check, order row, journal entry and lineage edge to its decision."""
    intent, guard = new_order.intent, new_order.guard
    order = (client_order_id, intent.decision_id, intent.leg, run_id, intent.account, new_order.venue, intent.symbol,
             intent.side.value, str(new_order.order_type), intent.quantity, intent.reference_price, status.value,
             new_order.parent, new_order.arrival_price, venue_order_id,
             Decimal(0) if filled_quantity is None else filled_quantity, new_order.limit_price)  # fmt: skip
    attempt = (
        None
        if new_order.journal is None  # as execution.orders.journal.record_attempt writes it
        else (client_order_id, intent.account, new_order.venue, _dumps(new_order.journal))
    )
    edge = (run_id, "audit.orders", client_order_id, "audit.decisions", _dumps({"decision_id": intent.decision_id}))
    return None if guard is None else guard_row(run_id, intent, guard), order, attempt, edge


def _booking_rows(
    run_id: str, booking: FillBooking, realized: Sequence[Decimal | None]
) -> tuple[list[tuple[Any, ...]], tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """A booking's fill rows, position row, balance moves and fill -> order lineage edges."""
    fills = [(fill_id, f.client_order_id, run_id, booking.account, f.symbol, f.side.value, f.quantity, f.price,
              f.fee, f.fee_currency, f.slippage, f.ts, pnl, f.fee_from_units)
             for (fill_id, f), pnl in zip(booking.fills, realized, strict=True)]  # fmt: skip
    h = booking.holding
    position = (booking.account, booking.symbol, h.quantity, h.avg_price, h.realized_pnl, run_id)
    edges = [(run_id, "audit.fills", fill_id, "audit.orders", _dumps({"client_order_id": f.client_order_id}))
             for fill_id, f in booking.fills]  # fmt: skip
    return fills, position, _cash_rows(booking, run_id), edges


def report_rows(
    *,
    run_id: str,
    client_order_id: ClientOrderId,
    event_time: datetime,
    events: Sequence[EventRow],
    booking: FillBooking | None,
    status: OrderStatus,
    venue_order_id: str | None,
    filled_quantity: Decimal | None,
    new_order: NewOrder | None,
    realized: Sequence[Decimal | None] = (),
) -> ReportRows:
    """The rows of one report (pure; ``realized``: ``realizations`` of the booking's fills)."""
    guard = order = attempt = position = None
    lineage: list[tuple[Any, ...]] = []
    if new_order is not None:
        guard, order, attempt, edge = _new_order_rows(run_id, client_order_id, new_order, status, venue_order_id,
                                                      filled_quantity)  # fmt: skip
        events = [EventRow(None, OrderStatus.NEW, {"broker": new_order.venue}, "created"), *events]
        lineage.append(edge)
    event_rows = [(client_order_id, run_id, e.event or e.to_status.value,
                   None if e.from_status is None else e.from_status.value, e.to_status.value, event_time,
                   _dumps(e.details)) for e in events]  # fmt: skip
    fills: list[tuple[Any, ...]] = []
    balances: list[tuple[Any, ...]] = []
    if booking is not None and booking.fills:
        fills, position, balances, edges = _booking_rows(run_id, booking, realized)
        lineage += edges
    update = None if new_order is not None else StatusUpdate(client_order_id, status, venue_order_id, filled_quantity)
    return ReportRows(guard, order, attempt, event_rows, fills, position, balances, lineage, update)


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
    nothing is written.

    Stages: the moves checked (``check_moves``), the realised P&L of sells (``realizations``, the average cost read
    only when the caller did not give it), the rows (``report_rows``, pure), one statement (``_report_statement``)."""
    check_moves(events, status, start=None if new_order is None else OrderStatus.NEW)
    avg = read_avg_price(conn, booking.account, booking.symbol) if booking and needs_prior_avg(booking) else None
    rows = report_rows(run_id=run_id, client_order_id=client_order_id, event_time=event_time, events=events,
                       booking=booking, status=status, venue_order_id=venue_order_id,
                       filled_quantity=filled_quantity, new_order=new_order,
                       realized=realizations(booking, avg) if booking is not None and booking.fills else ())  # fmt: skip
    st = Statement()
    st.execute(conn, _report_statement(st, rows))


def read_avg_price(conn: Connection, account: AccountId, symbol: Symbol) -> Decimal | None:
    """The position's average cost as stored (None: no position row)."""
    avg = conn.execute(
        cached_text("select avg_price from audit.positions where account = :a and symbol = :s"),
        {"a": account, "s": symbol},
    ).scalar()
    return None if avg is None else Decimal(avg)


def read_holding(conn: Connection, account: AccountId, symbol: Symbol, *, lock: bool = False) -> Holding:
    """The position as stored (flat when there is none), locked ``FOR UPDATE`` with ``lock``."""
    row = conn.execute(
        cached_text(
            "select quantity, avg_price, realized_pnl from audit.positions where account = :a and symbol = :s"
            + (" for update" if lock else "")
        ),
        {"a": account, "s": symbol},
    ).first()
    if row is None:
        return Holding.flat()
    return Holding(Decimal(row.quantity), Decimal(row.avg_price), Decimal(row.realized_pnl))


def _report_statement(st: Statement, rows: ReportRows) -> str:
    """``rows`` as one statement of data-modifying CTEs (ending in the status update of a recorded order)."""
    parts = []
    if rows.guard is not None:
        parts.append(f"g as (insert into audit.risk_checks ({', '.join(CHECK_COLUMNS)}) values "
                     + st.values([rows.guard], {7: "jsonb"}) + " on conflict (decision_id, check_name) do nothing)")  # fmt: skip
    if rows.order is not None:
        parts.append(f"o as (insert into audit.orders ({', '.join(ORDER_COLUMNS)}) values "
                     + st.values([rows.order]) + ")")  # fmt: skip
    if rows.attempt is not None:
        parts.append(f"sa as (insert into audit.submit_attempts ({', '.join(ATTEMPT_COLUMNS)}) values "
                     + st.values([rows.attempt], {3: "jsonb"}) + _ATTEMPT_CONFLICT + ")")  # fmt: skip
    if rows.events:
        parts.append(f"ev as (insert into audit.order_events ({', '.join(EVENT_COLUMNS)}) values "
                     + st.values(rows.events, {6: "jsonb"}) + ")")  # fmt: skip
    if rows.fills:
        parts.append(f"f as (insert into audit.fills ({', '.join(FILL_COLUMNS)}) values "
                     + st.values(rows.fills, {12: "numeric"}) + ")")  # fmt: skip
    if rows.position is not None:
        parts.append(f"p as (insert into audit.positions ({', '.join(POSITION_COLUMNS)}) values "
                     + st.values([rows.position]) + POSITION_CONFLICT + ")")  # fmt: skip
    if rows.balances:
        parts.append(f"b as (insert into audit.balances ({', '.join(BALANCE_COLUMNS)}) values "
                     + st.values(rows.balances) + BALANCE_CONFLICT + ")")  # fmt: skip
    if rows.lineage:
        parts.append(f"l as (insert into audit.lineage ({', '.join(LINEAGE_COLUMNS)}) values "
                     + st.values(rows.lineage, {4: "jsonb"}) + ")")  # fmt: skip
    head = "with " + ",\n".join(parts) + "\n" if parts else ""
    if rows.update is None:
        return head + "select 1"
    u = rows.update
    return (
        head
        + f"""update audit.orders set status = {st.bind(u.status.value)}, updated_at = now(),
               venue_order_id = coalesce({st.bind(u.venue_order_id)}, venue_order_id),
               filled_quantity = coalesce(cast({st.bind(u.filled_quantity)} as numeric), filled_quantity)
           where client_order_id = {st.bind(u.client_order_id)}"""
    )


_ATTEMPT_CONFLICT = """ on conflict (client_order_id) do update set resolved_at = null, resolution = null,
                      details = coalesce(excluded.details, audit.submit_attempts.details)"""
POSITION_CONFLICT = """ on conflict (account, symbol) do update
                  set quantity = excluded.quantity, avg_price = excluded.avg_price,
                      realized_pnl = excluded.realized_pnl, run_id = excluded.run_id, updated_at = now()"""
BALANCE_CONFLICT = """ on conflict (account, currency) do update
                  set amount = audit.balances.amount + excluded.amount, run_id = excluded.run_id,
                      updated_at = now()"""


class OrderStore(Protocol):
    """Where ``execution.submit.execute`` reads an order's state and writes its rows (ARCHITECTURE §7): the database
    (``DB_STORE``: live, paper, shadow and the step-by-step replay), or a replay's memory
    (``execution.orders.memory_store.MemoryOrderStore``: the same rows, held and written in bulk). Every method
    mirrors the module function of the same name."""

    def lock(self, locks: AccountLocks, account: AccountId) -> None:
        """Serialise this account's order writers until the transaction ends."""
        ...

    def read_order_state(
        self, conn: Connection, *, account: AccountId, symbol: Symbol, client_order_id: ClientOrderId, run_id: str,
        exchange: str, timeframe: str, bar_cutoff: datetime, day_start: datetime, event_time: datetime,
        parent: ClientOrderId | None = None, own: Sequence[str] = (), supersede: OrderIntent | None = None,
        per_step: bool = False,
    ) -> OrderState: ...  # fmt: skip

    def write_report(
        self, conn: Connection, *, run_id: str, client_order_id: ClientOrderId, event_time: datetime,
        events: Sequence[EventRow], booking: FillBooking | None, status: OrderStatus, venue_order_id: str | None,
        filled_quantity: Decimal | None, new_order: NewOrder | None = None,
    ) -> None: ...  # fmt: skip

    def record_guard(self, conn: Connection, run_id: str, intent: OrderIntent, guard: GuardRow) -> None: ...

    def booked_fills(self, conn: Connection, client_order_id: ClientOrderId) -> set[str]:
        """The fill ids already booked for the order."""
        ...

    def holding(self, conn: Connection, account: AccountId, symbol: Symbol) -> Holding:
        """The position, locked until the transaction ends."""
        ...

    def arrival_price(self, conn: Connection, client_order_id: ClientOrderId) -> Decimal | None:
        """The arrival price recorded with the order."""
        ...

    def halt(self, conn: Connection, account: AccountId, reason: str, numbers: Mapping[str, Any]) -> None:
        """Halt the account (the daily loss limit tripped): recorded, and every later read sees it halted."""
        ...


class DbOrderStore:
    """The ``OrderStore`` in PostgreSQL: each call one statement on the caller's transaction."""

    def lock(self, locks: AccountLocks, account: AccountId) -> None:
        locks.take(account)

    def read_order_state(self, conn: Connection, **kwargs: Any) -> OrderState:
        return read_order_state(conn, **kwargs)

    def write_report(self, conn: Connection, **kwargs: Any) -> None:
        write_report(conn, **kwargs)

    def record_guard(self, conn: Connection, run_id: str, intent: OrderIntent, guard: GuardRow) -> None:
        record_guard(conn, run_id, intent, guard)

    def booked_fills(self, conn: Connection, client_order_id: ClientOrderId) -> set[str]:
        return set(
            conn.execute(
                cached_text("select fill_id from audit.fills where client_order_id = :c"), {"c": client_order_id}
            ).scalars()
        )

    def holding(self, conn: Connection, account: AccountId, symbol: Symbol) -> Holding:
        return read_holding(conn, account, symbol, lock=True)

    def arrival_price(self, conn: Connection, client_order_id: ClientOrderId) -> Decimal | None:
        return _decimal(
            conn.execute(
                cached_text("select arrival_price from audit.orders where client_order_id = :c"),
                {"c": client_order_id},
            ).scalar()
        )

    def halt(self, conn: Connection, account: AccountId, reason: str, numbers: Mapping[str, Any]) -> None:
        set_halt(conn, account, True, reason, numbers)


DB_STORE: OrderStore = DbOrderStore()
