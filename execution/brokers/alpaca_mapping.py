"""Pure translation between Alpaca's orders and ours (no I/O; the adapter is ``alpaca_broker``).

- ``status_from_alpaca``: Alpaca's order status and filled quantity -> our ``OrderStatus`` (a working order with a fill
  is ``partially_filled``; a cancelled or expired order keeps its fills and says so).
- ``order_quantity``: the quantity sent: up to 9 decimals for a fractionable asset, whole shares otherwise (rounded
  down: never more than the decision sized); nothing left is an ``OrderRejectedError`` naming symbol and quantity.
- ``limit_price_for``: a limit price on Alpaca's tick (a cent from $1, else 1/100 of a cent), rounded in the order's
  favour-safe direction (a buy never pays more, a sell never takes less than asked).
- ``fills_from_activities``: Alpaca's ``FILL`` account activities of one order -> our ``Fill``s in venue order,
  Decimal throughout; stocks trade commission-free at Alpaca, so each fill's fee is 0 in USD (regulatory fees come
  as separate ``FEE`` activities, not per fill);
- ``fee_charges``: those ``FEE`` activities (TAF, REG) as ``VenueCharge``s in USD, booked once each by
  reconciliation (``execution.accounts.charges``).
- ``quote_from_alpaca``: a latest quote (``get_stock_latest_quote``) as routing's ``Quote`` in USD, its sizes in
  shares (Alpaca gives them in round lots of ``QUOTE_LOT`` shares); ``SELL_FEES``: the fee schedule routing prices an
  order with: no commission, and on sells the regulatory fees Alpaca passes on (the SEC's Section 31 fee in bps of the
  notional and FINRA's trading activity fee per share; the rates in force change yearly: the broker takes others).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import Any

from alphaloom.domain import ClientOrderId, Fill, OrderStatus, Side, Symbol
from alphaloom.errors import OrderRejectedError, UnknownOrderStateError
from execution.algos.quotes import Quote, QuoteFees
from execution.brokers.base import VenueCharge

FRACTION_STEP = Decimal("0.000000001")  # Alpaca takes fractional quantities to 9 decimals
CURRENCY = "USD"
QUOTE_LOT = Decimal(100)  # the shares in one round lot: the unit of a quote's sizes
# Section 31: $27.80 per million of the notional sold (0.278 bps); FINRA TAF: $0.000166 per share sold
SELL_FEES = QuoteFees(sell_bps=Decimal("0.278"), sell_per_unit=Decimal("0.000166"))

# Alpaca statuses of an order still working at the venue (or parked there until the open).
WORKING = frozenset({"new", "accepted", "pending_new", "accepted_for_bidding", "held", "calculated", "stopped",
                     "suspended", "pending_cancel", "pending_replace", "done_for_day", "partially_filled"})  # fmt: skip
_FINAL = {"filled": OrderStatus.FILLED, "canceled": OrderStatus.CANCELLED, "expired": OrderStatus.EXPIRED,
          "rejected": OrderStatus.REJECTED}  # fmt: skip


def status_from_alpaca(status: str, filled: Decimal, quantity: Decimal | None) -> OrderStatus:
    """Our status for an Alpaca order. Working statuses are ``submitted`` until something fills, then
    ``partially_filled``; ``filled`` with less than the quantity filled is not final to us
    (``UnknownOrderStateError``); ``replaced`` (we never replace orders) and anything unknown too."""
    status = status.lower()
    if status in WORKING:
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.SUBMITTED
    if status == "filled" and quantity is not None and filled < quantity:
        raise UnknownOrderStateError(f"Alpaca reports the order filled with {filled} of {quantity} filled")
    try:
        return _FINAL[status]
    except KeyError:
        raise UnknownOrderStateError(f"Alpaca order status {status!r} has no meaning in our state machine") from None


def order_quantity(symbol: Symbol, quantity: Decimal, *, fractionable: bool) -> Decimal:
    """The quantity Alpaca is sent for ``quantity`` of ``symbol`` (see the module docstring)."""
    step = FRACTION_STEP if fractionable else Decimal(1)
    sent = (quantity / step).to_integral_value(rounding=ROUND_DOWN) * step
    if sent <= 0:
        kind = "fractional quantities to 9 decimals" if fractionable else "whole shares only (not fractionable)"
        raise OrderRejectedError(f"{symbol}: quantity {quantity} rounds to nothing: Alpaca trades it in {kind}")
    return sent.normalize() if fractionable else sent.quantize(Decimal(1))


def limit_price_for(price: Decimal, side: Side) -> Decimal:
    """``price`` on Alpaca's tick for stocks, a buy rounded down and a sell rounded up."""
    tick = Decimal("0.01") if price >= 1 else Decimal("0.0001")
    return price.quantize(tick, rounding=ROUND_FLOOR if side is Side.BUY else ROUND_CEILING)


def dec(value: object) -> Decimal | None:
    """An Alpaca number (a decimal string, or a float the SDK parsed) as an exact Decimal; None stays None."""
    if value is None or value == "":
        return None
    return Decimal(str(value))


def fills_from_activities(
    client_order_id: ClientOrderId,
    symbol: Symbol,
    side: Side,
    activities: Sequence[Mapping[str, Any]],
    *,
    reference_price: Decimal | None,
) -> tuple[Fill, ...]:
    """One ``Fill`` per ``FILL`` activity, in venue order (by transaction time, then id). ``slippage`` is measured
    against ``reference_price`` (0 when unknown: a lookup after a restart does not know what the decision saw)."""
    ordered = sorted(activities, key=lambda a: (str(a.get("transaction_time")), str(a.get("id"))))
    fills = []
    for activity in ordered:
        quantity, price = dec(activity.get("qty")), dec(activity.get("price"))
        if quantity is None or price is None or quantity <= 0:
            continue
        ts = datetime.fromisoformat(str(activity["transaction_time"]).replace("Z", "+00:00"))
        slippage = abs(price - reference_price) * quantity if reference_price is not None else Decimal(0)
        fills.append(Fill(client_order_id, symbol, side, quantity, price, Decimal(0), CURRENCY, slippage, ts,
                          fee_from_units=False))  # fmt: skip
    return tuple(fills)


def fee_charges(activities: Sequence[Mapping[str, Any]]) -> list[VenueCharge]:
    """Alpaca's ``FEE`` activities (regulatory TAF/REG fees) as charges of kind ``regulatory_fee`` in USD: the fee is
    what was taken from the cash (``net_amount`` is negative for a fee paid), dated by the activity's
    ``transaction_time`` or, for a non-trade activity, its ``date`` (midnight UTC)."""
    charges = []
    for activity in activities:
        if str(activity.get("activity_type", "")).upper() != "FEE" or activity.get("id") is None:
            continue
        stamp = str(activity.get("transaction_time") or activity.get("date") or "")
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else datetime.now(UTC)
        at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        charges.append(VenueCharge(str(activity["id"]), "regulatory_fee", at, -(dec(activity.get("net_amount"))
                                                                                or Decimal(0)), CURRENCY))  # fmt: skip
    return charges


def quote_from_alpaca(venue: str, symbol: Symbol, quote: object, *, lot: Decimal = QUOTE_LOT) -> Quote:
    """An alpaca-py ``Quote`` (``ask_price``, ``ask_size``, ``bid_price``, ``bid_size``, ``timestamp``) as routing's
    ``Quote`` in USD, sizes in shares (``lot`` shares per round lot); a zero price is no price."""

    def price(name: str) -> Decimal | None:
        value = dec(getattr(quote, name, None))
        return value if value is not None and value > 0 else None

    def size(name: str) -> Decimal | None:
        value = dec(getattr(quote, name, None))
        return None if value is None else value * lot

    at = getattr(quote, "timestamp", None)
    if isinstance(at, datetime) and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return Quote(venue, symbol, price("bid_price"), price("ask_price"), at if isinstance(at, datetime) else None,
                 CURRENCY, size("bid_size"), size("ask_size"))  # fmt: skip
