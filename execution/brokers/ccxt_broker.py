"""The live broker: one adapter around a ccxt exchange (binance, kraken, ...), implementing the ``Broker`` port.

What a caller can rely on:

- ``submit`` sends the deterministic client order id as the venue's client id (ccxt ``clientOrderId``; binance sends it
  as ``newClientOrderId``), with the amount (and a limit price) passed through the market's precision
  (``amount_to_precision`` / ``price_to_precision``) and checked against its limits first: below
  ``limits.amount.min`` or ``limits.cost.min`` is an ``OrderRejectedError`` naming symbol, value and minimum, and
  nothing is sent.
- An error whose outcome is unknown (ccxt ``NetworkError``: ``RequestTimeout``, ``ExchangeNotAvailable``..., or a
  duplicate-id refusal) is never answered by a blind resend: the order is first looked up by client id
  (``fetch_order``, then ``fetch_open_orders``); when the venue has it, its report is returned and nothing is sent
  again; only when the venue answers that it never saw the id is the order sent again (at most ``attempts`` creates).
  When even the lookup fails, ``UnknownOrderStateError``: execution marks the order submitted and reconciles later.
- Vendor errors are translated here (``alphaloom.errors``): a refusal (``InvalidOrder``, ``InsufficientFunds``,
  ``BadSymbol``, ``BadRequest``, ``PermissionDenied``, ``AuthenticationError``) is ``OrderRejectedError``; network
  trouble before anything was sent is ``VenueTemporaryError``.
- ccxt statuses map onto our state machine (``ccxt_mapping.status_from_ccxt``); fills are Decimal, one per venue trade.
- The kill switch is asked before every submit; while it is on nothing is sent (``KillSwitchEngagedError``).

``lookup(client_order_id)`` needs the order's symbol at venues like binance: it uses the symbol of an order this
process sent, else ``symbol_of(client_order_id)`` (e.g. from ``audit.orders``), else tries each of ``symbols``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt

from alphaloom.domain import ClientOrderId, OrderStatus, Side, VenueOrderId
from alphaloom.errors import (
    ConfigError,
    KillSwitchEngagedError,
    OrderRejectedError,
    UnknownOrderStateError,
    VenueError,
    VenueTemporaryError,
)
from alphaloom.guards import KillSwitchState
from execution.brokers.base import BrokerReport, OrderRequest
from execution.brokers.ccxt_mapping import check_market_limits, dec, fills_from_trades, status_from_ccxt

REFUSALS = (
    ccxt.InvalidOrder,
    ccxt.InsufficientFunds,
    ccxt.BadSymbol,
    ccxt.BadRequest,
    ccxt.PermissionDenied,
    ccxt.AuthenticationError,
    ccxt.AccountSuspended,
)
# Outcome unknown: the request may have reached the venue (a timeout after sending, a 5xx, a duplicate-id answer).
UNKNOWN_OUTCOME = (ccxt.NetworkError, ccxt.DuplicateOrderId)


class CcxtBroker:
    """``exchange``: a ccxt exchange with credentials (``alphaloom.secrets.Credentials.ccxt_config``)."""

    live = True

    def __init__(
        self,
        exchange: ccxt.Exchange,
        *,
        kill_switch: Callable[[], KillSwitchState],
        symbols: Sequence[str] = (),
        symbol_of: Callable[[ClientOrderId], str | None] | None = None,
        attempts: int = 2,
        clock: Callable[[], datetime] | None = None,
        account: str | None = None,
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

    # -- markets -------------------------------------------------------------------------------------------------
    def market(self, symbol: str) -> Mapping[str, Any]:
        try:
            self.exchange.load_markets()
        except ccxt.NetworkError as exc:
            raise VenueTemporaryError(f"{self.name}: cannot load markets: {type(exc).__name__}: {exc}") from exc
        except ccxt.BaseError as exc:
            raise VenueError(f"{self.name}: cannot load markets: {type(exc).__name__}: {exc}") from exc
        market = self.exchange.markets.get(symbol)
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
        if request.order_type not in ("market", "limit", "stop_loss_limit"):
            raise OrderRejectedError(
                f"{self.name} broker sends market, limit and stop_loss_limit orders, got {request.order_type!r}"
            )
        amount, price = self._precise(request)
        params: dict[str, object] = {"clientOrderId": request.client_order_id}
        ccxt_type = request.order_type
        if (
            request.order_type == "stop_loss_limit"
        ):  # ccxt: a limit order with a trigger price (binance STOP_LOSS_LIMIT)
            if request.stop_price is None or price is None:
                raise OrderRejectedError(f"{request.client_order_id}: a stop_loss_limit order needs a stop and a limit")
            if not self.supports_stop_orders():
                raise OrderRejectedError(f"{self.name} does not hold stop orders (ccxt has['createStopOrder'])")
            params["triggerPrice"] = float(self.exchange.price_to_precision(request.symbol, str(request.stop_price)))
            ccxt_type = "limit"
        self._sent[request.client_order_id] = request
        last_error: Exception | None = None
        for _ in range(self._attempts):
            try:
                order = self.exchange.create_order(
                    request.symbol, ccxt_type, request.side.value, float(amount),
                    None if price is None else float(price), dict(params),
                )  # fmt: skip
            except REFUSALS as exc:
                raise OrderRejectedError(f"{self.name} refused {request.client_order_id}: {exc}") from exc
            except UNKNOWN_OUTCOME as exc:
                last_error = exc
                try:
                    report = self._lookup_in(request.client_order_id, [request.symbol])
                except VenueError as lookup_error:
                    raise UnknownOrderStateError(
                        f"{self.name}: submit of {request.client_order_id} failed ({type(exc).__name__}) and the "
                        f"lookup failed too ({lookup_error}); reconcile before resending"
                    ) from exc
                if report is not None:
                    return report  # the venue has it: never send it again
                continue  # the venue says it never saw the id: safe to send again
            except ccxt.BaseError as exc:
                raise UnknownOrderStateError(
                    f"{self.name}: submit of {request.client_order_id} failed: {type(exc).__name__}: {exc}"
                ) from exc
            return self._report(order, request.client_order_id, request.symbol, request.side)
        raise UnknownOrderStateError(
            f"{self.name}: {request.client_order_id} not accepted after {self._attempts} attempts, each followed by a "
            f"lookup that did not find it: {type(last_error).__name__}: {last_error}"
        )

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        """The venue's report for ``client_order_id``, None when the venue never saw it."""
        sent = self._sent.get(client_order_id)
        symbol = sent.symbol if sent else (self._symbol_of(client_order_id) if self._symbol_of else None)
        symbols = [symbol] if symbol else list(self._symbols)
        if not symbols:
            raise ConfigError(
                f"{self.name}: cannot look up {client_order_id}: its symbol is unknown and no symbols are configured"
            )
        return self._lookup_in(client_order_id, symbols)

    def _lookup_in(self, client_order_id: ClientOrderId, symbols: Sequence[str]) -> BrokerReport | None:
        for symbol in symbols:
            try:
                order = self.exchange.fetch_order(None, symbol, {"clientOrderId": client_order_id})
            except ccxt.OrderNotFound:
                continue
            except ccxt.NetworkError as exc:
                raise VenueTemporaryError(
                    f"{self.name}: lookup of {client_order_id}: {type(exc).__name__}: {exc}"
                ) from exc
            except ccxt.BaseError as exc:
                raise VenueError(f"{self.name}: lookup of {client_order_id}: {type(exc).__name__}: {exc}") from exc
            side = Side(str(order.get("side")))
            return self._report(order, client_order_id, symbol, side)
        return None

    def _report(
        self, order: Mapping[str, Any], client_order_id: ClientOrderId, symbol: str, side: Side
    ) -> BrokerReport:
        filled = dec(order.get("filled")) or Decimal(0)
        status = status_from_ccxt(order.get("status"), filled, dec(order.get("amount")))
        trades = order.get("trades") or []
        if filled > 0 and not trades:
            try:
                trades = self.exchange.fetch_order_trades(str(order["id"]), symbol)
            except ccxt.BaseError as exc:
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
    def cancel(self, client_order_id: ClientOrderId, symbol: str) -> BrokerReport | None:
        try:
            self.exchange.cancel_order(None, symbol, {"clientOrderId": client_order_id})
        except ccxt.OrderNotFound:
            pass  # already final (filled, cancelled) or never seen: the lookup tells which
        except ccxt.NetworkError as exc:
            raise VenueTemporaryError(f"{self.name}: cancel of {client_order_id}: {exc}") from exc
        except ccxt.BaseError as exc:
            raise VenueError(f"{self.name}: cancel of {client_order_id}: {type(exc).__name__}: {exc}") from exc
        return self._lookup_in(client_order_id, [symbol])

    def open_orders(self, symbol: str | None = None) -> list[BrokerReport]:
        """The venue's open orders (of ``symbol``, else of every configured symbol)."""
        reports = []
        for sym in [symbol] if symbol else list(self._symbols):
            try:
                orders = self.exchange.fetch_open_orders(sym)
            except ccxt.NetworkError as exc:
                raise VenueTemporaryError(f"{self.name}: open orders of {sym}: {exc}") from exc
            except ccxt.BaseError as exc:
                raise VenueError(f"{self.name}: open orders of {sym}: {type(exc).__name__}: {exc}") from exc
            for order in orders:
                coid = ClientOrderId(str(order.get("clientOrderId") or ""))
                reports.append(self._report(order, coid, sym, Side(str(order.get("side")))))
        return reports

    # -- order book (smart routing) --------------------------------------------------------------------------------
    def current_price(self, symbol: str, side: Side) -> Decimal:
        """The venue's price now (``QuotingBroker``): from ``fetch_ticker``, the ask for a buy and the bid for a sell,
        else the last trade; a ticker with none of them is a ``VenueTemporaryError``."""
        try:
            ticker = self.exchange.fetch_ticker(symbol)
        except ccxt.NetworkError as exc:
            raise VenueTemporaryError(f"{self.name}: ticker of {symbol}: {exc}") from exc
        except ccxt.BaseError as exc:
            raise VenueError(f"{self.name}: ticker of {symbol}: {type(exc).__name__}: {exc}") from exc
        for key in ("ask" if side is Side.BUY else "bid", "last"):
            price = dec(ticker.get(key))
            if price is not None and price > 0:
                return price
        raise VenueTemporaryError(f"{self.name}: the {symbol} ticker has no price")

    def book_levels(self, symbol: str, side: Side, depth: int) -> list[tuple[Decimal, Decimal]]:
        """Up to ``depth`` (price, size) levels on the side we would take, best first: asks for a buy, bids for a
        sell (``fetch_order_book(symbol, depth)``). An empty side or an unreadable level is a
        ``VenueTemporaryError``."""
        try:
            book = self.exchange.fetch_order_book(symbol, depth)
        except ccxt.NetworkError as exc:
            raise VenueTemporaryError(f"{self.name}: order book of {symbol}: {exc}") from exc
        except ccxt.BaseError as exc:
            raise VenueError(f"{self.name}: order book of {symbol}: {type(exc).__name__}: {exc}") from exc
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

    def taker_fee_bps(self, symbol: str) -> Decimal:
        """The market's published taker fee in bps (ccxt ``market['taker']``, a fraction)."""
        fee = dec(self.market(symbol).get("taker"))
        if fee is None:
            raise ConfigError(f"{self.name} publishes no taker fee for {symbol}: configure route_fee_bps")
        return fee * 10000

    # -- balances, stop orders -------------------------------------------------------------------------------------
    def balances(self) -> dict[str, Decimal]:
        """Total balance per currency at the venue (free + used), zero balances left out."""
        try:
            balance = self.exchange.fetch_balance()
        except ccxt.NetworkError as exc:
            raise VenueTemporaryError(f"{self.name}: fetch_balance: {exc}") from exc
        except ccxt.BaseError as exc:
            raise VenueError(f"{self.name}: fetch_balance: {type(exc).__name__}: {exc}") from exc
        totals = balance.get("total") or {}
        return {ccy: d for ccy, value in totals.items() if (d := dec(value))}

    def supports_stop_orders(self) -> bool:
        has = self.exchange.has
        return bool(has.get("createStopOrder") or has.get("createStopLossOrder"))
