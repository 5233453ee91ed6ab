"""The live broker: one adapter around a ccxt exchange (binance, kraken, ...), implementing the ``Broker`` port.

What a caller can rely on:

- ``submit`` sends the deterministic client order id as the venue's client id (ccxt ``clientOrderId``; binance sends it
  as ``newClientOrderId``), with the amount (and a limit price) passed through the market's precision
  (``amount_to_precision`` / ``price_to_precision``) and checked against its limits first: below
  ``limits.amount.min`` or ``limits.cost.min`` is an ``OrderRejectedError`` naming symbol, value and minimum, and
  nothing is sent.
- An error whose outcome is unknown (ccxt ``NetworkError``: ``RequestTimeout``, ``ExchangeNotAvailable``...) is
  never answered by a blind resend. After ``settle_seconds`` (a just-filled order can take a moment to become
  visible), the order is looked up by client id; when the venue has it, its report is returned and nothing is sent
  again. It is sent again (at most ``attempts`` creates) only when the venue *confirms* it never saw the id by a
  lookup that also covers closed orders and trades: ``fetch_order`` by client id at a venue whose client-id lookup
  finds closed orders too (``lookup_sees_closed``; binance), else its open and closed orders and our trades since
  the first send (``fetch_open_orders``, ``fetch_closed_orders``, ``fetch_my_trades``): a trade of an order none of
  those lists names means it cannot be confirmed. Whenever absence is not confirmed (a lookup failing, a venue that
  cannot list its history), ``UnknownOrderStateError``: execution marks the order submitted and reconciliation
  settles it later.
- A duplicate-client-id answer (``ccxt.DuplicateOrderId``, or binance's -2010 "Duplicate order sent.", which ccxt
  maps to ``InvalidOrder``) means an order with this id may exist: it is looked up by client id and its report
  returned, never booked as a rejection; not found, it is ``UnknownOrderStateError`` (never a resend).
- Vendor errors are translated through the one ccxt error table (``alphaloom.venues.ccxt_errors``): on a send
  (column ``SEND``) any other refusal (``InvalidOrder``, ``InsufficientFunds``, ``BadSymbol``, ``BadRequest``,
  ``PermissionDenied``, ``AuthenticationError``, ``AccountSuspended``) is ``OrderRejectedError`` and anything else
  ``UnknownOrderStateError``; on a read or cancel (column ``READ``) network trouble is ``VenueTemporaryError`` and any
  other error ``VenueError``.
- ccxt statuses map onto our state machine (``ccxt_mapping.status_from_ccxt``); fills are Decimal, one per venue trade.
- The kill switch is asked before every submit; while it is on nothing is sent (``KillSwitchEngagedError``).

``lookup(client_order_id)`` needs the order's symbol at venues like binance: it uses the symbol of an order this
process sent, else ``symbol_of(client_order_id)`` (e.g. from ``audit.orders``), else tries each of ``symbols``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import ccxt

from alphaloom.domain import AccountId, ClientOrderId, OrderStatus, Side, Symbol, VenueOrderId
from alphaloom.errors import (
    ConfigError,
    KillSwitchEngagedError,
    OrderRejectedError,
    UnknownOrderStateError,
    VenueError,
    VenueTemporaryError,
)
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.venues.ccxt_errors import TEMPORARY, Call, is_duplicate_id, translated, venue_error
from execution.brokers.base import BrokerReport, OrderRequest, OrderType
from execution.brokers.ccxt_mapping import check_market_limits, dec, fills_from_trades, status_from_ccxt

# Venues whose fetch_order by client id also finds filled and cancelled orders (binance: GET /api/v3/order with
# origClientOrderId). Elsewhere a client-id lookup may see open orders only, so absence is confirmed from history.
CLIENT_ID_LOOKUP_SEES_CLOSED = frozenset({"binance", "binanceus"})
# How far before our first send the history is read, for clock skew between us and the venue.
HISTORY_MARGIN = timedelta(minutes=5)
DEFAULT_SETTLE_SECONDS = 2.0


class CcxtBroker:
    """``exchange``: a ccxt exchange with credentials (``alphaloom.ops.secrets.Credentials.ccxt_config``)."""

    live = True

    def __init__(
        self,
        exchange: ccxt.Exchange,
        *,
        kill_switch: Callable[[], KillSwitchState],
        symbols: Sequence[Symbol] = (),
        symbol_of: Callable[[ClientOrderId], Symbol | None] | None = None,
        attempts: int = 2,
        clock: Callable[[], datetime] | None = None,
        account: AccountId | None = None,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        lookup_sees_closed: bool | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        self.exchange = exchange
        self.name = str(exchange.id)
        self.account = account  # the one account whose credentials it holds (None: not tied to one)
        self._kill_switch = kill_switch
        self._symbols = tuple(symbols)
        self._symbol_of = symbol_of
        self._attempts = attempts
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sent: dict[ClientOrderId, OrderRequest] = {}
        self.settle_seconds = settle_seconds
        self.sleep = sleep
        self.lookup_sees_closed = (
            self.name in CLIENT_ID_LOOKUP_SEES_CLOSED if lookup_sees_closed is None else lookup_sees_closed
        )

    # -- markets -------------------------------------------------------------------------------------------------
    def market(self, symbol: Symbol) -> Mapping[str, Any]:
        with translated(Call.READ, f"{self.name}: cannot load markets"):
            self.exchange.load_markets()
        market: Mapping[str, Any] | None = self.exchange.markets.get(symbol)
        if market is None:
            raise OrderRejectedError(f"{self.name} has no market {symbol!r}")
        return market

    def _precise(self, request: OrderRequest) -> tuple[Decimal, Decimal | None]:
        """(amount, limit price) through the market's precision, checked against its limits."""
        market = self.market(request.symbol)
        try:
            amount = Decimal(self.exchange.amount_to_precision(request.symbol, str(request.quantity)))
            price = (
                Decimal(self.exchange.price_to_precision(request.symbol, str(request.limit_price)))
                if request.limit_price is not None
                else None
            )
        except ccxt.InvalidOrder as exc:  # ccxt refuses an amount that truncates to nothing
            minimum = ((market.get("limits") or {}).get("amount") or {}).get("min")
            raise OrderRejectedError(
                f"{request.symbol}: amount {request.quantity} is below the venue's precision/minimum amount "
                f"{minimum} ({exc})"
            ) from None
        check_market_limits(request.symbol, market, amount, price or request.reference_price)
        return amount, price

    # -- Broker ----------------------------------------------------------------------------------------------------
    def submit(self, request: OrderRequest) -> BrokerReport:
        state = self._kill_switch()
        if state.engaged:
            raise KillSwitchEngagedError(f"{self.name} broker refuses {request.client_order_id}: {state.reason}")
        if request.order_type not in tuple(OrderType):
            raise OrderRejectedError(
                f"{self.name} broker sends market, limit and stop_loss_limit orders, got {request.order_type!r}"
            )
        amount, price = self._precise(request)
        params: dict[str, object] = {"clientOrderId": request.client_order_id}
        ccxt_type: str = request.order_type
        if request.order_type == OrderType.STOP_LOSS_LIMIT:  # ccxt: a limit order with a trigger price (binance)
            if request.stop_price is None or price is None:
                raise OrderRejectedError(f"{request.client_order_id}: a stop_loss_limit order needs a stop and a limit")
            if not self.supports_stop_orders():
                raise OrderRejectedError(f"{self.name} does not hold stop orders (ccxt has['createStopOrder'])")
            params["triggerPrice"] = float(self.exchange.price_to_precision(request.symbol, str(request.stop_price)))
            ccxt_type = OrderType.LIMIT.value
        self._sent[request.client_order_id] = request
        coid = request.client_order_id
        first_sent = self._clock()
        last_error: Exception | None = None
        for _ in range(self._attempts):
            try:
                order = self.exchange.create_order(
                    request.symbol, ccxt_type, request.side.value, float(amount),
                    None if price is None else float(price), dict(params),
                )  # fmt: skip
            except ccxt.BaseError as exc:
                if is_duplicate_id(exc):
                    return self._existing(coid, request.symbol, exc)
                if not isinstance(exc, TEMPORARY):  # a refusal (rejected) or a surprise (outcome unknown)
                    raise venue_error(exc, Call.SEND, f"{self.name}: submit of {coid}") from exc
                # Outcome unknown: the request may have reached the venue (a timeout after sending, a 5xx).
                last_error = exc
                report = self._confirmed_lookup(coid, request.symbol, since=first_sent, cause=exc)
                if report is not None:
                    return report  # the venue has it: never send it again
                continue  # the venue confirmed it never saw the id: safe to send again
            return self._report(order, coid, request.symbol, request.side)
        raise UnknownOrderStateError(
            f"{self.name}: {coid} not accepted after {self._attempts} attempts, each followed by a "
            f"lookup that did not find it: {type(last_error).__name__}: {last_error}"
        )

    def _existing(self, coid: ClientOrderId, symbol: Symbol, exc: Exception) -> BrokerReport:
        """The venue answered "duplicate client id": an order with this id may exist. Its report, never a
        rejection; when the lookup does not find it (or fails), the outcome is unknown."""
        try:
            report = self._find(coid, symbol)
        except VenueError as lookup_error:
            raise UnknownOrderStateError(
                f"{self.name}: {coid} answered as a duplicate client id ({exc}) and the lookup failed "
                f"({lookup_error}); reconcile before resending"
            ) from exc
        if report is None:
            raise UnknownOrderStateError(
                f"{self.name}: {coid} answered as a duplicate client id ({exc}) but the lookup by client id did not "
                "find it; left for reconciliation, never resent"
            ) from exc
        return report

    def _confirmed_lookup(
        self, coid: ClientOrderId, symbol: Symbol, *, since: datetime, cause: Exception
    ) -> BrokerReport | None:
        """After a submit whose outcome is unknown: the venue's report, or None only when the venue confirmed it
        never saw ``coid`` (see the module docstring); otherwise ``UnknownOrderStateError``."""
        if self.settle_seconds > 0:
            self.sleep(self.settle_seconds)
        try:
            report = self._find(coid, symbol, since)
        except UnknownOrderStateError:
            raise
        except VenueError as lookup_error:
            raise UnknownOrderStateError(
                f"{self.name}: submit of {coid} failed ({type(cause).__name__}) and the "
                f"lookup failed too ({lookup_error}); reconcile before resending"
            ) from cause
        return report

    def _history_lookup(self, coid: ClientOrderId, symbol: Symbol, since: datetime | None) -> BrokerReport | None:
        """``coid`` among the venue's open and closed orders of ``symbol`` since ``since``; None only when neither
        list has it and every trade of ours since then belongs to an order those lists name. A venue that cannot list
        closed orders or trades cannot confirm absence: ``UnknownOrderStateError``."""
        has = self.exchange.has
        if not (has.get("fetchClosedOrders") and has.get("fetchMyTrades") and has.get("fetchOpenOrders")):
            raise UnknownOrderStateError(
                f"{self.name}: cannot confirm that {coid} is absent: the venue lists no closed orders or trades"
            )
        start = None if since is None else int((since - HISTORY_MARGIN).timestamp() * 1000)
        with translated(Call.READ, f"{self.name}: history lookup of {coid}"):
            orders = [
                *self.exchange.fetch_open_orders(symbol, start),
                *self.exchange.fetch_closed_orders(symbol, start),
            ]
            trades = self.exchange.fetch_my_trades(symbol, start)
        for order in orders:
            if order.get("clientOrderId") == coid:
                return self._report(order, coid, symbol, Side(str(order.get("side"))))
        listed = {str(o.get("id")) for o in orders}
        stray = sorted({str(t.get("order")) for t in trades if str(t.get("order")) not in listed})
        if stray:
            raise UnknownOrderStateError(
                f"{self.name}: cannot confirm that {coid} is absent: trades of venue orders {', '.join(stray)} since "
                f"{since} belong to no order the venue lists"
            )
        return None

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        """The venue's report for ``client_order_id``, None when the venue never saw it."""
        sent = self._sent.get(client_order_id)
        symbol = sent.symbol if sent else (self._symbol_of(client_order_id) if self._symbol_of else None)
        symbols = [symbol] if symbol else list(self._symbols)
        if not symbols:
            raise ConfigError(
                f"{self.name}: cannot look up {client_order_id}: its symbol is unknown and no symbols are configured"
            )
        for symbol in symbols:
            report = self._find(client_order_id, symbol)
            if report is not None:
                return report
        return None

    def _find(self, coid: ClientOrderId, symbol: Symbol, since: datetime | None = None) -> BrokerReport | None:
        """The venue's report for ``coid`` in ``symbol``; None only when a lookup that covers closed orders (and,
        where the client-id lookup sees open orders only, trades) does not find it."""
        report = self._lookup_in(coid, [symbol])
        if report is None and not self.lookup_sees_closed:
            report = self._history_lookup(coid, symbol, since)
        return report

    def _lookup_in(self, client_order_id: ClientOrderId, symbols: Sequence[Symbol]) -> BrokerReport | None:
        for symbol in symbols:
            with translated(Call.READ, f"{self.name}: lookup of {client_order_id}"):
                try:
                    order = self.exchange.fetch_order(None, symbol, {"clientOrderId": client_order_id})
                except ccxt.OrderNotFound:
                    continue  # an answer, not an error: the venue does not have it under this symbol
            side = Side(str(order.get("side")))
            return self._report(order, client_order_id, symbol, side)
        return None

    def _report(
        self, order: Mapping[str, Any], client_order_id: ClientOrderId, symbol: Symbol, side: Side
    ) -> BrokerReport:
        filled = dec(order.get("filled")) or Decimal(0)
        status = status_from_ccxt(order.get("status"), filled, dec(order.get("amount")))
        trades = order.get("trades") or []
        if filled > 0 and not trades:
            try:
                trades = self.exchange.fetch_order_trades(str(order["id"]), symbol)
            except ccxt.BaseError as exc:  # not the table's READ: whatever failed, a fill we cannot book is unknown
                raise UnknownOrderStateError(
                    f"{self.name}: {client_order_id} filled {filled} but its trades could not be read: {exc}"
                ) from exc
        sent = self._sent.get(client_order_id)
        ts = order.get("timestamp")
        default_ts = datetime.fromtimestamp(ts / 1000, UTC) if isinstance(ts, int | float) else self._clock()
        fills = fills_from_trades(client_order_id, symbol, side, trades,
                                  reference_price=sent.reference_price if sent else None, default_ts=default_ts)  # fmt: skip
        booked = sum((f.quantity for f in fills), Decimal(0))
        if booked != filled:
            raise UnknownOrderStateError(
                f"{self.name}: {client_order_id} reports {filled} filled but its trades add up to {booked}"
            )
        reason = ""
        if status is OrderStatus.EXPIRED and filled:
            reason = f"filled {filled} of {order.get('amount')}; rest expired at the venue"
        return BrokerReport(client_order_id, status, VenueOrderId(str(order.get("id"))), fills, reason, symbol)

    # -- CancellingBroker ------------------------------------------------------------------------------------------
    def cancel(self, client_order_id: ClientOrderId, symbol: Symbol) -> BrokerReport | None:
        # OrderNotFound: already final (filled, cancelled) or never seen; the lookup tells which
        with translated(Call.READ, f"{self.name}: cancel of {client_order_id}"), suppress(ccxt.OrderNotFound):
            self.exchange.cancel_order(None, symbol, {"clientOrderId": client_order_id})
        return self._find(client_order_id, symbol)

    def open_orders(self, symbol: Symbol | None = None) -> list[BrokerReport]:
        """The venue's open orders (of ``symbol``, else of every configured symbol)."""
        reports = []
        for sym in [symbol] if symbol else list(self._symbols):
            with translated(Call.READ, f"{self.name}: open orders of {sym}"):
                orders = self.exchange.fetch_open_orders(sym)
            for order in orders:
                coid = ClientOrderId(str(order.get("clientOrderId") or ""))
                reports.append(self._report(order, coid, sym, Side(str(order.get("side")))))
        return reports

    # -- order book (smart routing) --------------------------------------------------------------------------------
    def current_price(self, symbol: Symbol, side: Side) -> Decimal:
        """The venue's price now (``QuotingBroker``): from ``fetch_ticker``, the ask for a buy and the bid for a sell,
        else the last trade; a ticker with none of them is a ``VenueTemporaryError``."""
        with translated(Call.READ, f"{self.name}: ticker of {symbol}"):
            ticker = self.exchange.fetch_ticker(symbol)
        for key in ("ask" if side is Side.BUY else "bid", "last"):
            price = dec(ticker.get(key))
            if price is not None and price > 0:
                return price
        raise VenueTemporaryError(f"{self.name}: the {symbol} ticker has no price")

    def book_levels(self, symbol: Symbol, side: Side, depth: int) -> list[tuple[Decimal, Decimal]]:
        """Up to ``depth`` (price, size) levels on the side we would take, best first: asks for a buy, bids for a
        sell (``fetch_order_book(symbol, depth)``). An empty side or an unreadable level is a
        ``VenueTemporaryError``."""
        with translated(Call.READ, f"{self.name}: order book of {symbol}"):
            book = self.exchange.fetch_order_book(symbol, depth)
        name = "asks" if side is Side.BUY else "bids"
        raw = (book.get(name) or [])[:depth]
        if not raw:
            raise VenueTemporaryError(f"{self.name}: the {symbol} book has no {name}")
        levels = []
        for level in raw:
            price, size = dec(level[0]), dec(level[1])
            if price is None or size is None or price <= 0:
                raise VenueTemporaryError(f"{self.name}: unreadable level of the {symbol} book: {level!r}")
            levels.append((price, size))
        return levels

    def taker_fee_bps(self, symbol: Symbol) -> Decimal:
        """The market's published taker fee in bps (ccxt ``market['taker']``, a fraction)."""
        fee = dec(self.market(symbol).get("taker"))
        if fee is None:
            raise ConfigError(f"{self.name} publishes no taker fee for {symbol}: configure route_fee_bps")
        return fee * 10000

    # -- balances, stop orders -------------------------------------------------------------------------------------
    def balances(self) -> dict[str, Decimal]:
        """Total balance per currency at the venue (free + used), zero balances left out."""
        with translated(Call.READ, f"{self.name}: fetch_balance"):
            balance = self.exchange.fetch_balance()
        totals = balance.get("total") or {}
        return {ccy: d for ccy, value in totals.items() if (d := dec(value))}

    def supports_stop_orders(self) -> bool:
        has = self.exchange.has
        return bool(has.get("createStopOrder") or has.get("createStopLossOrder"))
