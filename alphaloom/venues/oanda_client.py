"""The one client of OANDA's REST v20 API (``httpx``), for the forex broker and the candle ingest alike.

- ``OandaConfig``: the API's base URL (``PRACTICE_URL`` for a practice account, ``LIVE_URL`` for a live one, or a
  local stand-in), the bearer token and the v20 account id. Built from the stored credentials
  (``config_from_credentials``: ``alphaloom keys add oanda`` stores the token as the key, the account id as the
  secret, the URL as the passphrase); its repr never shows the token.
- ``OandaClient``: one method per endpoint used, each returning the decoded JSON body. Any answer other than 2xx, and
  any transport failure, is an ``OandaApiError`` carrying the HTTP status (None: no answer came back), OANDA's
  ``errorCode`` / reject reason and message; what it means for AlphaLoom is decided by the one table in
  ``alphaloom.venues.oanda_errors``, not here.

Numbers stay the strings OANDA sends (``"1.08412"``, ``"-100"``); callers turn them into ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from alphaloom.domain import require_utc

PRACTICE_URL = "https://api-fxpractice.oanda.com"
LIVE_URL = "https://api-fxtrade.oanda.com"
DEFAULT_TIMEOUT_S = 10.0
USER_AGENT = "AlphaLoom/0.1 (+oanda v20 client)"

Json = dict[str, Any]


@dataclass(frozen=True)
class OandaConfig:
    """Where and as whom to call v20: ``base_url`` (no trailing ``/v3``), ``token`` (hidden from repr), ``account_id``
    (``101-004-1234567-001``)."""

    base_url: str
    token: str = field(repr=False)
    account_id: str


def config_from_credentials(api_key: str, secret: str, password: str | None) -> OandaConfig:
    """The config stored by ``alphaloom keys add oanda``: token, account id, base URL (practice when none)."""
    return OandaConfig((password or PRACTICE_URL).rstrip("/"), api_key, secret)


def instrument_of(symbol: str) -> str:
    """Our symbol as OANDA's instrument: ``EUR/USD`` -> ``EUR_USD`` (an instrument name is passed through)."""
    return symbol.replace("/", "_").upper()


def symbol_of(instrument: str) -> str:
    """OANDA's instrument as our symbol: ``EUR_USD`` -> ``EUR/USD``."""
    return instrument.replace("_", "/")


def oanda_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a v20 API address (None when it is an http(s) address with a host)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"not an http(s) address (the practice API is {PRACTICE_URL}, the live one {LIVE_URL})"
    return None


class OandaApiError(Exception):
    """A v20 call that did not succeed. ``status`` is the HTTP status, or None when no answer came back (timeout,
    connection refused: a POST may still have reached OANDA); ``code`` is OANDA's ``errorCode``, else the reject
    reason of an ``*RejectTransaction``, else ``""``; ``body`` the decoded answer (empty without one)."""

    def __init__(self, what: str, status: int | None, code: str, message: str, body: Json | None = None) -> None:
        self.what, self.status, self.code, self.message = what, status, code, message
        self.body: Json = body or {}
        shown = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"{what}: {shown} {code} {message}".rstrip())


def _reject_reason(body: Mapping[str, Any]) -> str:
    for key, value in body.items():
        if key.endswith("RejectTransaction") and isinstance(value, Mapping):
            return str(value.get("rejectReason") or "")
    return ""


class OandaClient:
    """Calls of one v20 account. ``transport`` replaces httpx's network transport (tests may pass one; the stand-in
    server of the tests is reached over real HTTP instead)."""

    def __init__(self, config: OandaConfig, *, timeout: float = DEFAULT_TIMEOUT_S,
                 transport: httpx.BaseTransport | None = None) -> None:  # fmt: skip
        self.config = config
        self._http = httpx.Client(
            base_url=config.base_url,
            timeout=timeout,
            transport=transport,
            headers={
                "Authorization": f"Bearer {config.token}",
                "Content-Type": "application/json",
                "Accept-Datetime-Format": "RFC3339",
                "User-Agent": USER_AGENT,
            },
        )

    def close(self) -> None:
        """Close the pooled connections (also done when the client is garbage collected)."""
        self._http.close()

    def __del__(self) -> None:  # brokers built per session or per cancel leave no open sockets behind
        with suppress(Exception):
            self._http.close()

    @property
    def _account(self) -> str:
        return f"/v3/accounts/{quote(self.config.account_id, safe='')}"

    def _call(self, what: str, method: str, path: str, *, params: Mapping[str, str] | None = None,
              body: Json | None = None) -> Json:  # fmt: skip
        try:
            response = self._http.request(method, path, params=params, json=body)
        except httpx.HTTPError as exc:  # timeouts, refused connections, broken answers: no answer to read
            raise OandaApiError(what, None, type(exc).__name__, str(exc)) from exc
        try:
            data = response.json() if response.content else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if response.status_code >= 300:
            code = str(data.get("errorCode") or _reject_reason(data) or "")
            message = str(data.get("errorMessage") or response.reason_phrase)
            raise OandaApiError(what, response.status_code, code, message, data)
        return data

    # -- accounts ----------------------------------------------------------------------------------------------------
    def summary(self) -> Json:
        """``GET accounts/{id}/summary``: ``{"account": {"currency", "balance", "NAV", ...}, "lastTransactionID"}``."""
        return self._call("account summary", "GET", f"{self._account}/summary")

    def instruments(self, names: Sequence[str] = ()) -> Json:
        """``GET accounts/{id}/instruments``: each tradeable instrument's ``pipLocation``, ``displayPrecision``,
        ``tradeUnitsPrecision``, ``minimumTradeSize``."""
        params = {"instruments": ",".join(names)} if names else None
        return self._call("instruments", "GET", f"{self._account}/instruments", params=params)

    def open_positions(self) -> Json:
        """``GET accounts/{id}/openPositions``: per instrument, ``long`` and ``short`` units and average prices."""
        return self._call("open positions", "GET", f"{self._account}/openPositions")

    def pricing(self, instruments: Sequence[str]) -> Json:
        """``GET accounts/{id}/pricing``: the current bids and asks of ``instruments``."""
        return self._call("pricing", "GET", f"{self._account}/pricing", params={"instruments": ",".join(instruments)})

    # -- orders ------------------------------------------------------------------------------------------------------
    def create_order(self, order: Json) -> Json:
        """``POST accounts/{id}/orders`` with ``{"order": order}``: the ``orderCreateTransaction`` and, for an order
        that filled or was cancelled at once, its ``orderFillTransaction`` / ``orderCancelTransaction``."""
        return self._call("create order", "POST", f"{self._account}/orders", body={"order": dict(order)})

    def order(self, client_order_id: str) -> Json:
        """``GET accounts/{id}/orders/@{client id}``: the order in any state (pending, filled, cancelled)."""
        return self._call(f"order @{client_order_id}", "GET", f"{self._account}/orders/@{quote(client_order_id)}")

    def cancel_order(self, client_order_id: str) -> Json:
        """``PUT accounts/{id}/orders/@{client id}/cancel``."""
        return self._call(f"cancel @{client_order_id}", "PUT",
                          f"{self._account}/orders/@{quote(client_order_id)}/cancel")  # fmt: skip

    def pending_orders(self) -> Json:
        """``GET accounts/{id}/pendingOrders``."""
        return self._call("pending orders", "GET", f"{self._account}/pendingOrders")

    def transactions_since(self, transaction_id: str) -> Json:
        """``GET accounts/{id}/transactions/sinceid?id=``: every transaction after ``transaction_id`` (fills,
        cancels, daily financing)."""
        return self._call(f"transactions since {transaction_id}", "GET", f"{self._account}/transactions/sinceid",
                          params={"id": transaction_id})  # fmt: skip

    def transactions_between(self, first: str, last: str) -> Json:
        """``GET accounts/{id}/transactions/idrange?from=&to=``: the transactions ``first`` to ``last``, both
        included."""
        return self._call(f"transactions {first}..{last}", "GET", f"{self._account}/transactions/idrange",
                          params={"from": first, "to": last})  # fmt: skip

    # -- prices ------------------------------------------------------------------------------------------------------
    def candles(self, instrument: str, granularity: str, *, start: datetime | None, count: int,
                extra: Mapping[str, str] | None = None) -> Json:  # fmt: skip
        """``GET instruments/{instrument}/candles`` of mid prices (``price=M``), ``count`` from ``start`` (the
        newest ``count`` when None); ``extra``: more query parameters (``dailyAlignment``, ...)."""
        params = {"price": "M", "granularity": granularity, "count": str(count), **(extra or {})}
        if start is not None:
            params["from"] = require_utc(start, "start").strftime("%Y-%m-%dT%H:%M:%S.000000000Z")
        return self._call(f"candles {instrument} {granularity}", "GET", f"/v3/instruments/{quote(instrument)}/candles",
                          params=params)  # fmt: skip
