"""ccxt's real binance class over a recorded venue (``support.ccxt_replay``), wrapped in our ``CcxtBroker``: the broker
the execution tests send orders through without a network."""

from __future__ import annotations

from datetime import UTC, datetime

from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.venues.ccxt_exchange import make_exchange
from execution.brokers.ccxt_broker import CcxtBroker
from support.ccxt_replay import BinanceSpotVenue, VenueReplay, mount

T0 = datetime(2026, 1, 1, 1, tzinfo=UTC)
OFF = KillSwitchState(False, "", "")


def binance_broker(
    venue: BinanceSpotVenue, *, switch: KillSwitchState = OFF, symbols: tuple[str, ...] = ("BTC/USDT",)
) -> tuple[CcxtBroker, VenueReplay]:
    exchange = make_exchange(
        "binance",
        {"enableRateLimit": False, "apiKey": "test-key", "secret": "test-secret",
         "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}},
    )  # fmt: skip
    replay = mount(exchange, venue.routes())
    return CcxtBroker(exchange, kill_switch=lambda: switch, symbols=symbols, settle_seconds=0), replay


def creates(replay: VenueReplay) -> list[dict[str, str]]:
    return [q for method, path, q in replay.requests if (method, path) == ("POST", "/api/v3/order")]
