"""Read-side views of an account for people: positions marked to the last known close, cash, P&L, recent orders.

Marks use the newest ``raw.ohlcv`` close known at ``as_of`` (default: the newest stored), never a later bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, text


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    quantity: Decimal
    avg_price: Decimal
    mark: Decimal | None
    market_value: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal


@dataclass(frozen=True, slots=True)
class AccountView:
    account: str
    base_currency: str
    starting_cash: Decimal
    cash: Decimal
    fees_paid: Decimal
    orders: int
    fills: int
    positions: list[PositionView]

    @property
    def equity(self) -> Decimal:
        return self.cash + sum((p.market_value for p in self.positions), Decimal(0))

    @property
    def pnl(self) -> Decimal:
        return self.equity - self.starting_cash


_MARK = """
select close from raw.ohlcv
where exchange = :exchange and symbol = :symbol and timeframe = :timeframe
  and (cast(:as_of as timestamptz) is null or ts + cast(:bar as interval) <= :as_of)
order by ts desc limit 1
"""


def account_view(
    conn: Connection, account: str, *, exchange: str, timeframe: str, bar: str, as_of: datetime | None = None
) -> AccountView | None:
    """The account marked to market, or None when it does not exist. ``bar`` is the bar length as an interval."""
    row = conn.execute(
        text("select base_currency, starting_cash from audit.accounts where id = :a"), {"a": account}
    ).first()
    if row is None:
        return None
    base_currency, starting_cash = row
    cash = conn.execute(
        text("select coalesce(sum(amount), 0) from audit.balances where account = :a and currency = :c"),
        {"a": account, "c": base_currency},
    ).scalar_one()
    fees, fills = conn.execute(
        text("select coalesce(sum(fee), 0), count(*) from audit.fills where account = :a"), {"a": account}
    ).one()
    orders = conn.execute(text("select count(*) from audit.orders where account = :a"), {"a": account}).scalar_one()
    positions = []
    for symbol, quantity, avg_price, realized in conn.execute(
        text(
            "select symbol, quantity, avg_price, realized_pnl from audit.positions where account = :a order by symbol"
        ),
        {"a": account},
    ):
        mark = conn.execute(
            text(_MARK),
            {"exchange": exchange, "symbol": symbol, "timeframe": timeframe, "as_of": as_of, "bar": bar},
        ).scalar()
        value = quantity * mark if mark is not None else quantity * avg_price
        positions.append(PositionView(symbol, quantity, avg_price, mark, value, value - quantity * avg_price, realized))
    return AccountView(account, base_currency, starting_cash, cash, fees, orders, fills, positions)


def recent_orders(conn: Connection, account: str, limit: int = 10) -> list[dict[str, object]]:
    rows = conn.execute(
        text(
            """select o.client_order_id, o.symbol, o.side, o.quantity, o.status, f.price, f.fee, f.ts
               from audit.orders o left join audit.fills f using (client_order_id)
               where o.account = :a order by coalesce(f.ts, o.created_at) desc limit :n"""
        ),
        {"a": account, "n": limit},
    ).mappings()
    return [dict(r) for r in rows]


def recent_runs(conn: Connection, limit: int = 10) -> list[dict[str, object]]:
    rows = conn.execute(
        text(
            """select run_id, flow, status, started_at, finished_at,
                      extract(epoch from finished_at - started_at) as seconds, error
               from audit.runs order by started_at desc limit :n"""
        ),
        {"n": limit},
    ).mappings()
    return [dict(r) for r in rows]
