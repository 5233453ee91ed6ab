"""The OANDA forex broker driving the real v20 client against a local stand-in of the API (127.0.0.1): accepted,
partially filled, rejected, cancelled at once (insufficient margin, market halted), timeouts and lost answers after
and before the venue accepted, duplicate client ids, closed weekends, cancels, balances and the error table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from support.oanda_standin import ACCOUNT_ID, TOKEN, OandaStandIn

from alphaloom.domain import ClientOrderId, OrderStatus, Side
from alphaloom.errors import (
    ConfigError,
    KillSwitchEngagedError,
    OrderRejectedError,
    UnknownOrderStateError,
    VenueError,
    VenueTemporaryError,
)
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.venues.oanda_client import OandaApiError, OandaClient, OandaConfig
from alphaloom.venues.oanda_errors import Call, venue_error
from execution.brokers.base import BalanceBroker, CancellingBroker, OrderRequest, OrderType, QuotingBroker
from execution.brokers.oanda_broker import OandaBroker, forex_closed_reason
from execution.brokers.oanda_mapping import InstrumentSpec, forex_next_open, order_body, units_for

T0 = datetime(2024, 5, 1, 9, tzinfo=UTC)  # a Wednesday: the forex week is open
SATURDAY = datetime(2024, 5, 4, 12, tzinfo=UTC)
OFF = KillSwitchState(False, "", "")
EUR_USD = InstrumentSpec("EUR_USD", -4, 5, 0, Decimal(1))


_CLIENTS: list[OandaClient] = []


@pytest.fixture
def venue() -> Iterator[OandaStandIn]:
    standin = OandaStandIn().start()
    yield standin
    while _CLIENTS:
        _CLIENTS.pop().close()
    standin.stop()


def broker_for(venue: OandaStandIn, *, timeout: float = 10.0, token: str = TOKEN, **kwargs: object) -> OandaBroker:
    client = OandaClient(OandaConfig(venue.url, token, ACCOUNT_ID), timeout=timeout)
    _CLIENTS.append(client)
    return OandaBroker(client, kill_switch=kwargs.pop("kill_switch", lambda: OFF), settle_seconds=0,  # type: ignore[arg-type]
                       sleep=lambda s: None, **kwargs)  # type: ignore[arg-type]  # fmt: skip


def request(coid: str, quantity: str = "1000", side: Side = Side.BUY, *, at: datetime = T0,
            order_type: OrderType = OrderType.MARKET, limit: str | None = None) -> OrderRequest:  # fmt: skip
    return OrderRequest(ClientOrderId(coid), "fx", "EUR/USD", side, Decimal(quantity), Decimal("1.0840"), at,
                        order_type=order_type, limit_price=Decimal(limit) if limit else None)  # fmt: skip


def test_the_broker_has_the_capabilities_of_the_ccxt_broker(venue: OandaStandIn) -> None:
    broker = broker_for(venue)
    assert isinstance(broker, CancellingBroker) and isinstance(broker, BalanceBroker)
    assert isinstance(broker, QuotingBroker) and broker.live


def test_units_are_whole_signed_and_at_least_the_minimum_trade_size() -> None:
    assert units_for(Decimal("1000.7"), Side.BUY, EUR_USD) == "1000"
    assert units_for(Decimal("250"), Side.SELL, EUR_USD) == "-250"
    with pytest.raises(OrderRejectedError, match=r"EUR_USD: 0\.4 units is below the minimum trade size 1"):
        units_for(Decimal("0.4"), Side.BUY, EUR_USD)
    body = order_body(request("c-limit", order_type=OrderType.LIMIT, limit="1.0812345"), EUR_USD)
    assert body == {"type": "LIMIT", "timeInForce": "GTC", "price": "1.08123", "instrument": "EUR_USD",
                    "units": "1000", "positionFill": "DEFAULT", "clientExtensions": {"id": "c-limit"}}  # fmt: skip


def test_an_accepted_market_order_fills_with_its_client_id_and_fees_in_the_account_currency(
    venue: OandaStandIn,
) -> None:
    venue.financing, venue.commission = "-0.0123", "0.0100"
    report = broker_for(venue).submit(request("c-accepted", "1000.9"))
    assert report.status is OrderStatus.FILLED and report.venue_order_id is not None
    [fill] = report.fills
    assert (fill.quantity, fill.price, fill.side, fill.symbol) == (Decimal(1000), Decimal("1.08420"), Side.BUY,
                                                                   "EUR/USD")  # fmt: skip
    assert (fill.fee, fill.fee_currency) == (Decimal("0.0223"), "USD")  # commission plus financing paid
    [(_, _, body)] = [r for r in venue.requests if r[0] == "POST"]
    assert body["order"]["clientExtensions"] == {"id": "c-accepted"} and body["order"]["units"] == "1000"
    assert body["order"]["type"] == "MARKET" and body["order"]["timeInForce"] == "FOK"


def test_a_partial_fill_is_booked_and_the_rest_expires_with_the_reason(venue: OandaStandIn) -> None:
    venue.behaviour["c-partial"] = "partial"
    report = broker_for(venue).submit(request("c-partial", "1000", Side.SELL))
    assert report.status is OrderStatus.EXPIRED and report.filled_quantity == Decimal(500)
    assert "INSUFFICIENT_LIQUIDITY" in report.reason and report.fills[0].price == Decimal("1.08410")
    again = broker_for(venue).lookup(ClientOrderId("c-partial"))  # a fresh broker sees the same
    assert again is not None and (again.status, again.filled_quantity) == (OrderStatus.EXPIRED, Decimal(500))


@pytest.mark.parametrize("reason", ["INSUFFICIENT_MARGIN", "MARKET_HALTED"])
def test_an_order_oanda_cancels_at_once_is_rejected_with_its_reason(venue: OandaStandIn, reason: str) -> None:
    venue.behaviour["c-cancelled"] = f"cancel:{reason}"
    report = broker_for(venue).submit(request("c-cancelled"))
    assert report.status is OrderStatus.REJECTED and reason in report.reason and report.fills == ()
    looked = broker_for(venue).lookup(ClientOrderId("c-cancelled"))
    assert looked is not None and looked.status is OrderStatus.REJECTED and reason in looked.reason


def test_a_refused_create_is_a_rejection_naming_the_reason(venue: OandaStandIn) -> None:
    venue.behaviour["c-refused"] = "reject:UNITS_LIMIT_EXCEEDED"
    with pytest.raises(OrderRejectedError, match="UNITS_LIMIT_EXCEEDED"):
        broker_for(venue).submit(request("c-refused"))
    assert venue.count("c-refused") == 0


def test_the_closed_weekend_is_refused_with_the_next_open_and_nothing_is_sent(venue: OandaStandIn) -> None:
    with pytest.raises(OrderRejectedError, match=r"forex market is closed .* opens at 2024-05-05T22:00:00\+00:00"):
        broker_for(venue).submit(request("c-weekend", at=SATURDAY))
    assert venue.requests == []
    assert forex_closed_reason("EUR/USD", T0) is None
    assert forex_next_open(datetime(2024, 5, 3, 23, tzinfo=UTC)) == datetime(2024, 5, 5, 22, tzinfo=UTC)


def test_queued_for_the_open_a_weekend_market_order_waits_as_a_banded_limit_order(venue: OandaStandIn) -> None:
    broker = broker_for(venue, outside_session="queue", queue_band_bps=Decimal(50))
    report = broker.submit(request("c-queued", "1000", Side.SELL, at=SATURDAY))
    assert report.status is OrderStatus.SUBMITTED and report.fills == ()
    assert report.reason.startswith("queued for the forex open at 2024-05-05T22:00:00+00:00 as a limit order")
    [(_, _, body)] = [r for r in venue.requests if r[0] == "POST"]
    assert (body["order"]["type"], body["order"]["price"], body["order"]["units"]) == ("LIMIT", "1.07858", "-1000")
    limit = broker.submit(request("c-queued-limit", order_type=OrderType.LIMIT, limit="1.07", at=SATURDAY))
    assert (
        limit.status is OrderStatus.SUBMITTED
        and limit.reason == "queued for the forex open at 2024-05-05T22:00:00+00:00"
    )
    assert [o["state"] for o in venue.orders.values()] == ["PENDING", "PENDING"]


@pytest.mark.parametrize("fault", ["drop_after_accept", "hang_after_accept"])
def test_a_lost_answer_after_the_venue_accepted_is_looked_up_and_never_resent(venue: OandaStandIn, fault: str) -> None:
    venue.behaviour["c-lost"] = fault
    report = broker_for(venue, timeout=0.5).submit(request("c-lost"))
    venue.release.set()
    assert report.status is OrderStatus.FILLED and report.filled_quantity == Decimal(1000)
    assert venue.creates("c-lost") == 1 and venue.count("c-lost") == 1


def test_a_lost_answer_before_the_venue_saw_it_is_looked_up_then_sent_once_more(venue: OandaStandIn) -> None:
    venue.behaviour["c-early"] = "drop_before_accept"
    report = broker_for(venue).submit(request("c-early"))
    assert report.status is OrderStatus.FILLED and venue.creates("c-early") == 2 and venue.count("c-early") == 1


def test_oanda_unavailable_every_time_is_an_unknown_outcome_never_a_rejection(venue: OandaStandIn) -> None:
    venue.behaviour["c-down"] = "unavailable"
    with pytest.raises(UnknownOrderStateError, match="reconcile before resending"):
        broker_for(venue).submit(request("c-down"))
    assert venue.creates("c-down") == 2 and venue.count("c-down") == 0


def test_a_duplicate_client_id_is_looked_up_and_reported_never_booked_as_a_rejection(venue: OandaStandIn) -> None:
    first = broker_for(venue).submit(request("c-dup"))
    second = broker_for(venue).submit(request("c-dup"))  # a restarted process sends the same id again
    assert first.status is second.status is OrderStatus.FILLED
    assert second.venue_order_id == first.venue_order_id and venue.count("c-dup") == 1
    assert venue.transactions[-1]["rejectReason"] == "CLIENT_ORDER_ID_ALREADY_EXISTS"


def test_a_final_order_is_read_from_a_bounded_range_and_daily_financing_is_a_fee(venue: OandaStandIn) -> None:
    venue.behaviour["c-range"] = "partial"
    broker = broker_for(venue)
    first = broker.submit(request("c-range"))
    venue.charge_financing("-0.4210")  # the rollover: financing paid on the open position
    venue.charge_financing("0.0150")
    looked = broker_for(venue).lookup(ClientOrderId("c-range"))
    assert looked is not None and (looked.status, looked.venue_order_id, looked.reason) == (
        first.status,
        first.venue_order_id,
        first.reason,
    )
    assert [(f.quantity, f.price, f.fee) for f in looked.fills] == [(f.quantity, f.price, f.fee) for f in first.fills]
    assert [r[1].rsplit("/", 1)[-1] for r in venue.requests if "/transactions/" in r[1]] == ["idrange"]
    charges = broker.financing_since(str(first.venue_order_id))
    assert [(c.fee, c.currency) for c in charges] == [(Decimal("0.4210"), "USD"), (Decimal("-0.0150"), "USD")]
    assert charges[0].at == T0


def test_lookup_of_an_order_never_seen_is_none(venue: OandaStandIn) -> None:
    assert broker_for(venue).lookup(ClientOrderId("c-never")) is None


def test_a_pending_limit_order_is_listed_and_cancelled(venue: OandaStandIn) -> None:
    broker = broker_for(venue)
    placed = broker.submit(request("c-limit", order_type=OrderType.LIMIT, limit="1.07"))
    assert placed.status is OrderStatus.SUBMITTED
    [listed] = broker_for(venue).open_orders("EUR/USD")
    assert (listed.client_order_id, listed.symbol, listed.status) == ("c-limit", "EUR/USD", OrderStatus.SUBMITTED)
    assert broker_for(venue).open_orders("USD/JPY") == []
    cancelled = broker_for(venue).cancel(ClientOrderId("c-limit"), "EUR/USD")
    assert cancelled is not None and cancelled.status is OrderStatus.CANCELLED
    assert broker.open_orders() == []
    again = broker.cancel(ClientOrderId("c-limit"), "EUR/USD")  # no longer pending: reported as it is
    assert again is not None and again.status is OrderStatus.CANCELLED


def test_balances_are_the_account_as_spot_holdings_and_prices_are_quoted(venue: OandaStandIn) -> None:
    broker = broker_for(venue)
    broker.submit(request("c-b1", "1000"))
    assert broker.balances() == {"USD": Decimal("100000") - Decimal("1084.2"), "EUR": Decimal(1000)}
    assert broker.current_price("EUR/USD", Side.BUY) == Decimal("1.08420")
    assert broker.current_price("EUR/USD", Side.SELL) == Decimal("1.08410")


def test_the_kill_switch_sends_nothing(venue: OandaStandIn) -> None:
    broker = broker_for(venue, kill_switch=lambda: KillSwitchState(True, "drill", "test"))
    with pytest.raises(KillSwitchEngagedError, match="drill"):
        broker.submit(request("c-ks"))
    assert venue.requests == []


def test_a_wrong_token_is_a_venue_error_naming_the_stored_keys(venue: OandaStandIn) -> None:
    with pytest.raises(VenueError, match=r"HTTP 401.*alphaloom keys add oanda"):
        broker_for(venue, token="wrong").balances()


@pytest.mark.parametrize(
    ("status", "code", "ingest", "read", "send"),
    [
        (None, "ReadTimeout", VenueTemporaryError, VenueTemporaryError, UnknownOrderStateError),
        (503, "", VenueTemporaryError, VenueTemporaryError, UnknownOrderStateError),
        (429, "", VenueTemporaryError, VenueTemporaryError, UnknownOrderStateError),
        (400, "INSTRUMENT_NOT_TRADEABLE", ConfigError, VenueError, OrderRejectedError),
        (401, "", VenueError, VenueError, OrderRejectedError),
        (400, "INSUFFICIENT_MARGIN", VenueError, VenueError, OrderRejectedError),
        (302, "", VenueError, VenueError, UnknownOrderStateError),
    ],
)  # fmt: skip
def test_the_one_table_gives_each_failure_the_meaning_of_the_ccxt_table(
    status: int | None, code: str, ingest: type, read: type, send: type
) -> None:
    exc = OandaApiError("call", status, code, "message")
    assert [type(venue_error(exc, call, "ctx")) for call in (Call.INGEST, Call.READ, Call.SEND)] == [ingest, read, send]
