"""The one broker port (ARCHITECTURE §2): paper and live adapters implement ``Broker``; execution talks only to it.

A broker translates its vendor's errors into ``alphaloom.errors``: ``VenueTemporaryError`` (retry later),
``OrderRejectedError`` (refused), ``UnknownOrderStateError`` (outcome unknown: reconcile with ``lookup`` before any
resend), ``KillSwitchEngagedError`` (it refused because the kill switch is on).

Optional capabilities, asked with ``isinstance``: ``CancellingBroker`` (cancel, list open orders),
``StopOrderBroker`` (venue-native stop / take-profit orders), ``BalanceBroker`` (balances per currency) and
``QuotingBroker`` (the venue's current price, asked at send time for the price band) and ``LegRoutingBroker`` (a
broker over several venues that replaces each intent by its route legs before anything is sent:
``execution.algos.routing.RoutingBroker``). Every broker says whether it is ``live`` (sends real orders): execution
then requires the account to be armed for live trading first.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol, TypeGuard, runtime_checkable

from alphaloom.domain import (
    AccountId,
    ClientOrderId,
    Fill,
    OrderIntent,
    OrderStatus,
    Side,
    Symbol,
    VenueOrderId,
    require_utc,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection


class OrderType(enum.StrEnum):
    """What kind of order is sent (``audit.orders.order_type``): a decision's market order, a limit order, or a
    venue-held stop-loss that becomes a limit order at its stop (a protective exit)."""

    MARKET = "market"
    LIMIT = "limit"
    STOP_LOSS_LIMIT = "stop_loss_limit"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What is sent to a venue. ``reference_price`` is the price the decision saw (paper fills against it);
    ``submitted_at`` is the event time of the submit (the wall clock live, the simulated clock in a backtest)."""

    client_order_id: ClientOrderId
    account: AccountId
    symbol: Symbol
    side: Side
    quantity: Decimal
    reference_price: Decimal
    submitted_at: datetime
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    # Volume of the last bar known at submit time: the paper venue caps its fill at a share of it.
    bar_volume: Decimal | None = None
    stop_price: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "submitted_at", require_utc(self.submitted_at, "OrderRequest.submitted_at"))


_NO_SYMBOL = Symbol("")


@dataclass(frozen=True, slots=True)
class BrokerReport:
    """The venue's view of one order: its status and every fill so far (cumulative, in venue order)."""

    client_order_id: ClientOrderId
    status: OrderStatus
    venue_order_id: VenueOrderId | None
    fills: tuple[Fill, ...] = ()
    reason: str = ""
    symbol: Symbol = _NO_SYMBOL  # filled in by brokers that list orders (``open_orders``) so a caller can act on them

    @property
    def filled_quantity(self) -> Decimal:
        return sum((f.quantity for f in self.fills), Decimal(0))

    def placed(self, venue_order_id: VenueOrderId) -> BrokerReport:
        """This report with the id its venue gave the order (``dataclasses.replace``, built directly: once per order
        a paper venue places)."""
        return BrokerReport(self.client_order_id, self.status, venue_order_id, self.fills, self.reason, self.symbol)


@runtime_checkable
class Broker(Protocol):
    """``submit`` sends one order and reports what happened; ``lookup`` returns the venue's report for a client order
    id (None when the venue never saw it), used to reconcile a submit whose outcome is unknown."""

    name: str

    @property
    def live(self) -> bool:
        """True when it sends real orders (execution refuses them for an account not armed for live trading)."""
        ...

    def submit(self, request: OrderRequest) -> BrokerReport: ...

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None: ...


@runtime_checkable
class CancellingBroker(Broker, Protocol):
    """A broker that can cancel an order and list the orders still open at the venue."""

    def cancel(self, client_order_id: ClientOrderId, symbol: Symbol) -> BrokerReport | None: ...

    def open_orders(self, symbol: Symbol | None = None) -> list[BrokerReport]: ...


@runtime_checkable
class StopOrderBroker(Broker, Protocol):
    """A venue that holds stop-loss / take-profit orders itself (ccxt ``has['createStopOrder']``)."""

    def supports_stop_orders(self) -> bool: ...


@runtime_checkable
class BalanceBroker(Broker, Protocol):
    """A venue that reports the account's total balance per currency (for start-of-session reconciliation)."""

    def balances(self) -> dict[str, Decimal]: ...


@dataclass(frozen=True, slots=True)
class VenueCharge:
    """A fee the venue booked on the account beside any fill (OANDA's daily financing, Alpaca's regulatory fees):
    ``charge_id`` the venue's own id, ``fee`` what the account paid (negative: received) in ``currency``."""

    charge_id: str
    kind: str  # financing | regulatory_fee
    at: datetime
    fee: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class ChargeStart:
    """Where to read a venue's charges from: after ``after`` (the newest charge booked, the venue's id) when there
    is one, else from our account's first order at the venue (``first_order_id``, the venue's order id, sent at
    ``since``); with neither, the account has traded nothing there yet."""

    after: str | None
    since: datetime | None
    first_order_id: str | None


@runtime_checkable
class ChargingBroker(Broker, Protocol):
    """A venue that books charges beside its fills (``VenueCharge``); reconciliation books each once
    (``execution.accounts.charges``) before it compares balances."""

    def charges_since(self, start: ChargeStart) -> list[VenueCharge]: ...


@runtime_checkable
class QuotingBroker(Broker, Protocol):
    """A venue that quotes its current price at send time: the price an order of ``side`` would meet now (the best
    ask for a buy, the best bid for a sell, else the last trade). Raises ``VenueTemporaryError`` / ``VenueError``
    when it cannot say; execution then sends nothing (a market order is never sent blind)."""

    def current_price(self, symbol: Symbol, side: Side) -> Decimal: ...


def is_quoting(broker: Broker) -> TypeGuard[QuotingBroker]:
    """``isinstance(broker, QuotingBroker)``: the protocol's own check (every member looked up, tens of microseconds
    on Python 3.11, asked for every order sent) only for a broker that has its ``current_price``, without which it is
    never one."""
    return hasattr(broker, "current_price") and isinstance(broker, QuotingBroker)


@dataclass
class RoutedOrders:
    """The orders to send for some intents: route legs in place of their parent intent (an intent not routed stays as
    it is), and per leg its parent's client id, the venue it goes to and the arrival price its plan measured; per
    parent the client ids of all its planned legs (its shape, whatever an earlier run managed to record of it)."""

    intents: list[OrderIntent]
    parents: dict[ClientOrderId, ClientOrderId] = field(default_factory=dict)
    venues: dict[ClientOrderId, str] = field(default_factory=dict)
    arrival: dict[ClientOrderId, Decimal] = field(default_factory=dict)
    siblings: dict[ClientOrderId, list[str]] = field(default_factory=dict)


@runtime_checkable
class LegRoutingBroker(Broker, Protocol):
    """A broker over several venues: ``route`` replaces each intent by its legs, with the plan saved before it returns
    (so a retry sends each leg only to the venue its plan names), and ``submit`` sends each leg to its planned venue.
    Execution records and sends each leg as an order of its own. Called under the accounts' locks."""

    def route(self, conn: Connection, intents: Sequence[OrderIntent], *, run_id: str) -> RoutedOrders: ...


def routes_legs(broker: Broker) -> TypeGuard[LegRoutingBroker]:
    """``isinstance(broker, LegRoutingBroker)``, the protocol's own check only for a broker that has its ``route``
    (``is_quoting``)."""
    return hasattr(broker, "route") and isinstance(broker, LegRoutingBroker)
