"""Pure translation between ccxt's unified order structures and ours (no I/O; the adapter is ``ccxt_broker``).

- ``status_from_ccxt``: ccxt's unified status (``open``, ``closed``, ``canceled``, ``expired``, ``rejected``) and the
  filled amount -> our ``OrderStatus`` (an ``open`` order with a fill is ``partially_filled``).
- ``check_market_limits``: an order below the market's minimum amount or cost (or above its maximum) is refused before
  it is sent, with an error naming the symbol, the value and the limit.
- ``fills_from_trades``: ccxt trades -> our ``Fill``s, Decimal throughout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from alphaloom.domain import ClientOrderId, Fill, OrderStatus, Side, Symbol
from alphaloom.errors import OrderRejectedError, UnknownOrderStateError


def dec(value: object) -> Decimal | None:
    """A ccxt number (float, int or numeric string) as an exact Decimal of its shortest repr; None stays None."""
    if value is None or value == "":
        return None
    return Decimal(str(value))


_TERMINAL = {
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELLED,
    "cancelled": OrderStatus.CANCELLED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}


def status_from_ccxt(status: str | None, filled: Decimal, amount: Decimal | None = None) -> OrderStatus:
    """Our status for a ccxt order. ``open`` (or ``canceling``: not final yet) is ``submitted`` until something fills,
    then ``partially_filled``; a ``closed`` order that filled less than its amount is still ``filled`` as far as the
    venue is concerned only when nothing is left, else it is ``expired``. Anything else is ``UnknownOrderStateError``."""
    if status in ("open", "canceling"):
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.SUBMITTED
    if status == "closed" and amount is not None and 0 < filled < amount:
        return OrderStatus.EXPIRED
    try:
        return _TERMINAL[str(status)]
    except KeyError:
        raise UnknownOrderStateError(f"ccxt order status {status!r} has no meaning in our state machine") from None


def _limit(limits: Mapping[str, Any], key: str, bound: str) -> Decimal | None:
    return dec((limits.get(key) or {}).get(bound))


def check_market_limits(symbol: Symbol, market: Mapping[str, Any], amount: Decimal, price: Decimal) -> None:
    """Raise ``OrderRejectedError`` when ``amount`` (already through the market's precision) or its cost at ``price``
    falls outside the market's ``limits``; the message names the symbol, the value and the limit."""
    limits = market.get("limits") or {}
    low, high = _limit(limits, "amount", "min"), _limit(limits, "amount", "max")
    if amount <= 0:
        raise OrderRejectedError(f"{symbol}: amount {amount} after the venue's precision is not positive")
    if low is not None and amount < low:
        raise OrderRejectedError(f"{symbol}: amount {amount} is below the venue minimum amount {low}")
    if high is not None and amount > high:
        raise OrderRejectedError(f"{symbol}: amount {amount} is above the venue maximum amount {high}")
    cost = amount * price
    low_cost = _limit(limits, "cost", "min")
    if low_cost is not None and cost < low_cost:
        raise OrderRejectedError(
            f"{symbol}: order cost {cost} ({amount} at {price}) is below the venue minimum cost {low_cost}"
        )


def _ts(ms: object, default: datetime) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC) if isinstance(ms, int | float) else default


def fills_from_trades(
    client_order_id: ClientOrderId,
    symbol: Symbol,
    side: Side,
    trades: Sequence[Mapping[str, Any]],
    *,
    reference_price: Decimal | None,
    default_ts: datetime,
) -> tuple[Fill, ...]:
    """One ``Fill`` per venue trade, in venue order. ``slippage`` is measured against ``reference_price`` (0 when it
    is unknown: a lookup after a restart does not know what the decision saw; audit.orders keeps the arrival price).

    Each fee stays in the currency the venue charged it in (``fee.currency``): the quote currency, the symbol's base
    asset (binance takes a buy's commission out of the coins bought) or a third asset such as BNB; the ledger
    (``execution.accounts.holdings.FeeIn``) books each where it belongs, so the position is what the venue holds. A fee without
    a currency is taken as the quote currency's (ccxt leaves it out only for fee-free venues and trades)."""
    quote = symbol.partition("/")[2] or symbol
    fills = []
    for trade in trades:
        quantity, price = dec(trade.get("amount")), dec(trade.get("price"))
        if quantity is None or price is None or quantity <= 0:
            continue
        fee = trade.get("fee") or {}
        cost, currency = dec(fee.get("cost")) or Decimal(0), str(fee.get("currency") or quote)
        slippage = abs(price - reference_price) * quantity if reference_price is not None else Decimal(0)
        fills.append(
            Fill(client_order_id, symbol, side, quantity, price, cost, currency, slippage,
                 _ts(trade.get("timestamp"), default_ts))
        )  # fmt: skip
    return tuple(fills)
