"""The paper broker: an adapter with the same interface as a live one (not an if-branch in execution).

Fills, all Decimal and explicit:

- price: the reference price moved against the trader by ``slippage_bps`` + half of ``spread_bps`` + a square-root
  volume impact ``impact_bps * sqrt(quantity / bar_volume)`` (a buy pays up, a sell receives less);
- quantity: market orders fill at once, up to ``max_participation`` of the last bar's volume when the request carries
  ``bar_volume``; the rest expires (immediate-or-cancel), so a large order ends ``expired`` with a partial fill;
- fee: ``fee_bps`` of the fill notional, in the symbol's quote currency.

The venue's book is a ``PaperVenue`` (the port): ``InMemoryVenue`` for pure tests and for replays (a backtest's
venue lives as long as the replay: its fills, order states and sequence advance in memory through the same broker
code, no round trip per order), ``PostgresPaperVenue`` (table ``paper_venue.orders``, written in its own transaction
like a real venue) wherever a crash must not lose the venue's memory. ``outlives_caller``: whether the book is still
asked after the caller's transaction failed (the Postgres venue; an in-memory one in a process that goes on), so the
submit journal must be committed apart from that transaction (``execution.orders.journal``); a replay's venue
(``InMemoryVenue(outlives_caller=False)``) is dropped with a replay that stops at its failed step. Like Binance, a
client order id is unique only among open orders: resending the id of a filled order makes a
second venue order, so only execution's lookup-before-resend prevents doubles. It checks the kill switch itself and
refuses (``KillSwitchEngagedError``) while it is engaged.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Protocol

from sqlalchemy import Engine, text

from alphaloom.domain import ClientOrderId, Fill, OrderStatus, Side, Symbol, VenueOrderId, quote_currency, stable_hash
from alphaloom.errors import KillSwitchEngagedError, OrderRejectedError
from alphaloom.ops.kill_switch import KillSwitchState
from execution.brokers.base import BrokerReport, OrderRequest, OrderType

BPS = Decimal(10000)
_OPEN = (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)


def fill_quantity(request: OrderRequest, max_participation: Decimal | None) -> Decimal:
    """What a market order gets now: all of it, or at most ``max_participation`` of the bar volume (same precision
    as the order quantity)."""
    if request.bar_volume is None or max_participation is None:
        return request.quantity
    cap = request.bar_volume * max_participation
    step = Decimal(1).scaleb(request.quantity.as_tuple().exponent)  # type: ignore[arg-type]
    return min(request.quantity, cap.quantize(step, rounding=ROUND_DOWN))


def paper_fill(
    request: OrderRequest,
    *,
    fee_bps: Decimal,
    slippage_bps: Decimal,
    spread_bps: Decimal = Decimal(0),
    impact_bps: Decimal = Decimal(0),
    quantity: Decimal | None = None,
) -> Fill:
    """One fill of a paper market order for ``quantity`` (default: all). ``slippage`` is its cost in quote currency
    versus the reference price."""
    quantity = request.quantity if quantity is None else quantity
    direction = 1 if request.side is Side.BUY else -1
    impact = Decimal(0)
    if impact_bps and request.bar_volume:
        impact = impact_bps * (quantity / request.bar_volume).sqrt()
    total_bps = slippage_bps + spread_bps / 2 + impact
    price = request.reference_price * (1 + direction * total_bps / BPS)
    notional = price * quantity
    return Fill(
        client_order_id=request.client_order_id,
        symbol=request.symbol,
        side=request.side,
        quantity=quantity,
        price=price,
        fee=notional * fee_bps / BPS,
        fee_currency=quote_currency(request.symbol, request.symbol),
        slippage=abs(price - request.reference_price) * quantity,
        ts=request.submitted_at,
    )


class PaperVenue(Protocol):
    """The paper venue's order book: ``place`` a new venue order (checked and added at once), ``latest`` report for a
    client id, ``count`` of its orders; ``add`` records an order as given. ``outlives_caller``: whether its book is
    still asked after a submitting transaction failed (see the module docstring)."""

    @property
    def outlives_caller(self) -> bool: ...

    def add(self, request: OrderRequest, report: BrokerReport) -> None: ...

    def latest(self, client_order_id: ClientOrderId) -> BrokerReport | None: ...

    def count(self, client_order_id: ClientOrderId) -> int: ...

    def history(self, client_order_id: ClientOrderId) -> tuple[BrokerReport | None, int]:
        """``(latest(client_order_id), count(client_order_id))`` in one look."""
        ...

    def place(self, request: OrderRequest, report: BrokerReport) -> BrokerReport:
        """Add a new venue order atomically: refused (``OrderRejectedError``) while an order with the same client id
        is open; else ``report`` with its venue order id (``paper-`` + hash of (client id, orders so far))."""
        ...


def venue_order_id(client_order_id: ClientOrderId, sequence: int) -> VenueOrderId:
    """The paper venue's id for the ``sequence``-th order (from 0) with ``client_order_id``."""
    return VenueOrderId(f"paper-{stable_hash(client_order_id, sequence, length=16)}")


def _duplicate_open(client_order_id: ClientOrderId) -> OrderRejectedError:
    return OrderRejectedError(f"duplicate open client order id {client_order_id}")


class InMemoryVenue:
    """A paper venue that forgets everything when the process ends (pure tests, benchmarks, replays).
    ``outlives_caller`` False: a replay's venue, never asked again once a step's transaction failed (the replay stops
    there), so its submit journal is written in the step's transaction (no connection of its own per order)."""

    def __init__(self, *, outlives_caller: bool = True) -> None:
        self.outlives_caller = outlives_caller
        self._orders: dict[ClientOrderId, list[BrokerReport]] = {}
        self._lock = threading.Lock()

    def add(self, request: OrderRequest, report: BrokerReport) -> None:
        with self._lock:
            self._orders.setdefault(request.client_order_id, []).append(report)

    def latest(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        reports = self._orders.get(client_order_id)
        return reports[-1] if reports else None

    def count(self, client_order_id: ClientOrderId) -> int:
        return len(self._orders.get(client_order_id, ()))

    def history(self, client_order_id: ClientOrderId) -> tuple[BrokerReport | None, int]:
        return self.latest(client_order_id), self.count(client_order_id)

    def place(self, request: OrderRequest, report: BrokerReport) -> BrokerReport:
        coid = request.client_order_id
        with self._lock:
            previous, sequence = self.history(coid)
            if previous is not None and previous.status in _OPEN:  # unique among open orders, like Binance
                raise _duplicate_open(coid)
            placed = report.placed(venue_order_id(coid, sequence))
            self._orders.setdefault(coid, []).append(placed)
        return placed


def _fills_json(fills: tuple[Fill, ...]) -> str:
    return json.dumps(
        [{"quantity": str(f.quantity), "price": str(f.price), "fee": str(f.fee), "fee_currency": f.fee_currency,
          "slippage": str(f.slippage), "ts": f.ts.isoformat()} for f in fills]
    )  # fmt: skip


class PostgresPaperVenue:
    """The paper venue's book in ``paper_venue.orders``, each write committed at once on its own connection, so it
    outlives the submitting process and transaction exactly like a remote venue would.

    Its connections run in autocommit: a read is one round trip, a write is its own transaction, durable on return."""

    outlives_caller = True

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    def add(self, request: OrderRequest, report: BrokerReport) -> None:
        with self._autocommit.connect() as conn:
            conn.execute(
                text(
                    """insert into paper_venue.orders (venue_order_id, client_order_id, account, symbol, side,
                           order_type, quantity, limit_price, stop_price, status, fills, reason)
                       values (:v, :c, :a, :s, :side, :t, :q, :lp, :sp, :st, cast(:f as jsonb), :reason)"""
                ),
                {"v": report.venue_order_id, "c": request.client_order_id, "a": request.account, "s": request.symbol,
                 "side": request.side.value, "t": str(request.order_type), "q": request.quantity,
                 "lp": request.limit_price, "sp": request.stop_price, "st": report.status.value,
                 "f": _fills_json(report.fills), "reason": report.reason},
            )  # fmt: skip

    def place(self, request: OrderRequest, report: BrokerReport) -> BrokerReport:
        """The duplicate-open check, the sequence and the insert in one statement (one round trip, committed at
        once); the id is computed in SQL exactly as ``venue_order_id`` does. Two submits of one client id at the same
        instant are kept apart upstream (execution's account lock), not here."""
        with self._autocommit.connect() as conn:
            row = conn.execute(
                text(
                    """with prev as (
                           select status, count(*) over () as n from paper_venue.orders where client_order_id = :c
                           order by created_at desc, venue_order_id desc limit 1
                       ), ins as (
                           insert into paper_venue.orders (venue_order_id, client_order_id, account, symbol, side,
                               order_type, quantity, limit_price, stop_price, status, fills, reason)
                           select 'paper-' || left(encode(sha256(convert_to(
                                      cast(:c as text) || chr(31) || coalesce((select n from prev), 0), 'UTF8')),
                                      'hex'), 16),
                                  :c, :a, :s, :side, :t, :q, :lp, :sp, :st, cast(:f as jsonb), :reason
                           where not exists (select 1 from prev where status in ('submitted', 'partially_filled'))
                           returning venue_order_id
                       )
                       select (select venue_order_id from ins) as venue_order_id"""
                ),
                {"c": request.client_order_id, "a": request.account, "s": request.symbol, "side": request.side.value,
                 "t": str(request.order_type), "q": request.quantity, "lp": request.limit_price, "sp": request.stop_price,
                 "st": report.status.value, "f": _fills_json(report.fills), "reason": report.reason},
            ).one()  # fmt: skip
        if row.venue_order_id is None:
            raise _duplicate_open(request.client_order_id)
        return dataclasses.replace(report, venue_order_id=VenueOrderId(row.venue_order_id))

    def latest(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        return self.history(client_order_id)[0]

    def count(self, client_order_id: ClientOrderId) -> int:
        return self.history(client_order_id)[1]

    def history(self, client_order_id: ClientOrderId) -> tuple[BrokerReport | None, int]:
        with self._autocommit.connect() as conn:
            row = conn.execute(
                text(
                    """select venue_order_id, symbol, side, status, fills, reason, count(*) over () as orders
                       from paper_venue.orders
                       where client_order_id = :c order by created_at desc, venue_order_id desc limit 1"""
                ),
                {"c": client_order_id},
            ).first()
        if row is None:
            return None, 0
        side = Side(row.side)
        fills = tuple(
            Fill(client_order_id, row.symbol, side, Decimal(f["quantity"]), Decimal(f["price"]), Decimal(f["fee"]),
                 f["fee_currency"], Decimal(f["slippage"]), datetime.fromisoformat(f["ts"]))
            for f in row.fills
        )  # fmt: skip
        report = BrokerReport(
            client_order_id, OrderStatus(row.status), VenueOrderId(row.venue_order_id), fills, row.reason
        )
        return report, int(row.orders)


class PaperBroker:
    """Paper venue adapter; ``kill_switch`` is asked before every submit (e.g. ``lambda: kill_switch_state(conn)``).

    ``lookup`` returns the venue's latest order for a client id (None when the venue never saw it)."""

    name = "paper"
    live = False

    def __init__(
        self,
        *,
        fee_bps: Decimal,
        slippage_bps: Decimal,
        kill_switch: Callable[[], KillSwitchState],
        venue: PaperVenue | None = None,
        spread_bps: Decimal = Decimal(0),
        impact_bps: Decimal = Decimal(0),
        max_participation: Decimal | None = None,
    ) -> None:
        if min(fee_bps, slippage_bps, spread_bps, impact_bps) < 0:
            raise ValueError("fee, slippage, spread and impact bps must not be negative")
        if max_participation is not None and not 0 < max_participation <= 1:
            raise ValueError(f"max_participation must be in (0, 1], got {max_participation}")
        self.fee_bps, self.slippage_bps = fee_bps, slippage_bps
        self.spread_bps, self.impact_bps, self.max_participation = spread_bps, impact_bps, max_participation
        self._kill_switch = kill_switch
        self.venue: PaperVenue = venue if venue is not None else InMemoryVenue()

    def submit(self, request: OrderRequest) -> BrokerReport:
        state = self._kill_switch()
        if state.engaged:
            raise KillSwitchEngagedError(f"paper broker refuses {request.client_order_id}: {state.reason}")
        if request.order_type != OrderType.MARKET:
            raise OrderRejectedError(f"paper broker fills market orders only, got {str(request.order_type)!r}")
        if request.quantity <= 0 or request.reference_price <= 0:
            raise OrderRejectedError(f"invalid quantity/price for {request.client_order_id}")
        quantity = fill_quantity(request, self.max_participation)
        fills: tuple[Fill, ...] = ()
        if quantity > 0:
            fills = (
                paper_fill(request, fee_bps=self.fee_bps, slippage_bps=self.slippage_bps, spread_bps=self.spread_bps,
                           impact_bps=self.impact_bps, quantity=quantity),
            )  # fmt: skip
        complete = quantity == request.quantity
        report = BrokerReport(
            client_order_id=request.client_order_id,
            status=OrderStatus.FILLED if complete else OrderStatus.EXPIRED,
            venue_order_id=None,  # the venue assigns it
            fills=fills,
            reason="" if complete else f"filled {quantity} of {request.quantity} (participation cap); rest expired",
        )
        return self.venue.place(request, report)

    @property
    def venue_outlives_caller(self) -> bool:
        """Whether its venue's book outlives a failed submitting transaction (``execution.orders.journal``)."""
        return self.venue.outlives_caller

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        return self.venue.latest(client_order_id)

    def cancel(self, client_order_id: ClientOrderId, symbol: Symbol) -> BrokerReport | None:
        """Paper market orders never rest open, so there is nothing to cancel: the current report."""
        return self.venue.latest(client_order_id)

    def open_orders(self, symbol: Symbol | None = None) -> list[BrokerReport]:
        return []
