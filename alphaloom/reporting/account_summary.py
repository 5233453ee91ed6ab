"""Read-side views of an account for people: positions marked to the last known close, cash, P&L, recent runs.

Marks use the newest ``raw.ohlcv`` close known at ``as_of`` (default: the newest stored), never a later bar.
Money is shown in the account's base currency: cash held in other currencies, positions priced in another quote
currency (``ETH/EUR`` in a USDT account), fees and unrealised P&L are converted with the newest ``audit.fx_rates``
rate known at ``as_of`` (``alphaloom.fx``). Realised P&L is converted fill by fill at the rate in force when it was
realised (the newest rate at or before the fill's time), so a later move of the rate does not rewrite it; realised
P&L booked before fills recorded it (``audit.fills.realized_pnl`` null) is converted at ``as_of``'s rate. A missing
rate is a ``DataUnavailableError`` naming the pair and time, never a silent 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, text

from alphaloom.domain import AccountId, Symbol, quote_currency
from alphaloom.fx import missing_rate, rate_at
from alphaloom.records.orders import count_fills, count_orders, fees_by_currency, realizations


@dataclass(frozen=True, slots=True)
class PositionSummary:
    """``avg_price`` and ``mark`` in the symbol's quote currency; ``market_value`` and both P&Ls in the account's base
    currency: market value and unrealised P&L at ``fx_rate`` (units of base per unit of quote, the rate known at the
    view's ``as_of``), realised P&L at the rate of each realisation's time (``realized_pnl_quote``: the same in the
    quote currency)."""

    symbol: str
    quantity: Decimal
    avg_price: Decimal
    mark: Decimal | None
    market_value: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    quote_currency: str = ""
    fx_rate: Decimal = Decimal(1)
    realized_pnl_quote: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class AccountSummary:
    account: str
    base_currency: str
    starting_cash: Decimal
    cash: Decimal
    fees_paid: Decimal
    orders: int
    fills: int
    positions: list[PositionSummary]

    @property
    def equity(self) -> Decimal:
        return self.cash + sum((p.market_value for p in self.positions), Decimal(0))

    @property
    def pnl(self) -> Decimal:
        return self.equity - self.starting_cash


_MARK = """
select close from raw.ohlcv
where exchange = :exchange and symbol = :symbol and timeframe = :timeframe
  and (cast(:as_of as timestamptz) is null
       or (ts at time zone 'UTC' + cast(:bar as interval)) at time zone 'UTC' <= :as_of)
order by ts desc limit 1
"""


def _realized_in_base(
    conn: Connection, account: AccountId, symbol: Symbol, quote: str, base: str, total: Decimal, fx_now: Decimal
) -> Decimal:
    """``total`` realised P&L (quote currency) of ``symbol`` in ``base``: each recorded realisation at the rate of
    its fill's time, the part no fill recorded at ``fx_now``."""
    rows = realizations(conn, account, symbol, quote=quote, base=base)
    recorded, converted = Decimal(0), Decimal(0)
    for ts, pnl, rate_base, rate in rows:
        amount = Decimal(pnl)
        recorded += amount
        if quote == base:
            converted += amount
        elif rate is None:
            raise missing_rate(quote, base, ts)
        else:
            converted += amount * (Decimal(rate) if rate_base == quote else 1 / Decimal(rate))
    return converted + (total - recorded) * fx_now


def account_summary(
    conn: Connection, account: AccountId, *, exchange: str, timeframe: str, bar: str, as_of: datetime | None = None
) -> AccountSummary | None:
    """The account marked to market, or None when it does not exist. ``bar`` is one bar as an interval (``timeframe_sql_interval``)."""
    row = conn.execute(
        text("select base_currency, starting_cash from audit.accounts where id = :a"), {"a": account}
    ).first()
    if row is None:
        return None
    base_currency, starting_cash = row

    def to_base(amount: Decimal, currency: str) -> Decimal:
        return (
            amount * rate_at(conn, currency, base_currency, as_of) if currency and currency != base_currency else amount
        )

    cash = sum(
        (to_base(Decimal(amount), currency) for currency, amount in conn.execute(
            text("select currency, amount from audit.balances where account = :a"), {"a": account})),
        Decimal(0),
    )  # fmt: skip
    # A fee the venue took in the coins traded (binance's buy commission) is valued at its fill's own price, in the
    # quote currency; every other fee in the currency it was charged in (a forex or stock broker's fee in the base
    # currency of the pair traded is cash paid in that currency: ``audit.fills.fee_from_units`` false).
    fees = sum((to_base(Decimal(fee), currency) for currency, fee in fees_by_currency(conn, account)), Decimal(0))
    fills = count_fills(conn, account)
    orders = count_orders(conn, account)
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
        quote = quote_currency(symbol, base_currency)
        fx = to_base(Decimal(1), quote)
        value = quantity * (mark if mark is not None else avg_price)
        realized_base = _realized_in_base(conn, account, Symbol(str(symbol)), quote, base_currency, realized, fx)
        positions.append(
            PositionSummary(symbol, quantity, avg_price, mark, value * fx, (value - quantity * avg_price) * fx,
                         realized_base, quote, fx, realized)
        )  # fmt: skip
    return AccountSummary(account, base_currency, starting_cash, cash, fees, orders, fills, positions)
