"""The copies execution makes of an order once per order sent (``NewOrder.journaled``, ``BrokerReport.placed``)
equal what ``dataclasses.replace`` built, every field carried: the field lists are pinned, so a field added to either
class fails here until its copy carries it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

from alphaloom.domain import (
    AccountId,
    ClientOrderId,
    DecisionId,
    Fill,
    OrderIntent,
    OrderStatus,
    Side,
    Symbol,
    VenueOrderId,
)
from execution.brokers.base import BrokerReport, OrderType
from execution.orders.store import GuardRow, NewOrder

_AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_journaled_equals_the_order_dataclasses_replace_built() -> None:
    assert [f.name for f in dataclasses.fields(NewOrder)] == [
        "intent", "venue", "parent", "arrival_price", "guard", "order_type", "limit_price", "journal",
    ]  # fmt: skip
    intent = OrderIntent(DecisionId("d1"), AccountId("a"), Symbol("BTC/USDT"), Side.BUY, Decimal("0.25"),
                         Decimal("60000"), leg=1, protective=True)  # fmt: skip
    order = NewOrder(intent, "paper", ClientOrderId("al-parent"), Decimal("59990"),
                     GuardRow("execution_guard", True, "hard limits hold", {"n": "1"}), OrderType.LIMIT,
                     Decimal("60010"), {"old": "journal"})  # fmt: skip
    details = {"decision_id": "d1", "leg": 1}
    journaled = order.journaled(details)
    assert journaled == dataclasses.replace(order, journal=details)
    assert journaled.journal is details and order.journal == {"old": "journal"}


def test_placed_equals_the_report_dataclasses_replace_built() -> None:
    assert [f.name for f in dataclasses.fields(BrokerReport)] == [
        "client_order_id", "status", "venue_order_id", "fills", "reason", "symbol",
    ]  # fmt: skip
    fill = Fill(ClientOrderId("al-1"), Symbol("BTC/USDT"), Side.SELL, Decimal("0.5"), Decimal("60000"),
                Decimal("30"), "USDT", Decimal("6"), _AT, fee_from_units=False)  # fmt: skip
    report = BrokerReport(ClientOrderId("al-1"), OrderStatus.EXPIRED, None, (fill,), "filled 0.5 of 1",
                          Symbol("BTC/USDT"))  # fmt: skip
    placed = report.placed(VenueOrderId("paper-1"))
    assert placed == dataclasses.replace(report, venue_order_id=VenueOrderId("paper-1"))
    assert report.venue_order_id is None
