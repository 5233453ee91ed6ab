"""Vectorized backtest of a long-only, all-in/all-out indicator strategy over many symbols at once.

It reproduces exactly what the step path does with the same strategy, so the two can be checked against each other:

- the strategy's target (1 = long, 0 = flat) is decided at the close of bar t, from data known then;
- a change of target is filled at the open of bar t+1 (no fill when there is no next bar), buys paying
  ``slippage_bps`` above the open, sells receiving that much below;
- an entry buys ``floor(order_notional / close_t)`` units at the symbol's quantity step; an exit sells all;
- fees are ``fee_bps`` of each fill's notional, in the quote currency.

Arrays are (bars x symbols); NaN closes mean "no bar" and hold the previous state.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import NamedTuple

import numpy as np
import pandas as pd

DEFAULT_STEP = Decimal("0.000001")


@dataclass(frozen=True)
class VectorizedResult:
    equity: pd.Series  # account value per bar
    trades: pd.DataFrame  # ts, symbol, side, quantity, price, fee
    positions: pd.DataFrame  # units held per bar and symbol


def sma_cross_target(close: pd.DataFrame, fast: int, slow: int) -> pd.DataFrame:
    """1 where SMA(fast) > SMA(slow) (both defined), else 0."""
    sma_fast = close.rolling(fast, min_periods=fast).mean()
    sma_slow = close.rolling(slow, min_periods=slow).mean()
    return (sma_fast > sma_slow).astype(np.int8)


def entry_quantity(order_notional: Decimal, price: float, step: Decimal) -> Decimal:
    """Units bought for ``order_notional`` at ``price``, rounded down to ``step`` (the trader's rule)."""
    return (order_notional / Decimal(repr(float(price))) / step).to_integral_value(rounding=ROUND_FLOOR) * step


def _held_units(
    entries: np.ndarray,
    held: np.ndarray,
    close: pd.DataFrame,
    close_values: np.ndarray,
    order_notional: Decimal,
    steps: dict[str, Decimal],
) -> np.ndarray:
    """Units held per bar: each entry sized at the previous close, carried until the exit."""
    step = np.array([float(steps.get(name, DEFAULT_STEP)) for name in close.columns])
    reference = np.full_like(close_values, np.nan)
    reference[1:] = close_values[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = float(order_notional) / reference / step
    quantity = np.floor(ratio) * step
    # Float division can land a hair off an exact multiple of the step; redo those few in Decimal, as the trader does.
    near = entries & (np.abs(ratio - np.round(ratio)) < 1e-6)
    for row, col in zip(*np.nonzero(near), strict=True):
        exact = entry_quantity(order_notional, reference[row, col], steps.get(close.columns[col], DEFAULT_STEP))
        quantity[row, col] = float(exact)
    sized = np.where(entries, quantity, np.nan)
    units: np.ndarray = pd.DataFrame(sized).ffill().fillna(0.0).to_numpy() * held
    return units


def run(
    open_: pd.DataFrame,
    close: pd.DataFrame,
    target: pd.DataFrame,
    *,
    initial_cash: float,
    order_notional: Decimal,
    fee_bps: float,
    slippage_bps: float,
    quantity_steps: dict[str, Decimal] | None = None,
) -> VectorizedResult:
    steps = quantity_steps or {}
    target_values = target.reindex_like(close).fillna(0).to_numpy(dtype=np.int8)
    close_values = close.to_numpy(dtype=float)
    open_values = open_.reindex_like(close).to_numpy(dtype=float)
    n_symbols = close_values.shape[1]

    # Position held after the fill at bar f is the target decided at bar f-1.
    held = np.zeros_like(target_values)
    held[1:] = target_values[:-1]
    change = np.diff(np.vstack([np.zeros((1, n_symbols), dtype=np.int8), held]), axis=0)
    entries, exits = change == 1, change == -1

    units = _held_units(entries, held, close, close_values, order_notional, steps)

    slip, fee_rate = slippage_bps / 1e4, fee_bps / 1e4
    buy_price, sell_price = open_values * (1 + slip), open_values * (1 - slip)
    exit_units = np.zeros_like(units)
    exit_units[1:] = units[:-1]
    exit_units = np.where(exits, exit_units, 0.0)
    buy_notional = np.where(entries, units * buy_price, 0.0)
    sell_notional = np.where(exits, exit_units * sell_price, 0.0)
    cash_flow = sell_notional - buy_notional - fee_rate * (buy_notional + sell_notional)

    marks = pd.DataFrame(close_values).ffill().fillna(0.0).to_numpy()
    equity = initial_cash + np.cumsum(cash_flow.sum(axis=1)) + (units * marks).sum(axis=1)

    parts = []
    for side, mask, qty, price in (("buy", entries, units, buy_price), ("sell", exits, exit_units, sell_price)):
        r, c = np.nonzero(mask & (qty > 0))
        notional = qty[r, c] * price[r, c]
        parts.append(pd.DataFrame({"ts": close.index[r], "symbol": close.columns[c], "side": side,
                                   "quantity": qty[r, c], "price": price[r, c], "fee": notional * fee_rate}))  # fmt: skip
    trades = pd.concat(parts).sort_values(["ts", "symbol", "side"]).reset_index(drop=True)
    return VectorizedResult(
        equity=pd.Series(equity, index=close.index),
        trades=trades,
        positions=pd.DataFrame(units, index=close.index, columns=close.columns),
    )


class _Trade(NamedTuple):
    """The columns of a vectorized trade that ``exact_trades`` reprices."""

    symbol: str
    side: str
    ts: pd.Timestamp


def _row_of(index: pd.Index, label: pd.Timestamp) -> int:
    """The position of the bar time ``label`` in ``index`` (bar times, each once)."""
    at = index.get_loc(label)
    if not isinstance(at, int):
        raise ValueError(f"bar time {label} is in the frame more than once")
    return at


def exact_trades(
    result: VectorizedResult,
    open_: pd.DataFrame,
    close: pd.DataFrame,
    *,
    order_notional: Decimal,
    slippage_bps: float,
    quantity_steps: dict[str, Decimal] | None = None,
) -> list[tuple[str, str, pd.Timestamp, Decimal, Decimal]]:
    """The trades of ``result`` as (symbol, side, bar time, quantity, price) in exact Decimal, the way the step path
    books them: a buy of ``floor(order_notional / decision close)`` at the fill bar's open times (1 + slippage), a
    sell of everything held at the open times (1 - slippage). Prices enter as their shortest decimal repr."""
    steps = quantity_steps or {}
    slip = Decimal(repr(float(slippage_bps))) / 10000
    held: dict[str, Decimal] = {}
    rows: list[tuple[str, str, pd.Timestamp, Decimal, Decimal]] = []
    for trade in map(_Trade._make, result.trades[list(_Trade._fields)].itertuples(index=False, name=None)):
        at = _row_of(close.index, trade.ts)
        opening = Decimal(repr(float(open_[trade.symbol].iloc[at])))
        if trade.side == "buy":
            decision_close = float(close[trade.symbol].iloc[at - 1])
            quantity = entry_quantity(order_notional, decision_close, steps.get(trade.symbol, DEFAULT_STEP))
            held[trade.symbol] = quantity
            price = opening * (1 + slip)
        else:
            quantity, price = held.pop(trade.symbol), opening * (1 - slip)
        rows.append((trade.symbol, trade.side, trade.ts, quantity, price))
    return rows
