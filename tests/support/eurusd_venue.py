"""A ccxt venue listing EUR/USD, so that a ccxt order book and OANDA's quote price the same symbol in routing tests:
Binance's recorded ``exchangeInfo`` with one more spot market (EURUSD, priced to 5 decimals, whole units), served with
the ``BinanceSpotVenue`` stand-in's order endpoints and book to the real ``CcxtBroker``."""

from __future__ import annotations

import copy
from typing import Any

from alphaloom.venues.ccxt_exchange import make_exchange
from execution.brokers.ccxt_broker import CcxtBroker
from support.binance_broker import OFF
from support.ccxt_replay import BinanceSpotVenue, VenueReplay, mount, recorded


def exchange_info_with_eur_usd() -> dict[str, Any]:
    info = recorded("binance_exchangeInfo.json")
    market = copy.deepcopy(info["symbols"][0])
    market.update(symbol="EURUSD", baseAsset="EUR", quoteAsset="USD")
    for f in market["filters"]:
        if f["filterType"] == "PRICE_FILTER":
            f.update(minPrice="0.00001000", tickSize="0.00001000")
        if f["filterType"] == "LOT_SIZE":
            f.update(minQty="1.00000000", stepSize="1.00000000", maxQty="10000000.00000000")
    info["symbols"].append(market)
    return info


def eur_usd_venue(ask: str = "1.08400", bid: str = "1.08390") -> BinanceSpotVenue:
    """The stand-in: a market order fills at ``ask``; the book shows 50,000 at ``ask`` and at ``bid``."""
    venue = BinanceSpotVenue({"EURUSD": ask}, balances={"USD": "100000"})
    venue.book["EURUSD"] = {"asks": [[ask, "50000"]], "bids": [[bid, "50000"]]}
    return venue


def eur_usd_broker(venue: BinanceSpotVenue) -> tuple[CcxtBroker, VenueReplay]:
    """The real ``CcxtBroker`` (ccxt's binance class) on ``venue``, and the replay recording its requests."""
    exchange = make_exchange(
        "binance",
        {"enableRateLimit": False, "apiKey": "test-key", "secret": "test-secret",
         "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}},
    )  # fmt: skip
    info = exchange_info_with_eur_usd()
    routes = {**venue.routes(), "/api/v3/exchangeInfo": lambda q: (200, info)}
    broker = CcxtBroker(exchange, kill_switch=lambda: OFF, symbols=("EUR/USD",), settle_seconds=0)
    return broker, mount(exchange, routes)
