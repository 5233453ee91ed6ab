"""The one way Alpaca's SDK clients (alpaca-py) are built, for the broker and the price and news ingest alike.

- ``trading_client(credentials, settings)``: ``TradingClient`` on the paper endpoint (``ALPHALOOM_ALPACA_PAPER``, the
  default) or the live one, or on ``ALPHALOOM_ALPACA_TRADING_URL`` when set (a proxy, or a local stand-in in tests);
- ``stock_data_client`` / ``news_client``: the historical bars and news clients, on ``ALPHALOOM_ALPACA_DATA_URL``
  when set;
- ``alpaca_credentials(conn, settings, account)``: the keys stored with ``alphaloom keys add alpaca`` (encrypted,
  ``alphaloom.ops.secrets``); None when none are stored.

Building a client sends nothing. alpaca-py is imported when a client is built, not with this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Connection

from alphaloom.ops.secrets import Credentials, load_credentials
from alphaloom.settings import AlpacaSettings, Settings

if TYPE_CHECKING:
    from alpaca.data.historical import NewsClient, StockHistoricalDataClient
    from alpaca.trading.client import TradingClient

VENUE = "alpaca"


def alpaca_credentials(conn: Connection, settings: Settings, account: str) -> Credentials | None:
    """``account``'s Alpaca keys; None when none are stored."""
    return load_credentials(conn, settings, VENUE, account)


def trading_client(credentials: Credentials, settings: AlpacaSettings) -> TradingClient:
    """The trading client of ``credentials`` on the configured endpoint (paper unless ``paper`` is false)."""
    from alpaca.trading.client import TradingClient

    return TradingClient(credentials.api_key, credentials.secret, paper=settings.paper,
                         url_override=settings.trading_url)  # fmt: skip


def stock_data_client(credentials: Credentials, settings: AlpacaSettings) -> StockHistoricalDataClient:
    """The historical stock bars client of ``credentials``."""
    from alpaca.data.historical import StockHistoricalDataClient

    return StockHistoricalDataClient(credentials.api_key, credentials.secret, url_override=settings.data_url)


def news_client(credentials: Credentials, settings: AlpacaSettings) -> NewsClient:
    """The news client of ``credentials``."""
    from alpaca.data.historical import NewsClient

    return NewsClient(credentials.api_key, credentials.secret, url_override=settings.data_url)
