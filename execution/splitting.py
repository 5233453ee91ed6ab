"""Child orders: TWAP and iceberg splitting of a parent intent, and routing across venues by best price after fees.
Pure. Children are intents with legs ``parent.leg * 1000 + 1 ..`` so their client order ids stay deterministic; pass
``parent_map`` to ``execute(parents=...)`` to record the link.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from alphaloom.domain import ClientOrderId, OrderIntent, Side, client_order_id_for


def _children(parent: OrderIntent, quantities: Sequence[Decimal]) -> list[OrderIntent]:
    return [
        dataclasses.replace(parent, quantity=q, leg=parent.leg * 1000 + n)
        for n, q in enumerate(quantities, start=1)
        if q > 0
    ]


def _equal_parts(quantity: Decimal, parts: int, step: Decimal) -> list[Decimal]:
    base = (quantity / parts / step).to_integral_value(rounding=ROUND_DOWN) * step
    out = [base] * parts
    out[-1] = quantity - base * (parts - 1)  # the remainder goes last: the children always sum to the parent
    return out


def twap(
    parent: OrderIntent, *, slices: int, start: datetime, interval: timedelta, step: Decimal
) -> list[tuple[datetime, OrderIntent]]:
    """``slices`` children of equal size (remainder in the last), scheduled every ``interval`` from ``start``:
    a list of (send time, child intent)."""
    if slices < 1:
        raise ValueError(f"slices must be >= 1, got {slices}")
    children = _children(parent, _equal_parts(parent.quantity, slices, step))
    return [(start + interval * i, child) for i, child in enumerate(children)]


def iceberg(parent: OrderIntent, *, visible: Decimal) -> list[OrderIntent]:
    """Children showing at most ``visible`` each, sent one after another."""
    if visible <= 0:
        raise ValueError(f"visible quantity must be positive, got {visible}")
    parts, remaining = [], parent.quantity
    while remaining > 0:
        parts.append(min(visible, remaining))
        remaining -= parts[-1]
    return _children(parent, parts)


def parent_map(parent: OrderIntent, children: Sequence[OrderIntent]) -> dict[ClientOrderId, ClientOrderId]:
    parent_id = client_order_id_for(parent.decision_id, parent.leg)
    return {client_order_id_for(c.decision_id, c.leg): parent_id for c in children}


@dataclass(frozen=True, slots=True)
class BookTop:
    """A venue's best level on the side we take: price and size there, and its taker fee."""

    venue: str
    price: Decimal
    size: Decimal
    fee_bps: Decimal


def effective_price(top: BookTop, side: Side) -> Decimal:
    """Price after fees: a buy pays price * (1 + fee), a sell receives price * (1 - fee)."""
    fee = top.fee_bps / Decimal(10000)
    return top.price * (1 + fee) if side is Side.BUY else top.price * (1 - fee)


def route(quantity: Decimal, side: Side, tops: Sequence[BookTop]) -> list[tuple[str, Decimal]]:
    """Split ``quantity`` across venues, best price after fees first, each up to its top-of-book size; what the tops
    cannot absorb goes to the best venue. Returns (venue, quantity) in routing order."""
    if not tops:
        raise ValueError("routing needs at least one venue's book top")
    ordered = sorted(tops, key=lambda t: effective_price(t, side), reverse=side is Side.SELL)
    plan: dict[str, Decimal] = {}
    remaining = quantity
    for top in ordered:
        take = min(remaining, top.size)
        if take > 0:
            plan[top.venue] = plan.get(top.venue, Decimal(0)) + take
            remaining -= take
    if remaining > 0:
        plan[ordered[0].venue] = plan.get(ordered[0].venue, Decimal(0)) + remaining
    return list(plan.items())


def slippage_bps(fill_price: Decimal, arrival_price: Decimal, side: Side) -> Decimal:
    """Implementation shortfall of a fill versus the arrival price, in bps (positive = worse for us)."""
    sign = 1 if side is Side.BUY else -1
    return sign * (fill_price - arrival_price) / arrival_price * Decimal(10000)
