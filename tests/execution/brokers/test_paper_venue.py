"""The paper venue's placement: the id it assigns (same in SQL as in Python), the sequence per client id and the
refusal of a second open order with the same client id, on the in-memory and the durable venue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from alphaloom.domain import ClientOrderId, OrderStatus, Side, VenueOrderId
from alphaloom.errors import OrderRejectedError
from alphaloom.ops.kill_switch import KillSwitchState
from execution.brokers.base import BrokerReport, OrderRequest
from execution.brokers.paper import InMemoryVenue, PaperBroker, PostgresPaperVenue, venue_order_id

T0 = datetime(2024, 9, 2, 9, tzinfo=UTC)
OFF = KillSwitchState(False, "", "")


@pytest.fixture(params=["memory", "postgres"])
def venue(request, engine: Engine):  # type: ignore[no-untyped-def]
    return InMemoryVenue() if request.param == "memory" else PostgresPaperVenue(engine)


def test_placement_assigns_sequenced_ids_and_refuses_a_second_open_order(venue) -> None:  # type: ignore[no-untyped-def]
    coid = ClientOrderId(f"al-venue-{uuid.uuid4().hex[:12]}")
    order = OrderRequest(coid, "acct", "V/USDT", Side.BUY, Decimal(2), Decimal(100), T0)
    broker = PaperBroker(fee_bps=Decimal(10), slippage_bps=Decimal(5), kill_switch=lambda: OFF, venue=venue)
    first = broker.submit(order)
    again = broker.submit(order)  # a filled order does not block its client id (like Binance): a second venue order
    assert (first.venue_order_id, again.venue_order_id) == (venue_order_id(coid, 0), venue_order_id(coid, 1))
    assert venue.count(coid) == 2 and broker.lookup(coid) == again
    venue.add(order, BrokerReport(coid, OrderStatus.SUBMITTED, VenueOrderId("paper-open")))  # now one is open
    with pytest.raises(OrderRejectedError, match="duplicate open client order id"):
        broker.submit(order)
    assert venue.count(coid) == 3
