"""The Alpaca broker through the real alpaca-py ``TradingClient`` against a local stand-in of Alpaca's API
(``support.alpaca_standin``): client order id, fractional and whole shares, market hours, accepted / partially filled /
rejected / timeout after accept / duplicate client id / market closed / insufficient buying power, the status mapping,
cancels and balances."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from support.alpaca_standin import AlpacaStandIn, Outcome, broker_on

from alphaloom.domain import ClientOrderId, OrderStatus, Side
from alphaloom.errors import (
    KillSwitchEngagedError,
    OrderRejectedError,
    UnknownOrderStateError,
    VenueError,
    VenueTemporaryError,
)
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.venues.alpaca_sessions import Session, closed_reason, extended, session_at, session_of
from execution.brokers.alpaca_mapping import fee_charges, limit_price_for, order_quantity, status_from_alpaca
from execution.brokers.base import CancellingBroker, ChargeStart, ChargingBroker, OrderRequest, OrderType

S = OrderStatus
SATURDAY = datetime(2026, 1, 10, 15, tzinfo=UTC)


@pytest.fixture
def standin() -> Iterator[AlpacaStandIn]:
    server = AlpacaStandIn().start()
    yield server
    server.stop()


def request(coid: str, quantity: str, *, symbol: str = "AAPL", side: Side = Side.BUY, at: datetime | None = None,
            order_type: OrderType = OrderType.MARKET, limit: str | None = None) -> OrderRequest:  # fmt: skip
    return OrderRequest(ClientOrderId(coid), "acct", symbol, side, Decimal(quantity), Decimal("187"),
                        at or datetime(2026, 1, 6, 15, tzinfo=UTC), order_type=order_type,
                        limit_price=Decimal(limit) if limit else None)  # fmt: skip


# --- pure mapping ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "filled", "ours"),
    [("new", "0", S.SUBMITTED), ("accepted", "0", S.SUBMITTED), ("pending_new", "0", S.SUBMITTED),
     ("partially_filled", "0.4", S.PARTIALLY_FILLED), ("new", "0.4", S.PARTIALLY_FILLED), ("filled", "1", S.FILLED),
     ("canceled", "0.4", S.CANCELLED), ("expired", "0", S.EXPIRED), ("rejected", "0", S.REJECTED),
     ("done_for_day", "0", S.SUBMITTED)],
)  # fmt: skip
def test_alpaca_statuses_map_onto_our_state_machine(status: str, filled: str, ours: OrderStatus) -> None:
    assert status_from_alpaca(status, Decimal(filled), Decimal(1)) is ours


def test_an_unknown_or_inconsistent_alpaca_status_is_not_guessed() -> None:
    with pytest.raises(UnknownOrderStateError, match="'replaced'"):
        status_from_alpaca("replaced", Decimal(0), Decimal(1))
    with pytest.raises(UnknownOrderStateError, match=r"filled with 0\.5 of 1"):
        status_from_alpaca("filled", Decimal("0.5"), Decimal(1))


def test_quantities_are_fractional_or_whole_shares_rounded_down() -> None:
    assert order_quantity("AAPL", Decimal("1.23456789012"), fractionable=True) == Decimal("1.234567890")
    assert order_quantity("BRK.A", Decimal("1.9"), fractionable=False) == Decimal(1)
    with pytest.raises(OrderRejectedError, match=r"BRK.A: quantity 0.9 rounds to nothing: .*whole shares"):
        order_quantity("BRK.A", Decimal("0.9"), fractionable=False)
    assert limit_price_for(Decimal("187.256"), Side.BUY) == Decimal("187.25")
    assert limit_price_for(Decimal("187.251"), Side.SELL) == Decimal("187.26")
    assert limit_price_for(Decimal("0.123456"), Side.BUY) == Decimal("0.1234")


def test_sessions_come_from_the_calendar_in_new_york_time() -> None:
    from datetime import date, time

    winter = session_of(date(2026, 1, 6), time(9, 30), time(16))
    summer = session_of(date(2026, 7, 6), time(9, 30), time(13))  # an early close
    assert (winter.open.hour, winter.open.minute, winter.close.hour) == (14, 30, 21)
    assert (summer.open.hour, summer.close.hour) == (13, 17)
    sessions: list[Session] = [winter, summer]
    assert session_at(sessions, datetime(2026, 1, 6, 20, 59, tzinfo=UTC)) == winter
    assert session_at(sessions, datetime(2026, 1, 6, 21, tzinfo=UTC)) is None
    assert "next regular session opens 2026-07-06T13:30:00+00:00" in closed_reason("AAPL", winter.close, sessions)
    assert (extended(winter).open.hour, extended(winter).close.hour) == (9, 1)  # 04:00 to 20:00 New York
    assert extended(summer).close.hour == 21  # 17:00 New York after an early close


# --- the broker through alpaca-py --------------------------------------------------------------------------------------


def test_an_order_carries_the_client_id_a_fractional_quantity_and_no_extended_hours(standin: AlpacaStandIn) -> None:
    broker = broker_on(standin)
    assert isinstance(broker, CancellingBroker)
    report = broker.submit(request("al-frac", "1.2345678919"))
    (sent,) = standin.creates()
    assert sent["client_order_id"] == "al-frac"
    assert Decimal(str(sent["qty"])) == Decimal("1.234567891")
    assert (sent["type"], sent["side"], sent["time_in_force"], sent["symbol"]) == ("market", "buy", "day", "AAPL")
    assert sent.get("extended_hours") in (None, False)
    assert report.status is S.FILLED and report.venue_order_id and report.symbol == "AAPL"
    (fill,) = report.fills
    assert (fill.quantity, fill.price, fill.fee, fill.fee_currency) == (
        Decimal("1.234567891"), Decimal("187.25"), Decimal(0), "USD")  # fmt: skip


def test_a_whole_share_asset_is_sent_in_whole_shares_and_a_fraction_of_one_is_refused(standin: AlpacaStandIn) -> None:
    broker = broker_on(standin)
    broker.submit(request("al-whole", "2.7", symbol="BRK.A"))
    assert Decimal(str(standin.creates()[0]["qty"])) == Decimal(2)
    with pytest.raises(OrderRejectedError, match=r"BRK\.A: quantity 0\.5 rounds to nothing"):
        broker.submit(request("al-tiny", "0.5", symbol="BRK.A"))
    with pytest.raises(OrderRejectedError, match="alpaca has no asset 'NOPE'"):
        broker.submit(request("al-nope", "1", symbol="NOPE"))
    assert len(standin.creates()) == 1


def test_a_limit_order_goes_on_the_tick_and_extended_hours_only_when_configured(standin: AlpacaStandIn) -> None:
    standin.script += [Outcome("accept"), Outcome("accept")]
    broker_on(standin).submit(request("al-lim", "1", order_type=OrderType.LIMIT, limit="187.259"))
    broker_on(standin, extended_hours=True).submit(request("al-lim-ext", "1", order_type=OrderType.LIMIT,
                                                           limit="187.259"))  # fmt: skip
    plain, extended = standin.creates()
    assert (plain["type"], Decimal(str(plain["limit_price"])), plain["extended_hours"]) == (
        "limit", Decimal("187.25"), False)  # fmt: skip
    assert extended["extended_hours"] is True


def test_an_accepted_order_is_submitted_and_a_partial_fill_grows_into_a_fill(standin: AlpacaStandIn) -> None:
    broker = broker_on(standin)
    standin.script += [Outcome("accept"), Outcome("partial", fraction=Decimal("0.25"))]
    accepted = broker.submit(request("al-acc", "3"))
    assert accepted.status is S.SUBMITTED and accepted.fills == ()
    partial = broker.submit(request("al-part", "4"))
    assert partial.status is S.PARTIALLY_FILLED and [f.quantity for f in partial.fills] == [Decimal(1)]
    order = standin.by_client_id("al-part")
    assert order is not None
    standin.fill(order, Decimal(3), Decimal("187.50"))
    later = broker_on(standin).lookup(ClientOrderId("al-part"))  # a fresh broker: nothing remembered
    assert later is not None and later.status is S.FILLED
    assert [(f.quantity, f.price) for f in later.fills] == [
        (Decimal(1), Decimal("187.25")),
        (Decimal(3), Decimal("187.50")),
    ]
    # the first fill is the same venue fill as before (same time): booked once, by its place in the sequence
    assert (later.fills[0].quantity, later.fills[0].ts) == (partial.fills[0].quantity, partial.fills[0].ts)


def test_insufficient_buying_power_is_a_rejection_naming_alpacas_reason(standin: AlpacaStandIn) -> None:
    standin.script.append(Outcome("reject"))
    with pytest.raises(OrderRejectedError, match="insufficient buying power"):
        broker_on(standin).submit(request("al-poor", "1000"))
    assert broker_on(standin).lookup(ClientOrderId("al-poor")) is None


def test_a_refused_quantity_is_a_rejection(standin: AlpacaStandIn) -> None:
    standin.script.append(Outcome("reject", status=422, code=42210000, message="qty must be > 0"))
    with pytest.raises(OrderRejectedError, match="HTTP 422 42210000: qty must be > 0"):
        broker_on(standin).submit(request("al-422", "1"))


def test_a_timeout_after_accept_is_found_by_client_id_and_not_sent_again(standin: AlpacaStandIn) -> None:
    standin.script.append(Outcome("drop"))
    slept: list[float] = []
    report = broker_on(standin, settle_seconds=1.5, sleep=slept.append).submit(request("al-drop", "2"))
    assert report.status is S.FILLED and len(report.fills) == 1
    assert len(standin.creates()) == 1 and slept == [1.5]


def test_a_send_that_times_out_after_accept_is_looked_up_not_resent(standin: AlpacaStandIn) -> None:
    """The SDK sets no timeout of its own: ours bounds the send, and the order is then found by client order id."""
    from support.alpaca_standin import standin_credentials, standin_settings

    from alphaloom.ops.kill_switch import KillSwitchState
    from alphaloom.venues.alpaca_client import trading_client
    from execution.brokers.alpaca_broker import AlpacaBroker

    standin.script.append(Outcome("slow"))
    client = trading_client(standin_credentials(), standin_settings(standin, timeout_seconds=0.5))
    broker = AlpacaBroker(client, kill_switch=lambda: KillSwitchState(False, "", ""), settle_seconds=0,
                          clock=lambda: standin.now)  # fmt: skip
    report = broker.submit(request("al-slow", "2"))
    standin.release.set()
    assert report.status is S.FILLED and len(standin.creates()) == 1


def test_a_failure_before_accept_is_sent_again_once_alpaca_confirms_it_never_saw_the_id(standin: AlpacaStandIn) -> None:
    standin.script.append(Outcome("busy"))
    report = broker_on(standin).submit(request("al-busy", "2"))
    assert report.status is S.FILLED and len(standin.creates()) == 2 and len(standin.orders) == 1
    standin.script += [Outcome("busy"), Outcome("busy")]
    with pytest.raises(UnknownOrderStateError, match="failed 2 times"):
        broker_on(standin).submit(request("al-busy-2", "2"))


def test_a_duplicate_client_id_returns_the_existing_order_never_a_rejection(standin: AlpacaStandIn) -> None:
    first = broker_on(standin).submit(request("al-dup", "2"))
    again = broker_on(standin).submit(request("al-dup", "2"))  # a restarted process resends the same id
    assert len(standin.creates()) == 2 and len(standin.orders) == 1
    assert again.status is S.FILLED and again.venue_order_id == first.venue_order_id
    assert again.fills[0].quantity == first.fills[0].quantity


def test_outside_the_session_an_order_is_refused_with_the_reason_or_queued_for_the_open(
    standin: AlpacaStandIn,
) -> None:
    standin.now = SATURDAY
    with pytest.raises(OrderRejectedError, match=r"AAPL: the US stock market is closed at 2026-01-10T15:00:00\+00:00 "
                       r"\(next regular session opens 2026-01-12T14:30:00\+00:00\)"):  # fmt: skip
        broker_on(standin).submit(request("al-sat", "1", at=SATURDAY))
    assert standin.creates() == []
    standin.script.append(Outcome("accept"))
    queued = broker_on(standin, outside_session="queue").submit(request("al-sat-q", "1", at=SATURDAY))
    assert queued.status is S.SUBMITTED and queued.reason == "queued for the open at 2026-01-12T14:30:00+00:00"
    assert standin.creates()[0]["time_in_force"] == "day"


def test_with_extended_hours_a_limit_order_may_go_before_the_open_a_market_order_may_not(
    standin: AlpacaStandIn,
) -> None:
    premarket = datetime(2026, 1, 6, 12, tzinfo=UTC)  # 07:00 in New York
    standin.now = premarket
    standin.script.append(Outcome("accept"))
    broker = broker_on(standin, extended_hours=True)
    report = broker.submit(request("al-pre", "1", at=premarket, order_type=OrderType.LIMIT, limit="187"))
    assert report.status is S.SUBMITTED and standin.creates()[0]["extended_hours"] is True
    with pytest.raises(OrderRejectedError, match="next regular session opens 2026-01-06T14:30:00"):
        broker.submit(request("al-pre-mkt", "1", at=premarket))
    standin.now = datetime(2026, 1, 7, 1, 30, tzinfo=UTC)  # 20:30 in New York: after-hours are over
    with pytest.raises(OrderRejectedError, match="next extended-hours session opens 2026-01-07T09:00:00"):
        broker.submit(request("al-late", "1", order_type=OrderType.LIMIT, limit="187"))


def test_the_kill_switch_and_bad_keys_stop_an_order(standin: AlpacaStandIn) -> None:
    with pytest.raises(KillSwitchEngagedError):
        broker_on(standin, switch=KillSwitchState(True, "operator", "drill")).submit(request("al-ks", "1"))
    assert standin.creates() == []
    from support.alpaca_standin import standin_settings

    from alphaloom.ops.secrets import Credentials
    from alphaloom.venues.alpaca_client import trading_client
    from execution.brokers.alpaca_broker import AlpacaBroker

    wrong = trading_client(Credentials("alpaca", "a", "PKWRONG", "nope"), standin_settings(standin))
    broker = AlpacaBroker(wrong, kill_switch=lambda: KillSwitchState(False, "", ""), clock=lambda: standin.now)
    # the asset read before any send fails: a venue error, as ccxt's load_markets failing is; nothing is sent
    with pytest.raises(VenueError, match=r"HTTP 401 40110000: request is not authorized.*alphaloom keys add alpaca"):
        broker.submit(request("al-keys", "1"))
    assert standin.creates() == []


def test_cancel_and_open_orders_and_balances(standin: AlpacaStandIn) -> None:
    broker = broker_on(standin)
    standin.script += [Outcome("accept"), Outcome("partial")]
    broker.submit(request("al-open", "1"))
    broker.submit(request("al-half", "2"))
    broker.submit(request("al-done", "1"))
    assert sorted(r.client_order_id for r in broker.open_orders()) == ["al-half", "al-open"]
    assert broker.open_orders("MSFT") == []
    cancelled = broker.cancel(ClientOrderId("al-half"), "AAPL")
    assert (
        cancelled is not None
        and cancelled.status is S.CANCELLED
        and cancelled.reason == "filled 1 of 2; rest cancelled at the venue"
    )
    done = broker.cancel(ClientOrderId("al-done"), "AAPL")
    assert done is not None and done.status is S.FILLED
    assert broker.cancel(ClientOrderId("al-never"), "AAPL") is None
    assert broker.current_price("AAPL", Side.BUY) == Decimal("187.28")
    assert broker.current_price("AAPL", Side.SELL) == Decimal("187.23")
    with pytest.raises(VenueTemporaryError, match="MSFT quote has no ask"):
        broker.current_price("MSFT", Side.BUY)
    assert broker.balances() == {"USD": Decimal(100000) - Decimal(2) * Decimal("187.25"), "AAPL": Decimal(2)}


def test_fee_activities_are_usd_charges_and_other_activities_are_not() -> None:
    charges = fee_charges([
        {"id": "a1", "activity_type": "FEE", "date": "2026-01-06", "net_amount": "-0.02", "description": "TAF fee"},
        {"id": "a2", "activity_type": "FILL", "transaction_time": "2026-01-06T15:00:01Z", "qty": "1", "price": "187"},
        {"id": "a3", "activity_type": "FEE", "transaction_time": "2026-01-06T16:00:00Z", "net_amount": "0.01"},
    ])  # fmt: skip
    assert [(c.charge_id, c.kind, c.fee, c.currency, c.at) for c in charges] == [
        ("a1", "regulatory_fee", Decimal("0.02"), "USD", datetime(2026, 1, 6, tzinfo=UTC)),
        ("a3", "regulatory_fee", Decimal("-0.01"), "USD", datetime(2026, 1, 6, 16, tzinfo=UTC)),  # a refund
    ]


def test_the_broker_reads_fee_activities_from_the_day_before_its_start(standin: AlpacaStandIn) -> None:
    broker = broker_on(standin)
    assert isinstance(broker, ChargingBroker)
    standin.charge_fee("AAPL", "0.02", "TAF fee")
    start = ChargeStart(after=None, since=standin.now, first_order_id="o-1")
    assert [(c.fee, c.currency) for c in broker.charges_since(start)] == [(Decimal("0.02"), "USD")]
    assert broker.charges_since(ChargeStart(after=None, since=None, first_order_id=None)) == []
