"""The paper broker: an adapter with the same interface as a live one (not an if-branch in execution).

Market orders fill fully and at once at the reference price moved against the trader by ``slippage_bps`` (a buy pays
up, a sell receives less); the fee is ``fee_bps`` of the fill notional, in the symbol's quote currency. All Decimal.
It checks the kill switch itself and refuses (``KillSwitchEngagedError``) while it is engaged.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from alphaloom.domain import ClientOrderId, Fill, OrderStatus, Side, VenueOrderId, stable_hash
from alphaloom.errors import KillSwitchEngagedError, OrderRejectedError
from alphaloom.guards import KillSwitchState
from execution.brokers.base import BrokerReport, OrderRequest

BPS = Decimal(10000)


def quote_currency(symbol: str) -> str:
    """``BTC/USDT`` -> ``USDT``."""
    return symbol.split("/", 1)[1] if "/" in symbol else symbol


def paper_fill(request: OrderRequest, *, fee_bps: Decimal, slippage_bps: Decimal) -> Fill:
    """The one fill of a paper market order. ``slippage`` is its cost in quote currency versus the reference price."""
    direction = 1 if request.side is Side.BUY else -1
    price = request.reference_price * (1 + direction * slippage_bps / BPS)
    notional = price * request.quantity
    return Fill(
        client_order_id=request.client_order_id,
        symbol=request.symbol,
        side=request.side,
        quantity=request.quantity,
        price=price,
        fee=notional * fee_bps / BPS,
        fee_currency=quote_currency(request.symbol),
        slippage=abs(price - request.reference_price) * request.quantity,
        ts=request.submitted_at,
    )


class PaperBroker:
    """In-memory paper venue; ``kill_switch`` is asked before every submit (e.g. ``lambda: kill_switch_state(conn)``).

    ``lookup`` knows the orders this instance has seen; the audit tables are the durable record."""

    name = "paper"

    def __init__(
        self,
        *,
        fee_bps: Decimal,
        slippage_bps: Decimal,
        kill_switch: Callable[[], KillSwitchState],
    ) -> None:
        if fee_bps < 0 or slippage_bps < 0:
            raise ValueError("fee_bps and slippage_bps must not be negative")
        self.fee_bps = fee_bps
        self.slippage_bps = slippage_bps
        self._kill_switch = kill_switch
        self._reports: dict[ClientOrderId, BrokerReport] = {}

    def submit(self, request: OrderRequest) -> BrokerReport:
        state = self._kill_switch()
        if state.engaged:
            raise KillSwitchEngagedError(f"paper broker refuses {request.client_order_id}: {state.reason}")
        if request.order_type != "market":
            raise OrderRejectedError(f"paper broker fills market orders only, got {request.order_type!r}")
        if request.quantity <= 0 or request.reference_price <= 0:
            raise OrderRejectedError(f"invalid quantity/price for {request.client_order_id}")
        previous = self._reports.get(request.client_order_id)
        if previous is not None:  # a venue dedupes on client order id
            return previous
        report = BrokerReport(
            client_order_id=request.client_order_id,
            status=OrderStatus.FILLED,
            venue_order_id=VenueOrderId(f"paper-{stable_hash(request.client_order_id, length=16)}"),
            fills=(paper_fill(request, fee_bps=self.fee_bps, slippage_bps=self.slippage_bps),),
        )
        self._reports[request.client_order_id] = report
        return report

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        return self._reports.get(client_order_id)
