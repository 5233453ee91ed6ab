"""Position and cash arithmetic for fills. Pure, Decimal.

``avg_price`` is the cost basis per unit *including buy fees*; ``realized_pnl`` is net of sell fees. So once a
position is closed, the cash change equals the realized P&L exactly. Both are in the symbol's quote currency; each
sell fill's realisation is also recorded with the fill (``audit.fills.realized_pnl``) so a read side can convert it
into the account's base currency at the rate in force when it was realised (``alphaloom.portfolio``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from alphaloom.domain import Side


@dataclass(frozen=True, slots=True)
class Holding:
    quantity: Decimal
    avg_price: Decimal
    realized_pnl: Decimal

    @classmethod
    def flat(cls) -> Holding:
        return cls(Decimal(0), Decimal(0), Decimal(0))


def apply_fill(holding: Holding, *, side: Side, quantity: Decimal, price: Decimal, fee: Decimal) -> Holding:
    """The holding after one fill (long-only: a sell beyond the position raises ``ValueError``)."""
    if quantity <= 0:
        raise ValueError(f"fill quantity must be positive, got {quantity}")
    if side is Side.BUY:
        new_quantity = holding.quantity + quantity
        cost = holding.quantity * holding.avg_price + quantity * price + fee
        return Holding(new_quantity, cost / new_quantity, holding.realized_pnl)
    if quantity > holding.quantity:
        raise ValueError(f"selling {quantity} exceeds the long position {holding.quantity}; shorting is not supported")
    pnl = realized_on_sell(holding.avg_price, quantity=quantity, price=price, fee=fee)
    remaining = holding.quantity - quantity
    return Holding(remaining, holding.avg_price if remaining > 0 else Decimal(0), holding.realized_pnl + pnl)


def realized_on_sell(avg_price: Decimal, *, quantity: Decimal, price: Decimal, fee: Decimal) -> Decimal:
    """What selling ``quantity`` at ``price`` (paying ``fee``) realises against a position's average cost."""
    return quantity * price - fee - quantity * avg_price


def cash_change(*, side: Side, quantity: Decimal, price: Decimal, fee: Decimal) -> Decimal:
    """Signed change of cash for one fill: a buy pays notional + fee, a sell receives notional - fee."""
    notional = quantity * price
    return -(notional + fee) if side is Side.BUY else notional - fee
