"""The one way a ccxt exchange is built, for the price ingest and the live brokers alike.

- ``make_exchange(exchange_id, config)``: ccxt's REST class for ``exchange_id`` with rate limiting on; ``config``
  (credentials, ``options`` such as ``{"fetchMarkets": {"types": ["spot"]}}``, ``enableRateLimit``) is passed to it
  unchanged. An id ccxt does not know is a ``ConfigError`` naming it.
- ``make_pro_exchange(exchange_id, config)``: the same for ccxt.pro's websocket class (live price streams); an id
  ccxt.pro has no websocket support for is a ``ConfigError``.
- ``account_exchange(conn, settings, exchange_id, account)``: the exchange ``account`` trades at, configured with the
  credentials stored for it (``alphaloom.ops.secrets``); None when none are stored. ``make`` builds it (the seam that
  points live brokers at a stand-in venue: still ccxt's real class, another transport).

Building an exchange sends nothing: markets are loaded by the caller on first use (``exchange.load_markets()``), its
errors translated through ``alphaloom.venues.ccxt_errors``. ccxt (half a second to import) is imported when an
exchange is built, not with this module, so paper runs never pay for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from alphaloom.errors import ConfigError
from alphaloom.ops.secrets import load_credentials
from alphaloom.settings import Settings

if TYPE_CHECKING:
    import ccxt

ExchangeMaker = Callable[[str, Mapping[str, object]], "ccxt.Exchange"]


def make_exchange(exchange_id: str, config: Mapping[str, object] | None = None) -> ccxt.Exchange:
    """A ccxt REST exchange by id with rate limiting on; ``ConfigError`` for an id ccxt does not know."""
    import ccxt

    cls = getattr(ccxt, exchange_id, None) if exchange_id in ccxt.exchanges else None
    if cls is None:
        raise ConfigError(f"unknown exchange {exchange_id!r}: ccxt has no such exchange id")
    return cls({"enableRateLimit": True, **(config or {})})


def make_pro_exchange(exchange_id: str, config: Mapping[str, object] | None = None) -> Any:
    """A ccxt.pro (websocket) exchange by id; ``ConfigError`` when ccxt.pro has no such exchange."""
    import ccxt.pro as ccxtpro

    if exchange_id not in ccxtpro.exchanges:
        raise ConfigError(f"unknown exchange {exchange_id!r}: ccxt.pro has no websocket support for it")
    return getattr(ccxtpro, exchange_id)({"enableRateLimit": True, **(config or {})})


def account_exchange(
    conn: Connection, settings: Settings, exchange_id: str, account: str, *, make: ExchangeMaker = make_exchange
) -> ccxt.Exchange | None:
    """``account``'s exchange at ``exchange_id`` with its stored credentials; None when none are stored."""
    credentials = load_credentials(conn, settings, exchange_id, account)
    if credentials is None:
        return None
    return make(exchange_id, credentials.ccxt_config())
