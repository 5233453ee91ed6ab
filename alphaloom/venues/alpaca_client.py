"""The one way Alpaca's SDK clients (alpaca-py) are built, for the broker and the price and news ingest alike.

- ``trading_client(credentials, settings)``: ``TradingClient`` on the paper endpoint (``ALPHALOOM_ALPACA_PAPER``, the
  default) or the live one, or on ``ALPHALOOM_ALPACA_TRADING_URL`` when set (a proxy, or a local stand-in in tests);
- ``stock_data_client`` / ``news_client``: the historical bars and news clients, on ``ALPHALOOM_ALPACA_DATA_URL``
  when set;
- ``alpaca_credentials(conn, settings, account)``: the keys stored with ``alphaloom keys add alpaca`` (encrypted,
  ``alphaloom.ops.secrets``); None when none are stored.

Every client's HTTP session gets a timeout (``ALPHALOOM_ALPACA_TIMEOUT_SECONDS``): alpaca-py sets none, and a request
that never returns would hold a send forever; a timed-out send is an unknown outcome, looked up by client order id.
Building a client sends nothing. alpaca-py is imported when a client is built, not with this module.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection

from alphaloom.ops.secrets import Credentials, load_credentials
from alphaloom.settings import AlpacaSettings, Settings

if TYPE_CHECKING:
    from alpaca.data.historical import NewsClient, StockHistoricalDataClient
    from alpaca.trading.client import TradingClient

VENUE = "alpaca"
Client = TypeVar("Client")


def with_timeout(client: Client, seconds: float) -> Client:
    """``client`` with every request of its session bounded by ``seconds`` (connect and read), unless a call sets its
    own."""
    session: Any = client._session  # type: ignore[attr-defined]  # alpaca-py's RESTClient keeps one requests.Session
    session.request = partial(_bounded, session.request, seconds)
    return client


def _bounded(request: Any, seconds: float, method: str, url: str, **options: Any) -> Any:
    options.setdefault("timeout", seconds)
    return request(method, url, **options)


def alpaca_credentials(conn: Connection, settings: Settings, account: str) -> Credentials | None:
    """``account``'s Alpaca keys; None when none are stored."""
    return load_credentials(conn, settings, VENUE, account)


def trading_client(credentials: Credentials, settings: AlpacaSettings) -> TradingClient:
    """The trading client of ``credentials`` on the configured endpoint (paper unless ``paper`` is false)."""
    from alpaca.trading.client import TradingClient

    client = TradingClient(credentials.api_key, credentials.secret, paper=settings.paper,
                           url_override=settings.trading_url)  # fmt: skip
    return with_timeout(client, settings.timeout_seconds)


def stock_data_client(credentials: Credentials, settings: AlpacaSettings) -> StockHistoricalDataClient:
    """The historical stock bars client of ``credentials``."""
    from alpaca.data.historical import StockHistoricalDataClient

    client = StockHistoricalDataClient(credentials.api_key, credentials.secret, url_override=settings.data_url)
    return with_timeout(client, settings.timeout_seconds)


def news_client(credentials: Credentials, settings: AlpacaSettings) -> NewsClient:
    """The news client of ``credentials``."""
    from alpaca.data.historical import NewsClient

    return with_timeout(
        NewsClient(credentials.api_key, credentials.secret, url_override=settings.data_url), settings.timeout_seconds
    )
