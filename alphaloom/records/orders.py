"""Reads of the order tables (``audit.orders``, ``audit.order_events``, ``audit.fills``) for the core's read side:
reports, the explain chain, the console and the CLI. Every function takes an open connection, runs one query (or
the few named in its docstring) and returns typed rows; none writes. ``execution.orders.store`` owns the writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection, text

from alphaloom.domain import AccountId, Symbol


@dataclass(frozen=True)
class FillRow:
    fill_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    slippage: Decimal
    ts: datetime


@dataclass(frozen=True)
class OrderEventRow:
    event: str
    from_status: str | None
    to_status: str
    event_ts: datetime
    details: dict[str, Any]


@dataclass(frozen=True)
class OrderRow:
    """One order with its events (oldest first) and fills (by time)."""

    client_order_id: str
    account: AccountId
    venue: str
    symbol: Symbol
    side: str
    order_type: str
    quantity: Decimal
    reference_price: Decimal
    status: str
    filled_quantity: Decimal
    created_at: datetime
    run_id: str
    events: list[OrderEventRow]
    fills: list[FillRow]


class DecisionOrder(NamedTuple):
    """An order as a decision summary lists it."""

    decision_id: str
    client_order_id: str
    side: str
    quantity: Decimal
    status: str


class RunFill(NamedTuple):
    """A fill of a run's order, with the decision behind the order."""

    ts: datetime
    symbol: Symbol
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    decision_id: str | None


class FeeTotal(NamedTuple):
    """An account's fees in one currency: fees taken in the coin bought are valued at their fill's price in the
    quote currency."""

    currency: str
    fee: Decimal


class Realization(NamedTuple):
    """A fill that realised P&L (quote currency) with the newest fx rate quote <-> base known at its time (``rate``
    None when there is none; ``rate_base`` says which way the rate is quoted)."""

    ts: datetime
    realized_pnl: Decimal
    rate_base: str | None
    rate: Decimal | None


class RecentOrder(NamedTuple):
    """An order of an account with one of its fills (``price``, ``fee``, ``ts`` None for an order without fills)."""

    client_order_id: str
    symbol: Symbol
    side: str
    quantity: Decimal
    status: str
    price: Decimal | None
    fee: Decimal | None
    ts: datetime | None


class OpenOrder(NamedTuple):
    """An order still open (new, submitted or partially filled)."""

    client_order_id: str
    symbol: Symbol
    side: str
    order_type: str
    quantity: Decimal
    limit_price: Decimal | None
    status: str
    venue: str
    created_at: datetime
    parent_client_order_id: str | None


def order_exists(conn: Connection, client_order_id: str) -> bool:
    """Whether ``client_order_id`` is an order in ``audit.orders``."""
    found = conn.execute(text("select 1 from audit.orders where client_order_id = :o"), {"o": client_order_id})
    return found.first() is not None


def order_events(conn: Connection, client_order_id: str) -> list[OrderEventRow]:
    """The order's events, oldest first."""
    return [
        OrderEventRow(e.event, e.from_status, e.to_status, e.event_ts, e.details or {})
        for e in conn.execute(
            text(
                "select event, from_status, to_status, event_ts, details from audit.order_events "
                "where client_order_id = :c order by id"
            ),
            {"c": client_order_id},
        )
    ]


def order_fills(conn: Connection, client_order_id: str) -> list[FillRow]:
    """The order's fills by time."""
    return [
        FillRow(f.fill_id, f.quantity, f.price, f.fee, f.fee_currency, f.slippage, f.ts)
        for f in conn.execute(
            text(
                "select fill_id, quantity, price, fee, fee_currency, slippage, ts from audit.fills "
                "where client_order_id = :c order by ts, fill_id"
            ),
            {"c": client_order_id},
        )
    ]


def order_with_history(conn: Connection, client_order_id: str) -> OrderRow | None:
    """The order with its events and fills (three queries), or None when there is no such order."""
    row = conn.execute(
        text(
            """select client_order_id, account, venue, symbol, side, order_type, quantity, reference_price, status,
                      filled_quantity, created_at, run_id, decision_id
               from audit.orders where client_order_id = :c"""
        ),
        {"c": client_order_id},
    ).first()
    if row is None:
        return None
    return OrderRow(
        row.client_order_id, row.account, row.venue, row.symbol, row.side, row.order_type, row.quantity,
        row.reference_price, row.status, row.filled_quantity, row.created_at, row.run_id,
        order_events(conn, client_order_id), order_fills(conn, client_order_id),
    )  # fmt: skip


def decision_id_of_order(conn: Connection, client_order_id: str) -> str | None:
    """The decision behind the order: its ``audit.lineage`` edge first, else the order row's ``decision_id``."""
    return conn.execute(
        text(
            """select coalesce(
                 (select parent_key->>'decision_id' from audit.lineage
                  where child_table = 'audit.orders' and child_id = :c and parent_table = 'audit.decisions' limit 1),
                 (select decision_id from audit.orders where client_order_id = :c))"""
        ),
        {"c": client_order_id},
    ).scalar()


def order_ids_of_decision(conn: Connection, decision_id: str) -> list[str]:
    """The client order ids of the orders a decision made, by leg and creation."""
    rows = conn.execute(
        text("select client_order_id from audit.orders where decision_id = :d order by leg, created_at"),
        {"d": decision_id},
    )
    return [str(r.client_order_id) for r in rows]


def orders_of_decisions(conn: Connection, decision_ids: list[str]) -> list[DecisionOrder]:
    """The orders of every decision in ``decision_ids``, by leg and client order id."""
    return [
        DecisionOrder._make(r)
        for r in conn.execute(
            text("select decision_id, client_order_id, side, quantity, status from audit.orders "
                 "where decision_id = any(:ids) order by leg, client_order_id"),
            {"ids": decision_ids},
        )
    ]  # fmt: skip


def run_fills(conn: Connection, run_id: str) -> list[RunFill]:
    """The fills of the run's orders, by time."""
    return [
        RunFill._make(r)
        for r in conn.execute(
            text(
                """select f.ts, f.symbol, f.side, f.quantity, f.price, f.fee, f.fee_currency, o.decision_id
                   from audit.fills f join audit.orders o using (client_order_id) where o.run_id = :r order by f.ts"""
            ),
            {"r": run_id},
        )
    ]


def fees_by_currency(conn: Connection, account: AccountId) -> list[FeeTotal]:
    """The account's fees per currency: its fills' fees, a fee the venue took in the coins traded (binance's buy
    commission: ``fee_from_units``) valued at its fill's own price in the quote currency, every other fee in the
    currency it was charged in (a USD commission on ``USD/JPY`` at OANDA is USD paid from cash), and the charges a
    venue booked beside its fills (OANDA's financing, Alpaca's regulatory fees: ``audit.venue_charges``)."""
    return [
        FeeTotal._make(r)
        for r in conn.execute(
            text("""select currency, sum(amount) from (
                      select case when in_coin then split_part(symbol, '/', 2) else fee_currency end as currency,
                             case when in_coin then fee * price else fee end as amount
                      from (select *, fee_from_units and strpos(symbol, '/') > 0
                                          and fee_currency = split_part(symbol, '/', 1) as in_coin
                            from audit.fills where account = :a) f
                      union all
                      select currency, fee from audit.venue_charges where account = :a) t
                    group by 1 order by 1"""), {"a": account})
    ]  # fmt: skip


def count_fills(conn: Connection, account: AccountId) -> int:
    """How many fills the account has."""
    return int(conn.execute(text("select count(*) from audit.fills where account = :a"), {"a": account}).scalar_one())


def count_orders(conn: Connection, account: AccountId) -> int:
    """How many orders the account has."""
    return int(conn.execute(text("select count(*) from audit.orders where account = :a"), {"a": account}).scalar_one())


# Each realising fill of a position with the newest rate quote -> base at or before the fill (direct pair, else the
# inverse of the opposite pair, whichever is newer: as ``alphaloom.fx.rate_at``).
_REALIZATIONS = """
select f.ts, f.realized_pnl, r.base as rate_base, r.rate
from audit.fills f
left join lateral (
    select base, rate from audit.fx_rates
    where ((base = :q and quote = :b) or (base = :b and quote = :q)) and as_of <= f.ts
    order by as_of desc, base = :q desc limit 1
) r on true
where f.account = :a and f.symbol = :s and f.realized_pnl is not null
order by f.ts
"""


def realizations(conn: Connection, account: AccountId, symbol: Symbol, *, quote: str, base: str) -> list[Realization]:
    """The fills of ``account`` in ``symbol`` that realised P&L, by time, each with the newest rate between
    ``quote`` and ``base`` known at its time."""
    rows = conn.execute(text(_REALIZATIONS), {"a": account, "s": symbol, "q": quote, "b": base})
    return [Realization._make(r) for r in rows]


def recent_orders(conn: Connection, account: AccountId, limit: int = 10) -> list[RecentOrder]:
    """The account's latest ``limit`` order rows (an order once per fill), newest fill or order first."""
    rows = conn.execute(
        text(
            """select o.client_order_id, o.symbol, o.side, o.quantity, o.status, f.price, f.fee, f.ts
               from audit.orders o left join audit.fills f using (client_order_id)
               where o.account = :a order by coalesce(f.ts, o.created_at) desc limit :n"""
        ),
        {"a": account, "n": limit},
    )
    return [RecentOrder._make(r) for r in rows]


def open_orders(conn: Connection, account: AccountId) -> list[OpenOrder]:
    """The account's orders still open (at most 100), newest first."""
    rows = conn.execute(
        text(
            """select client_order_id, symbol, side, order_type, quantity, limit_price, status, venue, created_at,
                      parent_client_order_id
               from audit.orders where account = :a and status in ('new', 'submitted', 'partially_filled')
               order by created_at desc limit 100"""
        ),
        {"a": account},
    )
    return [OpenOrder._make(r) for r in rows]
