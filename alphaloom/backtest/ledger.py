"""Account history from fills: equity per bar and closed-trade P&L. Pure: frames in, frames out.

Long-only bookkeeping (what the trader does today): a buy adds to the position, a sell reduces it; closed-trade P&L is
computed against the average cost including buy fees, net of sell fees, so it sums to the realised P&L exactly.
"""

from __future__ import annotations

import pandas as pd


def equity_curve(fills: pd.DataFrame, closes: pd.DataFrame, starting_cash: float) -> pd.Series:
    """Cash plus positions marked at ``closes`` (index: times, columns: symbols; the mark known at each time).

    ``fills`` has columns ts, symbol, side ('buy'/'sell'), quantity, price, fee; a fill at ``ts`` counts from ``ts``.
    """
    times = closes.index
    if fills.empty:
        return pd.Series(float(starting_cash), index=times)
    f = fills.astype({"quantity": float, "price": float, "fee": float}).sort_values("ts")
    sign = f["side"].map({"buy": 1.0, "sell": -1.0})
    f = f.assign(units=sign * f["quantity"], cash=-sign * f["quantity"] * f["price"] - f["fee"])
    position_steps = f.pivot_table(index="ts", columns="symbol", values="units", aggfunc="sum").cumsum()
    positions = position_steps.reindex(position_steps.index.union(times)).ffill().fillna(0.0).reindex(times)
    cash_steps = f.groupby("ts")["cash"].sum().cumsum()
    cash = cash_steps.reindex(cash_steps.index.union(times)).ffill().fillna(0.0).reindex(times) + starting_cash
    marks = closes.reindex(columns=positions.columns).ffill()
    return cash + (positions * marks).fillna(0.0).sum(axis=1)


def closed_trades(fills: pd.DataFrame) -> pd.DataFrame:
    """One row per sell: symbol, entry/exit time, quantity and net P&L against the average cost (fees included).

    When ``fills`` has a ``decision_id`` column, an ``entry_decision`` column names the decision of the buy that
    opened the position (for P&L attribution by strategy and agent)."""
    with_decisions = "decision_id" in fills.columns
    rows = []
    for symbol, group in fills.sort_values("ts").groupby("symbol"):
        quantity = cost = 0.0
        opened = entry_decision = None
        for fill in group.itertuples():
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
