"""Account history from fills: equity per bar and closed-trade P&L. Pure: frames in, frames out.

Long-only bookkeeping (what the trader does today): a buy adds to the position, a sell reduces it; closed-trade P&L is
computed against the average cost including buy fees, net of sell fees, so it sums to the realised P&L exactly.
Equity is in the account's base currency: cash is kept per currency and converted at the rate known at each time.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import NamedTuple

import pandas as pd

from alphaloom.fx import missing_rate


def equity_curve(
    fills: pd.DataFrame,
    closes: pd.DataFrame,
    starting_cash: float,
    *,
    base_currency: str | None = None,
    rates: pd.DataFrame | None = None,
) -> pd.Series:
    """Cash plus positions marked at ``closes`` (index: times, columns: symbols; the mark known at each time), in the
    account's base currency.

    ``fills`` has columns ts, symbol, side ('buy'/'sell'), quantity, price, fee; a fill at ``ts`` counts from ``ts``.
    Optional columns ``currency`` (the symbol's quote currency, which its cash moves in; default the base currency)
    and ``fee_currency`` (default the quote currency; a fee in the symbol's base asset comes out of the position, one
    in a third asset out of that asset's cash). Cash is kept per currency and, like each position's mark, counted in
    ``base_currency`` at ``rates`` (index: times, columns: currencies; base units per unit known at each time, as
    ``alphaloom.fx`` stores them). A currency other than the base without a known rate where it is held is a
    ``DataUnavailableError`` naming the pair, never counted at 1.
    """
    times = closes.index
    if fills.empty:
        return pd.Series(float(starting_cash), index=times)
    f = fills.astype({"quantity": float, "price": float, "fee": float}).sort_values("ts")
    base = base_currency or ""
    quote = f["currency"].astype(str) if "currency" in f.columns else pd.Series(base, index=f.index)
    fee_ccy = f["fee_currency"].astype(str) if "fee_currency" in f.columns else quote
    parts = f["symbol"].astype(str).str.partition("/")
    pair = parts[2] != ""  # a symbol without a quote part pays its fees in its own currency, the quote
    in_coin = pair & (fee_ccy == parts[0]) & (fee_ccy != quote)
    in_quote = (fee_ccy == quote) | ~pair
    sign = f["side"].map({"buy": 1.0, "sell": -1.0})
    f = f.assign(units=sign * f["quantity"] - f["fee"].where(in_coin, 0.0),
                 cash=-sign * f["quantity"] * f["price"] - f["fee"].where(in_quote, 0.0))  # fmt: skip
    position_steps = f.pivot_table(index="ts", columns="symbol", values="units", aggfunc="sum").cumsum()
    positions = position_steps.reindex(position_steps.index.union(times)).ffill().fillna(0.0).reindex(times)
    flows = pd.concat([
        pd.DataFrame({"ts": f["ts"], "currency": quote, "cash": f["cash"]}),
        pd.DataFrame({"ts": f["ts"], "currency": fee_ccy, "cash": -f["fee"]})[~in_coin & ~in_quote],
    ])  # fmt: skip
    cash_steps = flows.pivot_table(index="ts", columns="currency", values="cash", aggfunc="sum").cumsum()
    cash = cash_steps.reindex(cash_steps.index.union(times)).ffill().fillna(0.0).reindex(times)

    def rate(currency: str, held: pd.Series) -> pd.Series:
        if currency == base:
            return pd.Series(1.0, index=times)
        known = (
            rates[currency].reindex(rates.index.union(times)).ffill().reindex(times)
            if rates is not None and currency in rates.columns
            else pd.Series(float("nan"), index=times)
        )
        if (known.isna() & (held != 0)).any():
            raise missing_rate(currency, base, held[known.isna() & (held != 0)].index[0].to_pydatetime())
        return known.fillna(0.0)

    quote_of = dict(zip(f["symbol"], quote, strict=True))
    marks = closes.reindex(columns=positions.columns).ffill()
    value = (positions * marks).fillna(0.0)
    in_base = sum((value[s] * rate(quote_of[s], value[s]) for s in value.columns), pd.Series(0.0, index=times))
    in_base = in_base + sum((cash[c] * rate(str(c), cash[c]) for c in cash.columns), pd.Series(0.0, index=times))
    return in_base + float(starting_cash)


class _Fill(NamedTuple):
    """The columns of a fill that the bookkeeping reads (``decision_id`` only when asked for)."""

    ts: pd.Timestamp
    side: str
    quantity: Decimal | float
    price: Decimal | float
    fee: Decimal | float
    decision_id: str | None = None


def _fills(group: pd.DataFrame, with_decisions: bool = False) -> Iterator[_Fill]:
    """``group``'s fills in row order."""
    columns = [*_Fill._fields[:-1], *(["decision_id"] if with_decisions else [])]
    for row in group[columns].itertuples(index=False, name=None):
        yield _Fill(*row)


def closed_trades(fills: pd.DataFrame) -> pd.DataFrame:
    """One row per sell: symbol, entry/exit time, quantity and net P&L against the average cost (fees included).

    When ``fills`` has a ``decision_id`` column, an ``entry_decision`` column names the decision of the buy that
    opened the position (for P&L attribution by strategy and agent)."""
    with_decisions = "decision_id" in fills.columns
    rows = []
    for symbol, group in fills.sort_values("ts").groupby("symbol"):
        quantity = cost = 0.0
        opened = entry_decision = None
        for fill in _fills(group, with_decisions):
            q, price, fee = float(fill.quantity), float(fill.price), float(fill.fee)
            if fill.side == "buy":
                if quantity <= 0:
                    opened, entry_decision = fill.ts, (fill.decision_id if with_decisions else None)
                quantity, cost = quantity + q, cost + q * price + fee
            elif quantity > 0:
                average = cost / quantity
                pnl = q * price - fee - q * average
                row = {"symbol": symbol, "entry": opened, "exit": fill.ts, "quantity": q, "pnl": pnl}
                rows.append(row | ({"entry_decision": entry_decision} if with_decisions else {}))
                quantity, cost = quantity - q, cost - q * average
    columns = ["symbol", "entry", "exit", "quantity", "pnl"] + (["entry_decision"] if with_decisions else [])
    return pd.DataFrame(rows, columns=columns)


def open_positions(fills: pd.DataFrame, marks: pd.Series) -> pd.DataFrame:
    """One row per symbol still held after ``fills``: quantity, average cost (fees included), the mark (``marks``:
    last known close per symbol), market value and unrealised P&L at that mark (NaN when no mark is known)."""
    rows = []
    for symbol, group in fills.sort_values("ts").groupby("symbol"):
        quantity = cost = 0.0
        opened = None
        for fill in _fills(group):
            q, price, fee = float(fill.quantity), float(fill.price), float(fill.fee)
            if fill.side == "buy":
                if quantity <= 0:
                    opened = fill.ts
                quantity, cost = quantity + q, cost + q * price + fee
            elif quantity > 0:
                average = cost / quantity
                quantity, cost = quantity - q, cost - q * average
        if quantity > 1e-12:
            mark = float(marks.get(symbol, float("nan")))
            rows.append({"symbol": symbol, "opened": opened, "quantity": quantity, "avg_cost": cost / quantity,
                         "mark": mark, "market_value": quantity * mark, "unrealised_pnl": quantity * mark - cost})  # fmt: skip
    columns = ["symbol", "opened", "quantity", "avg_cost", "mark", "market_value", "unrealised_pnl"]
    return pd.DataFrame(rows, columns=columns)
