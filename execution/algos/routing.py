"""Smart routing across configured venues: best price after fees, walking several levels of each venue's order book,
with the plan saved before any leg is sent.

- ``RoutingBroker`` is a ``Broker`` wrapping several venue brokers (``CcxtBroker``s, one per venue, each with the
  account's credentials there), a ``LegRoutingBroker``: ``route`` replaces intents by their legs (``route_intents``)
  and it sends each client order id to the venue its route plan names (``assign``); an id with no plan goes to the
  ``home`` venue. ``lookup`` asks the planned venue (an unplanned id: every venue, home first); ``balances`` adds up
  the venues' totals (so ``execution.accounts.reconcile`` compares the account with all of them).
- ``plan_legs`` (pure): ``execution.algos.splitting.route_by_depth`` over the venues' books (``VenueBook``: up to
  ``depth`` levels each, read with ccxt ``fetch_order_book``; a ``BookTop`` is a one-level book): the levels of all
  venues are taken from the best price after each venue's fee until the quantity is done, what the books cannot
  cover goes to the best venue. One ``RouteLeg`` per venue with leg ``parent.leg * 1000 + n`` (deterministic client
  ids), its size-weighted expected price over the levels it takes (``venue_price``; after fees:
  ``effective_price``), its fee, and the arrival price: the best touch across the venues when the plan was made
  (each leg's slippage is measured against it).
- ``route_intents`` (``RoutingBroker.route``, called by ``execute``'s plan stage before any send): per intent, the
  saved plan (``audit.route_legs``) when there is one, else a new plan from the books, committed on its own
  connection before anything is sent. So a retry or restart re-sends each leg only to the venue its plan names
  (execution looks it up there by client id first) and never doubles it, even when the books have moved since. An
  intent that already went out unrouted (an order or a submit attempt with its own client id) is left as it is. When
  no venue's book can be read, ``VenueTemporaryError`` (retry later) and nothing is sent.
- Quote venues (``QuoteVenueBroker``: Alpaca, OANDA) show no book: each offers its best bid/ask and its fee schedule,
  read as a one-level book (``execution.algos.quotes.quote_book``); a missing, untradeable or stale quote (older than
  ``max_quote_age`` by the router's clock) leaves the venue out, never a guessed price. Venues pricing in different
  currencies are compared in the account's base currency at the rate known now (``audit.fx_rates``); a venue whose
  rate is not known is left out. Every venue left out of a new plan is recorded with its reason as a guard trip
  (``route_venue_excluded``, client order id: the parent), committed with the plan.
- The router is a ``QuotingBroker``: the send-time price band of a routed order is measured at the venues its legs
  go to (``current_price``), as it would be at a single venue.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import Connection, text

from alphaloom.domain import AccountId, ClientOrderId, OrderIntent, Side, Symbol, client_order_id_for, quote_currency
from alphaloom.errors import AlphaLoomError, ConfigError, VenueError, VenueTemporaryError
from alphaloom.records.guards import insert_trip
from execution.algos.quotes import Quote, QuoteFees, quote_book
from execution.algos.splitting import BookTop, VenueBook, route_by_depth
from execution.brokers.base import Broker, BrokerReport, OrderRequest, RoutedOrders, is_quoting
from execution.orders.store import read_pair_rates

DEFAULT_MAX_QUOTE_AGE = timedelta(seconds=30)
EXCLUDED = "route_venue_excluded"  # the guard trip of a venue left out of a route plan


@runtime_checkable
class BookVenueBroker(Broker, Protocol):
    """A venue that shows its order book (``CcxtBroker``)."""

    def book_levels(self, symbol: Symbol, side: Side, depth: int) -> list[tuple[Decimal, Decimal]]: ...

    def taker_fee_bps(self, symbol: Symbol) -> Decimal: ...


@runtime_checkable
class QuoteVenueBroker(Broker, Protocol):
    """A venue that shows only its best bid and ask (``AlpacaBroker``, ``OandaBroker``): ``venue_quote`` fetches it
    (a ``VenueError`` when it cannot), ``quote_fees`` is its fee schedule."""

    def venue_quote(self, symbol: Symbol) -> Quote: ...

    def quote_fees(self, symbol: Symbol) -> QuoteFees: ...


VenueBroker = BookVenueBroker | QuoteVenueBroker


@dataclass(frozen=True, slots=True)
class RouteLeg:
    client_order_id: ClientOrderId
    parent: ClientOrderId
    leg: int
    venue: str
    quantity: Decimal
    venue_price: Decimal
    fee_bps: Decimal
    effective_price: Decimal
    arrival_price: Decimal
    currency: str | None = None  # what the venue priced the leg in (None: the symbol's quote currency)
    base_rate: Decimal = Decimal(1)  # units of the account's base currency per unit of ``currency``, as ranked


def plan_legs(intent: OrderIntent, books: Sequence[BookTop | VenueBook]) -> list[RouteLeg]:
    """The legs of ``intent`` across ``books`` (see the module docstring). Arrival price: the best raw touch among
    the books (lowest first ask for a buy, highest first bid for a sell), compared in the base currency
    (``VenueBook.rate``) and given to each leg in its own venue's currency."""
    parent = client_order_id_for(intent.decision_id, intent.leg)
    venue_books = [VenueBook.of(b) for b in books]
    touches = [b.levels[0][0] * b.rate for b in venue_books]
    arrival = (min(touches) if intent.side is Side.BUY else max(touches)) if touches else Decimal(0)
    rates = {b.venue: b.rate for b in venue_books}
    currencies = {b.venue: b.currency for b in venue_books}
    legs = []
    for n, share in enumerate(route_by_depth(intent.quantity, intent.side, venue_books), start=1):
        leg = intent.leg * 1000 + n
        rate = rates[share.venue]
        legs.append(RouteLeg(client_order_id_for(intent.decision_id, leg), parent, leg, share.venue, share.quantity,
                             share.price, share.fee_bps, share.effective_price,
                             arrival if rate == 1 else arrival / rate, currencies[share.venue], rate))  # fmt: skip
    return legs


class RoutingBroker:
    """``venues``: venue name -> its broker (a book venue or a quote venue); ``home``: the venue of an id without a
    plan (default: the first); ``fee_bps``: taker fees (bps) per venue overriding the market's published fee (or a
    quote venue's schedule); ``depth``: how many levels of each venue's book a plan reads; ``max_quote_age``: the
    oldest quote a plan uses, by ``clock``; ``currencies``: the currency a book venue prices in where it is not the
    symbol's quote currency. Live when any of its venues is."""

    def __init__(
        self,
        venues: Mapping[str, VenueBroker],
        *,
        home: str | None = None,
        fee_bps: Mapping[str, Decimal] | None = None,
        depth: int = 10,
        max_quote_age: timedelta = DEFAULT_MAX_QUOTE_AGE,
        clock: Callable[[], datetime] | None = None,
        currencies: Mapping[str, str] | None = None,
    ) -> None:
        if not venues:
            raise ConfigError("routing needs at least one venue")
        self.venues = dict(venues)
        self.home = home or next(iter(self.venues))
        if self.home not in self.venues:
            raise ConfigError(f"home venue {self.home!r} is not among the routed venues {sorted(self.venues)}")
        self.name = self.home
        self.live = any(b.live for b in self.venues.values())
        self.fee_bps = dict(fee_bps or {})
        if depth < 1:
            raise ConfigError(f"routing depth must be >= 1 book level, got {depth}")
        self.depth = depth
        self.max_quote_age = max_quote_age
        self.clock = clock or (lambda: datetime.now(UTC))
        self.currencies = dict(currencies or {})
        self._plan: dict[ClientOrderId, str] = {}
        self._routing: dict[tuple[Symbol, Side], set[str]] = {}

    def books(
        self, symbol: Symbol, side: Side, quantity: Decimal | None = None
    ) -> tuple[list[VenueBook], dict[str, str]]:
        """Each venue's side of the book we take (up to ``depth`` levels; a quote venue's quote as one level, sized
        ``quantity`` where the venue gives no size) with its fee; a venue whose book or quote cannot be read or used is
        left out (its reason in the second value). No venue at all: ``VenueTemporaryError``."""
        books, skipped = self.read_books(symbol, side, quantity)
        if not books:
            raise VenueTemporaryError(f"no venue's {symbol} book could be read: {skipped}")
        return books, skipped

    def read_books(
        self, symbol: Symbol, side: Side, quantity: Decimal | None = None
    ) -> tuple[list[VenueBook], dict[str, str]]:
        """``books`` without the error when none can be read."""
        books, skipped = [], {}
        for venue, broker in self.venues.items():
            try:
                books.append(self._book(venue, broker, symbol, side, quantity))
            except AlphaLoomError as exc:
                skipped[venue] = f"{type(exc).__name__}: {exc}"
        return books, skipped

    def _book(self, venue: str, broker: VenueBroker, symbol: Symbol, side: Side, quantity: Decimal | None) -> VenueBook:
        fee = self.fee_bps.get(venue)
        if isinstance(broker, BookVenueBroker):
            levels = broker.book_levels(symbol, side, self.depth)
            currency = self.currencies.get(venue) or quote_currency(symbol, "") or None  # None: not in the symbol
            return VenueBook(venue, tuple(levels), fee if fee is not None else broker.taker_fee_bps(symbol),
                             currency=currency)  # fmt: skip
        if not isinstance(broker, QuoteVenueBroker):
            raise ConfigError(f"venue {venue!r} shows neither an order book nor a quote: it cannot be routed to")
        quote = dataclasses.replace(broker.venue_quote(symbol), venue=venue)
        book = quote_book(quote, side, broker.quote_fees(symbol), quantity=quantity or Decimal(0), now=self.clock(),
                          max_age=self.max_quote_age)  # fmt: skip
        return book if fee is None else dataclasses.replace(book, fee_bps=fee)

    def in_base_currency(
        self, conn: Connection, account: AccountId, symbol: Symbol, books: Sequence[VenueBook]
    ) -> tuple[list[VenueBook], dict[str, str]]:
        """``books`` with their rates into ``account``'s base currency known now, when they price in different
        currencies (else as they are: the same currency ranks alike in any); a venue whose rate is not known is left
        out with the reason."""
        if len({b.currency for b in books}) <= 1:
            return list(books), {}
        now = self.clock()
        # a venue's prices as the price of a pair quoted in its currency: the rate of that currency into the base
        pairs = {b.venue: (account, symbol if b.currency is None else f"_/{b.currency}") for b in books}
        rates = read_pair_rates(conn, sorted(set(pairs.values())), now)
        kept, skipped = [], {}
        for book in books:
            rate = rates.get(pairs[book.venue])
            if rate is None:
                skipped[book.venue] = (f"no fx rate from {book.currency or symbol} into {account}'s base currency "
                                       f"known at {now.isoformat()}")  # fmt: skip
            else:
                kept.append(dataclasses.replace(book, rate=rate))
        return kept, skipped

    def assign(self, legs: Sequence[RouteLeg]) -> None:
        for leg in legs:
            if leg.venue not in self.venues:
                raise ConfigError(f"{leg.client_order_id} is planned for {leg.venue!r}, which is not configured")
            self._plan[leg.client_order_id] = leg.venue

    def venue_of(self, client_order_id: ClientOrderId) -> str:
        return self._plan.get(client_order_id, self.home)

    def routing(self, symbol: Symbol, side: Side, venues: Sequence[str]) -> None:
        """Note that orders of ``symbol`` and ``side`` go to ``venues`` in this call (``current_price``)."""
        self._routing.setdefault((symbol, side), set()).update(venues)

    # -- QuotingBroker: the price band of a routed order -----------------------------------------------------------
    def current_price(self, symbol: Symbol, side: Side) -> Decimal:
        """The price the orders of ``symbol`` and ``side`` routed in this call meet now, for the send-time price band:
        the current price (``QuotingBroker``) of each venue they go to (none routed: the home venue), the least
        favourable for us (highest for a buy, lowest for a sell), so every leg is banded at least as strictly as at
        its own venue. A venue that cannot quote raises (an order is never sent unbanded); so does a router none of
        whose venues quotes."""
        names = sorted(self._routing.get((symbol, side)) or {self.home})
        prices = [broker.current_price(symbol, side) for name in names
                  if is_quoting(broker := self.venues[name])]  # fmt: skip
        if not prices:
            raise VenueError(f"no venue {symbol} is routed to quotes a price ({', '.join(names)})")
        return max(prices) if side is Side.BUY else min(prices)

    # -- Broker ----------------------------------------------------------------------------------------------------
    def route(self, conn: Connection, intents: Sequence[OrderIntent], *, run_id: str) -> RoutedOrders:
        """Each intent's legs (``route_intents``), each assigned to its planned venue (``LegRoutingBroker``)."""
        self._routing = {}
        return route_intents(conn, intents, self, run_id=run_id)

    def submit(self, request: OrderRequest) -> BrokerReport:
        return self.venues[self.venue_of(request.client_order_id)].submit(request)

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        planned = self._plan.get(client_order_id)
        order = [planned] if planned else [self.home, *(v for v in self.venues if v != self.home)]
        for venue in order:
            report = self.venues[venue].lookup(client_order_id)
            if report is not None:
                return report
        return None

    # -- reconciliation --------------------------------------------------------------------------------------------
    def balances(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for broker in self.venues.values():
            for ccy, amount in broker.balances().items():  # type: ignore[union-attr]
                totals[ccy] = totals.get(ccy, Decimal(0)) + amount
        return totals

    def open_orders(self, symbol: Symbol | None = None) -> list[BrokerReport]:
        return [r for b in self.venues.values() for r in b.open_orders(symbol)]  # type: ignore[union-attr]

    def cancel(self, client_order_id: ClientOrderId, symbol: Symbol) -> BrokerReport | None:
        venue = self.venues[self.venue_of(client_order_id)]
        # VenueBroker does not require cancel (CcxtBroker, the venue broker in use, has it): typed here, not Any
        report: BrokerReport | None = venue.cancel(client_order_id, symbol)  # type: ignore[union-attr]
        return report


def _leg(row: Any) -> RouteLeg:
    return RouteLeg(ClientOrderId(row.client_order_id), ClientOrderId(row.parent_client_order_id), row.leg, row.venue,
                    Decimal(row.quantity), Decimal(row.venue_price), Decimal(row.fee_bps),
                    Decimal(row.effective_price), Decimal(row.arrival_price), row.currency,
                    Decimal(row.base_rate))  # fmt: skip


def saved_plan(conn: Connection, parent: ClientOrderId) -> list[RouteLeg]:
    rows = conn.execute(
        text("select * from audit.route_legs where parent_client_order_id = :p order by leg"), {"p": parent}
    ).all()
    return [_leg(r) for r in rows]


def record_exclusions(conn: Connection, intent: OrderIntent, skipped: Mapping[str, str], *, run_id: str) -> None:
    """Commit now, on a separate connection, one guard trip per venue left out of ``intent``'s plan, with why."""
    if not skipped:
        return
    parent = client_order_id_for(intent.decision_id, intent.leg)
    with conn.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as own:
        for venue, why in sorted(skipped.items()):
            insert_trip(own, run_id=run_id, account=intent.account, guard=EXCLUDED, reason=why,
                        numbers={"venue": venue, "side": intent.side.value, "quantity": str(intent.quantity)},
                        symbol=intent.symbol, client_order_id=parent, decision_id=intent.decision_id)  # fmt: skip


def save_plan(conn: Connection, intent: OrderIntent, legs: Sequence[RouteLeg], *, run_id: str) -> list[RouteLeg]:
    """Commit ``legs`` now, on a separate connection (the caller's transaction may roll back), and return the plan
    stored for the parent: the first one saved wins."""
    with conn.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as own:
        for leg in legs:
            own.execute(
                text(
                    """insert into audit.route_legs (client_order_id, parent_client_order_id, decision_id, leg,
                           account, symbol, side, venue, quantity, venue_price, fee_bps, effective_price,
                           arrival_price, currency, base_rate, run_id)
                       values (:c, :p, :d, :leg, :a, :s, :side, :v, :q, :vp, :fee, :eff, :arr, :ccy, :rate, :r)
                       on conflict (client_order_id) do nothing"""
                ),
                {"c": leg.client_order_id, "p": leg.parent, "d": intent.decision_id, "leg": leg.leg,
                 "a": intent.account, "s": intent.symbol, "side": intent.side.value, "v": leg.venue,
                 "q": leg.quantity, "vp": leg.venue_price, "fee": leg.fee_bps, "eff": leg.effective_price,
                 "arr": leg.arrival_price, "ccy": leg.currency, "rate": leg.base_rate, "r": run_id},
            )  # fmt: skip
        return saved_plan(own, legs[0].parent) if legs else []


def _sent_unrouted(conn: Connection, client_order_id: ClientOrderId) -> bool:
    return bool(
        conn.execute(
            text("""select exists (select 1 from audit.orders where client_order_id = :c)
                        or exists (select 1 from audit.submit_attempts where client_order_id = :c)"""),
            {"c": client_order_id},
        ).scalar()
    )  # fmt: skip


def route_intents(
    conn: Connection, intents: Sequence[OrderIntent], broker: RoutingBroker, *, run_id: str
) -> RoutedOrders:
    """Replace each intent by its route legs (saved plan first, else a new plan saved before returning) and tell
    ``broker`` where each leg goes. See the module docstring."""
    out = RoutedOrders([])
    for intent in intents:
        parent = client_order_id_for(intent.decision_id, intent.leg)
        legs = saved_plan(conn, parent)
        if not legs:
            if _sent_unrouted(conn, parent):
                out.intents.append(intent)
                broker.routing(intent.symbol, intent.side, [broker.home])
                continue
            books = _usable_books(conn, intent, broker, run_id=run_id)
            legs = save_plan(conn, intent, plan_legs(intent, books), run_id=run_id)
        broker.assign(legs)
        broker.routing(intent.symbol, intent.side, [leg.venue for leg in legs])
        out.siblings[parent] = [leg.client_order_id for leg in legs]
        for leg in legs:
            out.intents.append(dataclasses.replace(intent, quantity=leg.quantity, leg=leg.leg))
            out.parents[leg.client_order_id] = parent
            out.venues[leg.client_order_id] = leg.venue
            out.arrival[leg.client_order_id] = leg.arrival_price
    return out


def _usable_books(conn: Connection, intent: OrderIntent, broker: RoutingBroker, *, run_id: str) -> list[VenueBook]:
    """The books a new plan for ``intent`` is made on, in the base currency; the venues left out are recorded. None
    usable: ``VenueTemporaryError`` (retry later; nothing is sent)."""
    books, skipped = broker.read_books(intent.symbol, intent.side, intent.quantity)
    books, unpriced = broker.in_base_currency(conn, intent.account, intent.symbol, books)
    skipped.update(unpriced)
    record_exclusions(conn, intent, skipped, run_id=run_id)
    if not books:
        raise VenueTemporaryError(f"no venue's {intent.symbol} book or quote is usable: {skipped}")
    return books
