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
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Connection, text

from alphaloom.domain import ClientOrderId, OrderIntent, Side, Symbol, client_order_id_for
from alphaloom.errors import AlphaLoomError, ConfigError, VenueTemporaryError
from execution.algos.splitting import BookTop, VenueBook, route_by_depth
from execution.brokers.base import Broker, BrokerReport, OrderRequest, RoutedOrders


class VenueBroker(Broker, Protocol):
    """What routing needs of a venue's broker (``CcxtBroker`` has it)."""

    def book_levels(self, symbol: Symbol, side: Side, depth: int) -> list[tuple[Decimal, Decimal]]: ...

    def taker_fee_bps(self, symbol: Symbol) -> Decimal: ...


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


def plan_legs(intent: OrderIntent, books: Sequence[BookTop | VenueBook]) -> list[RouteLeg]:
    """The legs of ``intent`` across ``books`` (see the module docstring). Arrival price: the best raw touch among
    the books (lowest first ask for a buy, highest first bid for a sell)."""
    parent = client_order_id_for(intent.decision_id, intent.leg)
    touches = [VenueBook.of(b).levels[0][0] for b in books]
    arrival = (min(touches) if intent.side is Side.BUY else max(touches)) if touches else Decimal(0)
    legs = []
    for n, share in enumerate(route_by_depth(intent.quantity, intent.side, books), start=1):
        leg = intent.leg * 1000 + n
        legs.append(RouteLeg(client_order_id_for(intent.decision_id, leg), parent, leg, share.venue, share.quantity,
                             share.price, share.fee_bps, share.effective_price, arrival))  # fmt: skip
    return legs


class RoutingBroker:
    """``venues``: venue name -> its broker; ``home``: the venue of an id without a plan (default: the first);
    ``fee_bps``: taker fees (bps) per venue overriding the market's published fee; ``depth``: how many levels of each
    venue's book a plan reads. Live when any of its venues is."""

    def __init__(
        self,
        venues: Mapping[str, VenueBroker],
        *,
        home: str | None = None,
        fee_bps: Mapping[str, Decimal] | None = None,
        depth: int = 10,
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
        self._plan: dict[ClientOrderId, str] = {}

    def books(self, symbol: Symbol, side: Side) -> tuple[list[VenueBook], dict[str, str]]:
        """Each venue's side of the book we take (up to ``depth`` levels) with its fee; a venue whose book cannot be
        read is left out (its error in the second value). No venue at all: ``VenueTemporaryError``."""
        books, skipped = [], {}
        for venue, broker in self.venues.items():
            try:
                levels = broker.book_levels(symbol, side, self.depth)
                fee = self.fee_bps.get(venue)
                books.append(VenueBook(venue, tuple(levels), fee if fee is not None else broker.taker_fee_bps(symbol)))
            except AlphaLoomError as exc:
                skipped[venue] = f"{type(exc).__name__}: {exc}"
        if not books:
            raise VenueTemporaryError(f"no venue's {symbol} book could be read: {skipped}")
        return books, skipped

    def assign(self, legs: Sequence[RouteLeg]) -> None:
        for leg in legs:
            if leg.venue not in self.venues:
                raise ConfigError(f"{leg.client_order_id} is planned for {leg.venue!r}, which is not configured")
            self._plan[leg.client_order_id] = leg.venue

    def venue_of(self, client_order_id: ClientOrderId) -> str:
        return self._plan.get(client_order_id, self.home)

    # -- Broker ----------------------------------------------------------------------------------------------------
    def route(self, conn: Connection, intents: Sequence[OrderIntent], *, run_id: str) -> RoutedOrders:
        """Each intent's legs (``route_intents``), each assigned to its planned venue (``LegRoutingBroker``)."""
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
            for ccy, amount in broker.balances().items():  # type: ignore[attr-defined]
                totals[ccy] = totals.get(ccy, Decimal(0)) + amount
        return totals

    def open_orders(self, symbol: Symbol | None = None) -> list[BrokerReport]:
        return [r for b in self.venues.values() for r in b.open_orders(symbol)]  # type: ignore[attr-defined]

    def cancel(self, client_order_id: ClientOrderId, symbol: Symbol) -> BrokerReport | None:
        venue = self.venues[self.venue_of(client_order_id)]
        # VenueBroker does not require cancel (CcxtBroker, the venue broker in use, has it): typed here, not Any
        report: BrokerReport | None = venue.cancel(client_order_id, symbol)  # type: ignore[attr-defined]
        return report


def _leg(row: Any) -> RouteLeg:
    return RouteLeg(ClientOrderId(row.client_order_id), ClientOrderId(row.parent_client_order_id), row.leg, row.venue,
                    Decimal(row.quantity), Decimal(row.venue_price), Decimal(row.fee_bps),
                    Decimal(row.effective_price), Decimal(row.arrival_price))  # fmt: skip


def saved_plan(conn: Connection, parent: ClientOrderId) -> list[RouteLeg]:
    rows = conn.execute(
        text("select * from audit.route_legs where parent_client_order_id = :p order by leg"), {"p": parent}
    ).all()
    return [_leg(r) for r in rows]


def save_plan(conn: Connection, intent: OrderIntent, legs: Sequence[RouteLeg], *, run_id: str) -> list[RouteLeg]:
    """Commit ``legs`` now, on a separate connection (the caller's transaction may roll back), and return the plan
    stored for the parent: the first one saved wins."""
    with conn.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as own:
        for leg in legs:
            own.execute(
                text(
                    """insert into audit.route_legs (client_order_id, parent_client_order_id, decision_id, leg,
                           account, symbol, side, venue, quantity, venue_price, fee_bps, effective_price,
                           arrival_price, run_id)
                       values (:c, :p, :d, :leg, :a, :s, :side, :v, :q, :vp, :fee, :eff, :arr, :r)
                       on conflict (client_order_id) do nothing"""
                ),
                {"c": leg.client_order_id, "p": leg.parent, "d": intent.decision_id, "leg": leg.leg,
                 "a": intent.account, "s": intent.symbol, "side": intent.side.value, "v": leg.venue,
                 "q": leg.quantity, "vp": leg.venue_price, "fee": leg.fee_bps, "eff": leg.effective_price,
                 "arr": leg.arrival_price, "r": run_id},
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
                continue
            books, _ = broker.books(intent.symbol, intent.side)
            legs = save_plan(conn, intent, plan_legs(intent, books), run_id=run_id)
        broker.assign(legs)
        out.siblings[parent] = [leg.client_order_id for leg in legs]
        for leg in legs:
            out.intents.append(dataclasses.replace(intent, quantity=leg.quantity, leg=leg.leg))
            out.parents[leg.client_order_id] = parent
            out.venues[leg.client_order_id] = leg.venue
            out.arrival[leg.client_order_id] = leg.arrival_price
    return out
