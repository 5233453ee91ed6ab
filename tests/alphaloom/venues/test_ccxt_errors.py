"""The one ccxt error table (``alphaloom.venues.ccxt_errors``): a venue answer raised as one ccxt exception class
becomes the same AlphaLoom error whether the price ingest or the live broker met it. Both go through ccxt's real
binance class fed recorded responses (``ccxt_replay``, no network)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import ccxt
import pytest
from support.ccxt_replay import BinanceSpotVenue, binance_routes, mount

from alphaloom.domain import ClientOrderId, Side
from alphaloom.errors import (
    AlphaLoomError,
    ConfigError,
    OrderRejectedError,
    UnknownOrderStateError,
    VenueError,
    VenueTemporaryError,
)
from alphaloom.ingest.ccxt_prices import Backoff, CcxtPriceSource
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.venues.ccxt_errors import Call, error_for
from alphaloom.venues.ccxt_exchange import make_exchange
from execution.brokers.base import OrderRequest
from execution.brokers.ccxt_broker import CcxtBroker

T0 = datetime(2026, 1, 1, 1, tzinfo=UTC)
SPOT = {"fetchMarkets": {"types": ["spot"]}}


def _ingest_error(answer: tuple[int, object]) -> AlphaLoomError:
    """What the price ingest raises when binance answers ``answer`` to the markets request."""
    exchange = make_exchange("binance", {"enableRateLimit": False, "options": SPOT})
    mount(exchange, {**binance_routes(), "/api/v3/exchangeInfo": lambda q: answer})
    source = CcxtPriceSource(exchange, backoff=Backoff(attempts=2, sleep=lambda _: None))
    with pytest.raises(AlphaLoomError) as info:
        source.closed_bars("BTC/USDT", "1h", since=T0)
    return info.value


def _broker_error(answer: tuple[int, object]) -> AlphaLoomError:
    """What the live broker raises when binance answers ``answer`` to the markets request of a submit."""
    exchange = make_exchange(
        "binance",
        {"enableRateLimit": False, "apiKey": "test-key", "secret": "test-secret",
         "options": {**SPOT, "fetchCurrencies": False, "fetchMargins": False}},
    )  # fmt: skip
    venue = BinanceSpotVenue({"BTCUSDT": "87500"})
    replay = mount(exchange, {**venue.routes(), "/api/v3/exchangeInfo": lambda q: answer})
    broker = CcxtBroker(exchange, kill_switch=lambda: KillSwitchState(False, "", ""), settle_seconds=0)
    request = OrderRequest(ClientOrderId("al-table"), "acct", "BTC/USDT", Side.BUY, Decimal("0.01"), Decimal(87500), T0)
    with pytest.raises(AlphaLoomError) as info:
        broker.submit(request)
    assert venue.creates(replay) == 0  # the markets could not be read: nothing was sent
    return info.value


@pytest.mark.parametrize(
    ("answer", "vendor", "ours"),
    [
        ((503, "Service Unavailable"), ccxt.ExchangeNotAvailable, VenueTemporaryError),
        ((401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}), ccxt.AuthenticationError,
         VenueError),
    ],
    ids=["network", "exchange"],
)  # fmt: skip
def test_one_ccxt_error_is_the_same_error_in_the_ingest_and_in_the_broker(
    answer: tuple[int, object], vendor: type[ccxt.BaseError], ours: type[AlphaLoomError]
) -> None:
    ingest, broker = _ingest_error(answer), _broker_error(answer)
    assert type(ingest.__cause__) is vendor and type(broker.__cause__) is vendor
    assert type(ingest) is type(broker) is ours
    # and it is the table that said so, in both columns
    assert error_for(ingest.__cause__, Call.INGEST) is error_for(broker.__cause__, Call.READ) is ours
    assert "binance" in str(ingest) and vendor.__name__ in str(ingest) and vendor.__name__ in str(broker)


def test_the_table_keeps_its_documented_differences_between_calls() -> None:
    """Where the columns differ, they differ on purpose: an unknown symbol is the configuration's mistake in the
    ingest, a venue error on a broker's read, a rejection on a send; network trouble on a send leaves the outcome
    unknown (the broker then looks the order up), and a surprise on a send is never taken for a rejection."""
    bad_symbol = ccxt.BadSymbol("binance Invalid symbol.")
    assert [error_for(bad_symbol, c) for c in Call] == [ConfigError, VenueError, OrderRejectedError]
    timeout = ccxt.RequestTimeout("read timed out")
    assert [error_for(timeout, c) for c in Call] == [VenueTemporaryError, VenueTemporaryError, UnknownOrderStateError]
    for refusal in (ccxt.InsufficientFunds("x"), ccxt.InvalidOrder("x"), ccxt.PermissionDenied("x"),
                    ccxt.AccountSuspended("x"), ccxt.BadRequest("x")):  # fmt: skip
        assert [error_for(refusal, c) for c in Call] == [VenueError, VenueError, OrderRejectedError]
    surprise = ccxt.BadResponse("not json")
    assert [error_for(surprise, c) for c in Call] == [VenueError, VenueError, UnknownOrderStateError]
