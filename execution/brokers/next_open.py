"""The backtest venue for next-open fills: a market order submitted at time t fills at the open of the bar that
opens at t (the bar after the one whose close the decision saw), with the paper broker's fees and slippage.

- The fill price is the paper broker's fill against that open (``reference_price`` replaced by the open), so fees,
  slippage, spread and impact are exactly the paper broker's; the fill's time is the bar's open time.
- An order with no such bar before ``fill_until`` (the replay's last decision time: what comes after is outside the
  replay) or no bar at all at t (a market that is closed) ends ``expired`` with no fill, recorded at the venue.
- ``bar_open(symbol, t)`` is the open price of the bar opening at ``t``, or None; the flow supplies it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from alphaloom.domain import ClientOrderId, OrderStatus, VenueOrderId, require_utc, stable_hash
from execution.brokers.base import BrokerReport, OrderRequest
from execution.brokers.paper import PaperBroker


class NextOpenPaperBroker:
    """A ``Broker`` that fills at the next bar's open through ``paper`` (see the module docstring)."""

    name = "paper"
    live = False

    def __init__(
        self,
        paper: PaperBroker,
        *,
        bar_open: Callable[[str, datetime], Decimal | None],
        fill_until: datetime,
    ) -> None:
        self.paper = paper
        self.bar_open = bar_open
        self.fill_until = require_utc(fill_until, "fill_until")

    def submit(self, request: OrderRequest) -> BrokerReport:
        at = request.submitted_at
        price = self.bar_open(request.symbol, at) if at < self.fill_until else None
        if price is None:
            why = (
                f"no bar opens at {at.isoformat()} before the replay ends at {self.fill_until.isoformat()}"
                if at >= self.fill_until
                else f"no {request.symbol} bar opens at {at.isoformat()}"
            )
            sequence = self.paper.venue.count(request.client_order_id)
            report = BrokerReport(
                client_order_id=request.client_order_id,
                status=OrderStatus.EXPIRED,
                venue_order_id=VenueOrderId(f"paper-{stable_hash(request.client_order_id, sequence, length=16)}"),
                reason=f"expired unfilled: {why}",
            )
            self.paper.venue.add(request, report)
            return report
        return self.paper.submit(dataclasses.replace(request, reference_price=price))

    @property
    def venue_outlives_caller(self) -> bool:
        return self.paper.venue_outlives_caller

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        return self.paper.lookup(client_order_id)
