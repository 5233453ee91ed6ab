"""Position and cash arithmetic for fills. Pure, Decimal.

``avg_price`` is the cost basis per unit *including buy fees*; ``realized_pnl`` is net of sell fees. So once a
position is closed, the cash change equals the realized P&L exactly. Both are in the symbol's quote currency; each
sell fill's realisation is also recorded with the fill (``audit.fills.realized_pnl``) so a read side can convert it
into the account's base currency at the rate in force when it was realised (``alphaloom.reporting.account_summary``).

Fees are booked in the currency the venue charged them in (``FeeIn``, from ``fee_charged_in``), never converted:

- ``QUOTE``: paid from the quote cash, part of the cost basis (buy) or of the proceeds (sell), as above;
- ``BASE``: taken out of the traded coins (binance's default for a buy): a buy of ``q`` with fee ``f`` holds
  ``q - f`` (what the venue holds, so a full-position sell asks for exactly that) at a cost of ``q * price`` quote;
  a sell of ``q`` gives up ``q + f`` coins;
- ``OTHER``: a third asset (BNB): the position and the quote cash see no fee; the caller books ``-fee`` in that
  asset's own balance (``fee_cash``), and views convert it into the base currency at its own rate.

``BASE`` is the crypto rule only. Forex and stock brokers (OANDA, Alpaca) charge every fee to the account's cash, so
their fills say ``fee_from_units=False`` (the venue's fee model, ``Fill.fee_from_units``) and a fee in the base
currency (a USD commission on ``USD/JPY`` at a USD account) is ``OTHER``: a USD balance change, the position stays
at the venue's units exactly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from alphaloom.domain import Fill, Side, Symbol


class FeeIn(enum.Enum):
    """Where a fee was charged, relative to the traded symbol (see the module docstring)."""

    QUOTE = "quote"
    BASE = "base"
    OTHER = "other"


def fee_charged_in(symbol: Symbol, fee_currency: str, *, from_units: bool = True) -> FeeIn:
    """``BASE`` for the symbol's base asset (``BTC`` of ``BTC/USDT``) at a venue that takes such fees out of the
    traded units (``from_units``: crypto venues), ``QUOTE`` for its quote currency (or a symbol without a quote
    part), ``OTHER`` for anything else (a base-currency fee at a venue charging cash included)."""
    base, _, quote = symbol.partition("/")
    if fee_currency == base and quote:
        return FeeIn.BASE if from_units else FeeIn.OTHER
    if not quote or fee_currency == quote:
        return FeeIn.QUOTE
    return FeeIn.OTHER


def fill_fee_in(fill: Fill) -> FeeIn:
    """Where ``fill``'s fee was charged (``fee_charged_in`` under the venue's fee model the fill carries)."""
    return fee_charged_in(fill.symbol, fill.fee_currency, from_units=fill.fee_from_units)


def fee_cash(fill: Fill) -> tuple[str, Decimal] | None:
    """The balance change a fee charged outside the position and the quote cash makes in its own currency (None for
    quote and base fees)."""
    if fill.fee and fill_fee_in(fill) is FeeIn.OTHER:
        return fill.fee_currency, -fill.fee
    return None


@dataclass(frozen=True, slots=True)
class Holding:
    quantity: Decimal
    avg_price: Decimal
    realized_pnl: Decimal

    @classmethod
    def flat(cls) -> Holding:
        return cls(Decimal(0), Decimal(0), Decimal(0))


def apply_fill(
    holding: Holding, *, side: Side, quantity: Decimal, price: Decimal, fee: Decimal, fee_in: FeeIn = FeeIn.QUOTE
) -> Holding:
    """The holding after one fill (long-only: a sell beyond the position raises ``ValueError``)."""
    if quantity <= 0:
        raise ValueError(f"fill quantity must be positive, got {quantity}")
    quote_fee = fee if fee_in is FeeIn.QUOTE else Decimal(0)
    coin_fee = fee if fee_in is FeeIn.BASE else Decimal(0)
    if side is Side.BUY:
        new_quantity = holding.quantity + quantity - coin_fee
        if new_quantity <= 0:
            raise ValueError(f"a buy of {quantity} with a fee of {fee} in the coin bought leaves nothing")
        cost = holding.quantity * holding.avg_price + quantity * price + quote_fee
        return Holding(new_quantity, cost / new_quantity, holding.realized_pnl)
    leaving = quantity + coin_fee
    if leaving > holding.quantity:
        raise ValueError(f"selling {leaving} exceeds the long position {holding.quantity}; shorting is not supported")
    pnl = realized_on_sell(holding.avg_price, quantity=quantity, price=price, fee=fee, fee_in=fee_in)
    remaining = holding.quantity - leaving
    return Holding(remaining, holding.avg_price if remaining > 0 else Decimal(0), holding.realized_pnl + pnl)


def realized_on_sell(
    avg_price: Decimal, *, quantity: Decimal, price: Decimal, fee: Decimal, fee_in: FeeIn = FeeIn.QUOTE
) -> Decimal:
    """What selling ``quantity`` at ``price`` (paying ``fee``) realises against a position's average cost, in the
    quote currency: a fee in coins gives up their cost too; a fee in a third asset is not in it (its own balance)."""
    if fee_in is FeeIn.BASE:
        return quantity * price - (quantity + fee) * avg_price
    return quantity * price - (fee if fee_in is FeeIn.QUOTE else Decimal(0)) - quantity * avg_price


def cash_change(*, side: Side, quantity: Decimal, price: Decimal, fee: Decimal, fee_in: FeeIn = FeeIn.QUOTE) -> Decimal:
    """Signed change of quote cash for one fill: a buy pays notional (+ a quote fee), a sell receives notional
    (- a quote fee). A fee in coins or in a third asset does not touch the quote cash."""
    notional = quantity * price
    quote_fee = fee if fee_in is FeeIn.QUOTE else Decimal(0)
    return -(notional + quote_fee) if side is Side.BUY else notional - quote_fee
