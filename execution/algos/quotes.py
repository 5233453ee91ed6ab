"""Quote venues in routing: a venue that shows no order book (Alpaca for stocks, OANDA for forex) offers its best bid
and ask, with the size there where the venue gives one, and its fee schedule; routing reads them as a one-level book.
Pure: the brokers fetch the quotes (``AlpacaBroker.venue_quote``, ``OandaBroker.venue_quote``), this decides whether a
quote may be planned on and what it becomes.

- ``Quote``: the venue's best bid and ask (in ``currency``, the currency its prices are in), the size at each (None:
  the venue gives none), when it was quoted, and whether the venue says it is tradeable now.
- ``QuoteFees``: what an order costs beside the price, as the venue charges it: a commission in bps on every order,
  and on sells a fee in bps of the notional plus a fee per unit sold (Alpaca passes on the SEC's Section 31 fee and
  FINRA's trading activity fee on sells; OANDA charges nothing beside its spread). ``bps`` is the whole of it in bps
  of the price, so a per-unit fee weighs more on a cheap share. The per-order cap of FINRA's fee is left out: the
  figure is the most the order can pay, never less.
- ``quote_book``: the quote as the one-level ``VenueBook`` routing walks (the ask for a buy, the bid for a sell, its
  size, else the whole quantity when the venue gives no size), or a ``VenueTemporaryError`` naming why the venue is
  left out: no quote on that side, a quote older than ``max_age`` (or with no time), a venue that says it is not
  tradeable. A price is never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from alphaloom.domain import Side, Symbol, require_utc
from alphaloom.errors import VenueTemporaryError
from execution.algos.splitting import VenueBook

BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class Quote:
    """A venue's best bid and ask for ``symbol`` at ``at``, in ``currency``; sizes in the symbol's units."""

    venue: str
    symbol: Symbol
    bid: Decimal | None
    ask: Decimal | None
    at: datetime | None
    currency: str
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None
    tradeable: bool = True

    def side(self, side: Side) -> tuple[Decimal | None, Decimal | None]:
        """(price, size) an order of ``side`` takes: the ask for a buy, the bid for a sell."""
        return (self.ask, self.ask_size) if side is Side.BUY else (self.bid, self.bid_size)


@dataclass(frozen=True, slots=True)
class QuoteFees:
    """A venue's fee schedule (see the module docstring); ``sell_per_unit`` in the quote's currency."""

    commission_bps: Decimal = Decimal(0)
    sell_bps: Decimal = Decimal(0)
    sell_per_unit: Decimal = Decimal(0)

    def bps(self, side: Side, price: Decimal) -> Decimal:
        """Every fee of an order of ``side`` at ``price``, in bps of the price."""
        fee = self.commission_bps
        if side is Side.SELL:
            fee += self.sell_bps + self.sell_per_unit / price * BPS
        return fee


def quote_problem(quote: Quote, side: Side, *, now: datetime, max_age: timedelta) -> str | None:
    """Why ``quote`` cannot be routed on for ``side`` at ``now``, or None when it can."""
    price, size = quote.side(side)
    name = "ask" if side is Side.BUY else "bid"
    if not quote.tradeable:
        return f"{quote.venue}: the {quote.symbol} quote is not tradeable now"
    if price is None or price <= 0:
        return f"{quote.venue}: no {name} quoted for {quote.symbol}"
    if size is not None and size <= 0:
        return f"{quote.venue}: no size at the {name} of {quote.symbol}"
    if quote.at is None:
        return f"{quote.venue}: the {quote.symbol} quote has no time"
    age = require_utc(now, "now") - require_utc(quote.at, "quote time")
    if age > max_age:
        return (f"{quote.venue}: the {quote.symbol} quote of {quote.at.isoformat()} is stale: "
                f"{age.total_seconds():.0f} s old, more than {max_age.total_seconds():.0f} s")  # fmt: skip
    return None


def quote_book(
    quote: Quote, side: Side, fees: QuoteFees, *, quantity: Decimal, now: datetime, max_age: timedelta
) -> VenueBook:
    """``quote`` as a one-level book of ``side`` with its fees in bps (size: the venue's, else ``quantity``);
    ``VenueTemporaryError`` with the reason when it cannot be routed on (``quote_problem``)."""
    problem = quote_problem(quote, side, now=now, max_age=max_age)
    if problem is not None:
        raise VenueTemporaryError(problem)
    price, size = quote.side(side)
    assert price is not None  # quote_problem refuses a missing price
    return VenueBook(quote.venue, ((price, quantity if size is None else size),), fees.bps(side, price),
                     currency=quote.currency)  # fmt: skip
