"""The forex broker: one adapter around OANDA's REST v20 API (``alphaloom.venues.oanda_client``), implementing the
``Broker`` port and its cancelling, balance and quoting capabilities, like the ccxt broker.

What a caller can rely on:

- ``submit`` sends our client order id as the order's ``clientExtensions.id``; units are whole (the instrument's
  units precision from ``accounts/{id}/instruments``), signed by side; a limit price is rounded to the instrument's
  display precision. A market order is fill or kill; a limit order good till cancelled.
- Outside the forex week (Friday 22:00 to Sunday 22:00 UTC, ``alphaloom.ingest.calendars``) an order is refused
  before anything is sent (``OrderRejectedError`` naming the next open), or, with ``outside_session="queue"``
  (``ALPHALOOM_OANDA_OUTSIDE_SESSION``), a market order is sent as the limit order OANDA holds for the open,
  ``queue_band_bps`` beyond the decision's price (``queued_for_open``), reported ``submitted`` with that reason.
  OANDA's own ``MARKET_HALTED`` (a holiday) comes back as a rejection with that reason.
- No answer to a create (timeout, refused connection, HTTP 5xx) is never answered by a blind resend: after
  ``settle_seconds`` the order is looked up by client id (``orders/@id`` finds it in any state); found, its report is
  returned; only when OANDA answers that it has no such order is it sent again (at most ``attempts`` creates). A lookup
  that fails too is ``UnknownOrderStateError``: execution marks the order submitted and reconciliation settles it.
- ``CLIENT_ORDER_ID_ALREADY_EXISTS`` means the order may exist: it is looked up and its report returned, never
  booked as a rejection; not found, ``UnknownOrderStateError``.
- A create that OANDA cancels at once (``INSUFFICIENT_MARGIN``, ``MARKET_HALTED``) is reported ``rejected`` with the
  reason; a refused create (HTTP 4xx with a reject reason) is an ``OrderRejectedError``. Every other failure goes
  through the one table ``alphaloom.venues.oanda_errors``.
- Fills are Decimal, one per ``ORDER_FILL``, fees (commission, financing) in the account's currency, charged to the
  account's cash (the position is OANDA's units exactly); daily financing (swap) is a ``VenueCharge``
  (``charges_since``), booked once each by reconciliation (``execution.accounts.charges``).
- The kill switch is asked before every submit.
- Routing (``execution.algos.routing``) reads OANDA as a quote venue: ``venue_quote`` is the account's price
  (``pricing``: best bid and ask with their liquidity, the time, whether tradeable), ``quote_fees`` its schedule
  (the spread only: no commission).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

import pandas as pd
from sqlalchemy import Connection

from alphaloom.domain import AccountId, ClientOrderId, OrderStatus, Side, Symbol
from alphaloom.errors import (
    KillSwitchEngagedError,
    OrderRejectedError,
    UnknownOrderStateError,
    VenueError,
    VenueTemporaryError,
)
from alphaloom.ingest.calendars import calendar_for
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.ops.secrets import load_credentials
from alphaloom.settings import Settings
from alphaloom.venues.oanda_client import OandaApiError, OandaClient, config_from_credentials, instrument_of
from alphaloom.venues.oanda_errors import Call, is_duplicate_id, is_not_found, is_temporary, translated, venue_error
from execution.algos.quotes import Quote, QuoteFees
from execution.brokers.base import BrokerReport, ChargeStart, OrderRequest, OrderType, VenueCharge
from execution.brokers.oanda_mapping import (
    InstrumentSpec,
    dec,
    facts_from_create,
    facts_from_order,
    financing_charges,
    forex_next_open,
    order_body,
    quote_from_pricing,
    report_of,
    spot_holdings,
)

DEFAULT_SETTLE_SECONDS = 2.0
OANDA = "oanda"  # the venue of an account (``audit.accounts.venue``) and of its stored credentials


def forex_closed_reason(symbol: Symbol, at: datetime) -> str | None:
    """Why an order of ``symbol`` at ``at`` cannot trade (the forex week is closed), or None when it can."""
    if bool(calendar_for("forex").is_open(pd.DatetimeIndex([at]))[0]):
        return None
    return (f"{symbol}: the forex market is closed at {at.astimezone(UTC).isoformat()} (Friday 22:00 to Sunday 22:00 "
            f"UTC); it opens at {forex_next_open(at).isoformat()}")  # fmt: skip


def queued_for_open(request: OrderRequest, band_bps: Decimal) -> tuple[OrderRequest, str]:
    """An order made while the forex week is closed, as the order OANDA holds until the open, and the reason reported
    with it: a market order becomes a limit order ``band_bps`` beyond the decision's price (above for a buy, below for
    a sell), so it fills at the open unless the market opens further away; a limit order stays as it is."""
    opens = forex_next_open(request.submitted_at).isoformat()
    if request.order_type is not OrderType.MARKET:  # a limit order waits for the open as it is
        return request, f"queued for the forex open at {opens}"
    shift = request.reference_price * band_bps / Decimal(10_000)
    limit = request.reference_price + shift if request.side is Side.BUY else request.reference_price - shift
    reason = f"queued for the forex open at {opens} as a limit order at {limit} ({band_bps} bps from {request.reference_price})"
    return dataclasses.replace(request, order_type=OrderType.LIMIT, limit_price=limit), reason


class OandaBroker:
    """``client``: an ``OandaClient`` with the account's token (``alphaloom.ops.secrets`` via the broker factory)."""

    name = "oanda"
    live = True

    def __init__(
        self,
        client: OandaClient,
        *,
        kill_switch: Callable[[], KillSwitchState],
        attempts: int = 2,
        clock: Callable[[], datetime] | None = None,
        account: AccountId | None = None,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        check_market_hours: bool = True,
        outside_session: Literal["refuse", "queue"] = "refuse",
        queue_band_bps: Decimal = Decimal(50),
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        self.client = client
        self.account = account
        self._kill_switch = kill_switch
        self._attempts = attempts
        self._clock = clock or (lambda: datetime.now(UTC))
        self.settle_seconds = settle_seconds
        self.sleep = sleep
        self.check_market_hours = check_market_hours
        self.outside_session = outside_session
        self.queue_band_bps = queue_band_bps
        self._sent: dict[ClientOrderId, OrderRequest] = {}
        self._specs: dict[str, InstrumentSpec] = {}
        self._currency: str | None = None

    # -- metadata ------------------------------------------------------------------------------------------------------
    def instrument(self, symbol: Symbol) -> InstrumentSpec:
        """The instrument's precision and minimum trade size (read once per instrument)."""
        name = instrument_of(symbol)
        if name not in self._specs:
            with translated(Call.READ, f"oanda: instrument {name}"):
                raw = self.client.instruments([name]).get("instruments") or []
            for item in raw:
                spec = InstrumentSpec.from_v20(item)
                self._specs[spec.name] = spec
            if name not in self._specs:
                raise OrderRejectedError(f"oanda has no instrument {name!r} for this account")
        return self._specs[name]

    def currency(self) -> str:
        """The account's home currency (fees and balances are in it)."""
        if self._currency is None:
            with translated(Call.READ, "oanda: account summary"):
                self._currency = str(self.client.summary()["account"]["currency"])
        return self._currency

    # -- Broker --------------------------------------------------------------------------------------------------------
    def submit(self, request: OrderRequest) -> BrokerReport:
        state = self._kill_switch()
        if state.engaged:
            raise KillSwitchEngagedError(f"oanda broker refuses {request.client_order_id}: {state.reason}")
        queued = ""
        if self.check_market_hours and (closed := forex_closed_reason(request.symbol, request.submitted_at)):
            if self.outside_session != "queue":
                raise OrderRejectedError(closed)
            request, queued = queued_for_open(request, self.queue_band_bps)
        body = order_body(request, self.instrument(request.symbol))
        currency = self.currency()
        coid = request.client_order_id
        self._sent[coid] = request
        last: OandaApiError | None = None
        for _ in range(self._attempts):
            try:
                answer = self.client.create_order(body)
            except OandaApiError as exc:
                if is_duplicate_id(exc):
                    return self._after_duplicate(coid, exc)
                if not is_temporary(exc):
                    raise venue_error(exc, Call.SEND, f"oanda: create of {coid}") from exc
                last = exc
                self.sleep(self.settle_seconds)  # a just-accepted order can take a moment to be listed
                found = self._lookup_after_failure(coid, exc)
                if found is not None:
                    return found
                continue  # OANDA confirmed it has no such order: sending again cannot double it
            report = report_of(facts_from_create(answer), coid, currency=currency,
                               reference_price=request.reference_price, default_ts=self._clock())  # fmt: skip
            if queued and report.status is OrderStatus.SUBMITTED:
                return dataclasses.replace(report, reason=queued)
            return report
        raise UnknownOrderStateError(
            f"oanda: create of {coid} failed {self._attempts} times ({last}); reconcile before resending"
        ) from last

    def _after_duplicate(self, coid: ClientOrderId, exc: OandaApiError) -> BrokerReport:
        report = self._lookup_after_failure(coid, exc)
        if report is None:
            raise UnknownOrderStateError(f"oanda: {coid} is refused as a duplicate client id but cannot be found")
        return report

    def _lookup_after_failure(self, coid: ClientOrderId, cause: OandaApiError) -> BrokerReport | None:
        try:
            return self.lookup(coid)
        except VenueError as lookup_error:
            raise UnknownOrderStateError(
                f"oanda: create of {coid} failed ({cause}) and the lookup failed too ({lookup_error}); reconcile "
                f"before resending"
            ) from cause

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        """OANDA's report of ``client_order_id`` (any state), None when OANDA never saw it."""
        with translated(Call.READ, f"oanda: lookup of {client_order_id}"):
            try:
                order = self.client.order(client_order_id)["order"]
            except OandaApiError as exc:
                if is_not_found(exc):
                    return None
                raise
            transactions = self._order_transactions(order)
        sent = self._sent.get(client_order_id)
        return report_of(facts_from_order(order, transactions), client_order_id, currency=self.currency(),
                         reference_price=sent.reference_price if sent else None,
                         default_ts=self._clock())  # fmt: skip

    def _order_transactions(self, order: dict[str, object]) -> list[dict[str, object]]:
        """The account's transactions from the order's creation: up to its last fill or cancel when it is final (a
        bounded range), else everything since (a pending order may still fill)."""
        first = str(order["id"])
        ends = [int(str(order[k])) for k in ("fillingTransactionID", "cancellingTransactionID") if order.get(k)]
        if order.get("state") != "PENDING" and ends:
            answer = self.client.transactions_between(first, str(max(ends)))
        else:
            answer = self.client.transactions_since(str(int(first) - 1))
        return list(answer.get("transactions") or [])

    def financing_since(self, transaction_id: str) -> list[VenueCharge]:
        """The daily financing (swap) OANDA booked on open positions after ``transaction_id``, in the account's
        currency: what the account paid or received beside its fills (``DAILY_FINANCING`` transactions)."""
        with translated(Call.READ, f"oanda: financing since {transaction_id}"):
            transactions = self.client.transactions_since(transaction_id).get("transactions") or []
        return financing_charges(transactions, self.currency(), default_ts=self._clock())

    def charges_since(self, start: ChargeStart) -> list[VenueCharge]:
        """``ChargingBroker``: the daily financing after the newest booked (a transaction id), else since our first
        order (its create transaction; financing before it was on positions that were not ours to book)."""
        if start.after is not None:
            return self.financing_since(start.after)
        if start.first_order_id is None:
            return []
        return self.financing_since(str(int(start.first_order_id) - 1))

    # -- CancellingBroker ----------------------------------------------------------------------------------------------
    def cancel(self, client_order_id: ClientOrderId, symbol: Symbol) -> BrokerReport | None:
        """Cancel a pending order; an order no longer pending (filled, cancelled, never seen) is reported as it is."""
        with translated(Call.READ, f"oanda: cancel of {client_order_id}"):
            try:
                self.client.cancel_order(client_order_id)
            except OandaApiError as exc:
                if not is_not_found(exc):
                    raise
        return self.lookup(client_order_id)

    def open_orders(self, symbol: Symbol | None = None) -> list[BrokerReport]:
        """OANDA's pending orders (of ``symbol``'s instrument, else all)."""
        with translated(Call.READ, "oanda: pending orders"):
            orders = self.client.pending_orders().get("orders") or []
        wanted = instrument_of(symbol) if symbol else None
        reports = []
        for order in orders:
            if wanted is not None and order.get("instrument") != wanted:
                continue
            coid = ClientOrderId(str((order.get("clientExtensions") or {}).get("id") or ""))
            reports.append(report_of(facts_from_order(order, []), coid, currency=self.currency(),
                                     reference_price=None, default_ts=self._clock()))  # fmt: skip
        return reports

    # -- BalanceBroker, QuotingBroker --------------------------------------------------------------------------------
    def balances(self) -> dict[str, Decimal]:
        """The account as spot-like holdings (``oanda_mapping.spot_holdings``): balance in the home currency, open
        positions as units of their base currency and their cost in their quote currency."""
        with translated(Call.READ, "oanda: balances"):
            account = self.client.summary()["account"]
            positions = self.client.open_positions().get("positions") or []
        self._currency = str(account["currency"])
        return spot_holdings(dec(account.get("balance")), self._currency, positions)

    def current_price(self, symbol: Symbol, side: Side) -> Decimal:
        """The ask for a buy, the bid for a sell (``pricing``); none quoted is a ``VenueTemporaryError``."""
        name = instrument_of(symbol)
        with translated(Call.READ, f"oanda: pricing of {name}"):
            prices = self.client.pricing([name]).get("prices") or []
        for price in prices:
            levels = price.get("asks" if side is Side.BUY else "bids") or []
            if levels and price.get("instrument") == name:
                with suppress(KeyError):
                    return dec(levels[0]["price"])
        raise VenueTemporaryError(f"oanda: no {name} price quoted")

    # -- routing's QuoteVenueBroker -----------------------------------------------------------------------------
    def venue_quote(self, symbol: Symbol) -> Quote:
        """The account's current price of ``symbol`` (``pricing``); none listed has neither side nor time."""
        name = instrument_of(symbol)
        with translated(Call.READ, f"oanda: pricing of {name}"):
            prices = self.client.pricing([name]).get("prices") or []
        for price in prices:
            if price.get("instrument") == name:
                return quote_from_pricing(self.name, symbol, price)
        return Quote(self.name, symbol, None, None, None, name.partition("_")[2])

    def quote_fees(self, symbol: Symbol) -> QuoteFees:
        """OANDA charges its spread, no commission: nothing beside the quoted price."""
        return QuoteFees()


def oanda_client_for(conn: Connection, settings: Settings, account: AccountId) -> OandaClient | None:
    """A v20 client with ``account``'s stored OANDA credentials (``alphaloom keys add oanda``); None when none are
    stored."""
    credentials = load_credentials(conn, settings, OANDA, account)
    if credentials is None:
        return None
    return OandaClient(config_from_credentials(credentials.api_key, credentials.secret, credentials.password))
