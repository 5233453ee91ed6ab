"""TWAP, iceberg, routing by best price after fees, and slippage vs arrival: pure, hand-worked numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from alphaloom.domain import DecisionId, OrderIntent, Side, client_order_id_for
from execution.algos.splitting import BookTop, iceberg, parent_map, route, slippage_bps, twap

D = Decimal
PARENT = OrderIntent(DecisionId("d-split"), "a", "BTC/USDT", Side.BUY, D("1.000001"), D(100))
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_twap_slices_sum_to_the_parent_and_are_scheduled() -> None:
    plan = twap(PARENT, slices=3, start=T0, interval=timedelta(minutes=10), step=D("0.000001"))
    assert [q.quantity for _, q in plan] == [D("0.333333"), D("0.333333"), D("0.333335")]
    assert [t for t, _ in plan] == [T0, T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)]
    assert [c.leg for _, c in plan] == [1, 2, 3]
    links = parent_map(PARENT, [c for _, c in plan])
    assert set(links.values()) == {client_order_id_for(PARENT.decision_id, 0)} and len(links) == 3


def test_iceberg_shows_at_most_the_visible_size() -> None:
    assert [c.quantity for c in iceberg(PARENT, visible=D("0.4"))] == [D("0.4"), D("0.4"), D("0.200001")]


def test_route_takes_the_best_price_after_fees_first_then_depth() -> None:
    tops = [BookTop("a", D(100), D(1), D(20)), BookTop("b", D("100.1"), D(2), D(0))]
    # after fees a buy pays 100.2 at a, 100.1 at b: b first (its 2), the rest to a
    assert route(D(2.5), Side.BUY, tops) == [("b", D(2)), ("a", D("0.5"))]
    assert route(D(5), Side.BUY, tops) == [("b", D(4)), ("a", D(1))]  # overflow to the best venue
    assert route(D(1), Side.SELL, tops) == [("b", D(1))]  # a sell receives 99.8 at a, 100.1 at b
    assert slippage_bps(D("100.05"), D(100), Side.BUY) == D(5)
    assert slippage_bps(D("99.9"), D(100), Side.SELL) == D(10)
