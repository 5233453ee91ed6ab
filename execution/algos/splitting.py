"""Child orders: TWAP and iceberg splitting of a parent intent, and routing across venues by best price after fees.
Pure. Children are intents with legs ``parent.leg * 1000 + 1 ..`` so their client order ids stay deterministic; pass
``parent_map`` to ``execute(parents=...)`` to record the link. ``execute`` itself splits by the settings' ``SplitPolicy``
(``split_intents``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from alphaloom.domain import ClientOrderId, Fill, OrderIntent, Side, client_order_id_for
from alphaloom.settings import Settings


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
    """A venue's best level on the side we take: price and size there, and its taker fee (a one-level ``VenueBook``)."""

    venue: str
    price: Decimal
    size: Decimal
    fee_bps: Decimal


@dataclass(frozen=True, slots=True)
class VenueBook:
    """A venue's side of the order book that we take (asks for a buy, bids for a sell) as (price, size) levels, best
    first as the venue sends them (ccxt ``fetch_order_book``; a quote venue's one level: ``execution.algos.quotes``),
    and its taker fee in bps. ``currency``: what its prices are in (None: the symbol's quote currency, as every other
    venue's None); ``rate``: units of the account's base currency per unit of it, so that venues pricing in different
    currencies are compared on what they cost the account (1: all venues price in the same currency)."""

    venue: str
    levels: tuple[tuple[Decimal, Decimal], ...]
    fee_bps: Decimal
    currency: str | None = None
    rate: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError(f"{self.venue}: the book has no levels on the side we take")
        for price, size in self.levels:
            if price <= 0 or size < 0:
                raise ValueError(f"{self.venue}: book level ({price}, {size}) needs a positive price and a size >= 0")
        if self.rate <= 0:
            raise ValueError(f"{self.venue}: the rate into the base currency must be positive, got {self.rate}")

    @classmethod
    def of(cls, book: BookTop | VenueBook) -> VenueBook:
        return book if isinstance(book, VenueBook) else cls(book.venue, ((book.price, book.size),), book.fee_bps)


@dataclass(frozen=True, slots=True)
class VenueShare:
    """What routing gives one venue: ``quantity`` at the size-weighted ``price`` (before fees) of the levels it takes
    there; ``effective_price`` is that price after the venue's fee."""

    venue: str
    quantity: Decimal
    price: Decimal
    fee_bps: Decimal
    effective_price: Decimal


def price_after_fee(price: Decimal, fee_bps: Decimal, side: Side) -> Decimal:
    """A buy pays price * (1 + fee), a sell receives price * (1 - fee)."""
    fee = fee_bps / Decimal(10000)
    return price * (1 + fee) if side is Side.BUY else price * (1 - fee)


def effective_price(top: BookTop, side: Side) -> Decimal:
    """Price after fees of a venue's top level."""
    return price_after_fee(top.price, top.fee_bps, side)


def route_by_depth(quantity: Decimal, side: Side, books: Sequence[BookTop | VenueBook]) -> list[VenueShare]:
    """Split ``quantity`` across venues by walking every level of every book from the best price after that venue's
    fee, in the base currency (``VenueBook.rate``; lowest for a buy, highest for a sell; ties keep the books' order)
    until the quantity is done. Prices stay in each venue's own currency. What the books
    cannot cover goes to the best venue (best first level after fees), priced at the worst level read there (what the
    book shows is the least it would cost). One share per venue, in the order the venues were first taken."""
    if not books:
        raise ValueError("routing needs at least one venue's book")
    if quantity <= 0:
        raise ValueError(f"routing needs a positive quantity, got {quantity}")
    venue_books = [VenueBook.of(b) for b in books]
    sign = 1 if side is Side.BUY else -1
    walk = sorted(
        ((price_after_fee(price, book.fee_bps, side) * book.rate, i, j, book, price, size)
         for i, book in enumerate(venue_books) for j, (price, size) in enumerate(book.levels)),
        key=lambda level: (sign * level[0], level[1], level[2]),
    )  # fmt: skip
    taken: dict[str, Decimal] = {}
    cost: dict[str, Decimal] = {}
    remaining = quantity
    for _, _, _, book, price, size in walk:
        if remaining <= 0:
            break
        take = min(remaining, size)
        if take > 0:
            taken[book.venue] = taken.get(book.venue, Decimal(0)) + take
            cost[book.venue] = cost.get(book.venue, Decimal(0)) + take * price
            remaining -= take
    if remaining > 0:
        best = walk[0][3]
        worst = max(p for p, _ in best.levels) if side is Side.BUY else min(p for p, _ in best.levels)
        taken[best.venue] = taken.get(best.venue, Decimal(0)) + remaining
        cost[best.venue] = cost.get(best.venue, Decimal(0)) + remaining * worst
    fees = {b.venue: b.fee_bps for b in venue_books}
    shares = []
    for venue, q in taken.items():
        price = cost[venue] / q
        shares.append(VenueShare(venue, q, price, fees[venue], price_after_fee(price, fees[venue], side)))
    return shares


def route(quantity: Decimal, side: Side, books: Sequence[BookTop | VenueBook]) -> list[tuple[str, Decimal]]:
    """(venue, quantity) of ``route_by_depth``, in routing order."""
    return [(share.venue, share.quantity) for share in route_by_depth(quantity, side, books)]


def slippage_bps(fill_price: Decimal, arrival_price: Decimal, side: Side) -> Decimal:
    """Implementation shortfall of a fill versus the arrival price, in bps (positive = worse for us)."""
    sign = 1 if side is Side.BUY else -1
    return sign * (fill_price - arrival_price) / arrival_price * Decimal(10000)


def arrival_slippage(fills: Sequence[Fill], arrival_price: Decimal) -> dict[str, str]:
    """Volume-weighted fill price of ``fills`` and its slippage versus the arrival price (bps, positive = worse)."""
    quantity = sum((f.quantity for f in fills), Decimal(0))
    if quantity <= 0 or arrival_price <= 0:
        return {}
    average = sum((f.price * f.quantity for f in fills), Decimal(0)) / quantity
    return {
        "arrival_price": str(arrival_price),
        "avg_fill_price": str(average),
        "slippage_bps_vs_arrival": str(round(slippage_bps(average, arrival_price, fills[0].side), 4)),
    }


# --- splitting inside execution ---------------------------------------------------------------------------------------

SPLIT_METHODS = ("twap", "iceberg")


@dataclass(frozen=True, slots=True)
class SplitPolicy:
    """When and how ``execute`` splits an intent: one whose notional is above ``above_notional`` (None: never) goes
    out as child orders, ``slices`` equal ones (``twap``: slice k, from 0, due ``k * duration / slices`` after
    arrival; with a zero ``duration`` all are sent in the same call) or ones of at most ``visible_notional`` each
    (``iceberg``: one shown at a time, each next child recorded to go once the one before it has filled). Both
    notionals are in the account's base currency, like every limit (``split_intents`` converts at the send time's
    rate)."""

    above_notional: Decimal | None = None
    method: str = "twap"
    slices: int = 4
    visible_notional: Decimal = Decimal(0)
    duration: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if self.method not in SPLIT_METHODS:
            raise ValueError(f"split method must be one of {', '.join(SPLIT_METHODS)}, got {self.method!r}")
        if self.above_notional is not None:
            if self.above_notional <= 0:
                raise ValueError(f"split_above_notional must be positive, got {self.above_notional}")
            if self.method == "twap" and self.slices < 2:
                raise ValueError(f"split_slices must be >= 2 to split, got {self.slices}")
            if self.duration < timedelta(0):
                raise ValueError(f"twap duration must not be negative, got {self.duration}")
            if self.method == "iceberg" and self.visible_notional <= 0:
                raise ValueError(f"split_visible_notional must be positive for iceberg, got {self.visible_notional}")

    @classmethod
    def from_settings(cls, settings: Settings) -> SplitPolicy:
        return cls(
            settings.split.above_notional,
            settings.split.method,
            settings.split.slices,
            settings.split.visible_notional,
            timedelta(minutes=settings.split.twap_duration_minutes),
        )


@dataclass(frozen=True, slots=True)
class SplitPlan:
    """The intents to send, in order (children in place of their parent) and each child's parent client id;
    ``offsets``: for the slices of a TWAP spread over time, how long after arrival each is due (the first: zero);
    for iceberg children zero, with ``after``: each child but the first -> the child that must fill before it."""

    intents: list[OrderIntent]
    parents: dict[ClientOrderId, ClientOrderId]
    offsets: dict[ClientOrderId, timedelta] = dataclasses.field(default_factory=dict)
    after: dict[ClientOrderId, ClientOrderId] = dataclasses.field(default_factory=dict)


def _step(quantity: Decimal) -> Decimal:
    """The quantity's own precision (1 for whole units, 0.0001 for 53.4217): children keep it."""
    return Decimal(1).scaleb(min(0, quantity.normalize().as_tuple().exponent))  # type: ignore[arg-type]


QuoteRates = Mapping[tuple[str, str], Decimal | None]


def split_intents(intents: Sequence[OrderIntent], policy: SplitPolicy, quote_rates: QuoteRates) -> SplitPlan:
    """Replace each intent above the policy's notional by its children (legs ``leg * 1000 + n``, so client order ids
    stay deterministic from (decision id, leg)); the rest pass through unchanged.

    The policy's notionals are in the account's base currency, like every limit: ``quote_rates`` gives, per
    (account, symbol), the units of the base currency per unit of the symbol's quote currency at the time of sending
    (``execution.orders.store.read_quote_rates``). An intent whose rate is unknown (None or absent) is not split: it
    goes on whole, and execution refuses it naming the pair (the rate is never taken as 1)."""
    out: list[OrderIntent] = []
    links: dict[ClientOrderId, ClientOrderId] = {}
    offsets: dict[ClientOrderId, timedelta] = {}
    after: dict[ClientOrderId, ClientOrderId] = {}
    for intent in intents:
        rate = quote_rates.get((intent.account, intent.symbol))
        if policy.above_notional is None or rate is None or intent.notional * rate <= policy.above_notional:
            out.append(intent)
            continue
        step = _step(intent.quantity)
        if policy.method == "twap":
            parts = _equal_parts(intent.quantity, policy.slices, step)
            children = _children(intent, parts)
        else:
            unit_value = intent.reference_price * rate  # one unit of the asset, in the base currency
            visible = (policy.visible_notional / unit_value / step).to_integral_value(ROUND_DOWN) * step
            children = iceberg(intent, visible=visible) if visible > 0 else [intent]
        if len(children) < 2:  # too small to split at this precision
            out.append(intent)
            continue
        out.extend(children)
        links.update(parent_map(intent, children))
        if policy.method == "twap" and policy.duration > timedelta(0):
            for k, child in enumerate(children):
                offsets[client_order_id_for(child.decision_id, child.leg)] = policy.duration * k / len(children)
        if policy.method == "iceberg":  # one shown at a time: each next child waits for the one before to fill
            coids = [client_order_id_for(c.decision_id, c.leg) for c in children]
            offsets.update(dict.fromkeys(coids, timedelta(0)))
            after.update(zip(coids[1:], coids[:-1], strict=True))
    return SplitPlan(out, links, offsets, after)
