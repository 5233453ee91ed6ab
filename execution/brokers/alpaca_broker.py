"""The Alpaca broker: US stocks through alpaca-py's ``TradingClient`` (paper or live endpoint), implementing the
``Broker`` port (and ``CancellingBroker``, ``BalanceBroker``, ``QuotingBroker``, and routing's ``QuoteVenueBroker``),
beside the ccxt adapter and with the same guarantees.

What a caller can rely on:

- ``submit`` sends the deterministic client order id as Alpaca's ``client_order_id``, a market or limit order, time in
  force ``day``, extended hours off unless ``extended_hours`` (limit orders only, as Alpaca requires). The quantity
  comes from the asset's metadata (``get_asset``): fractional to 9 decimals where the asset is ``fractionable``, else
  whole shares, always rounded down (``alpaca_mapping.order_quantity``); an asset that is not tradable, or a
  quantity that rounds to nothing, is an ``OrderRejectedError`` and nothing is sent.
- Market hours come from the exchange's calendar (``get_calendar``, ``alphaloom.venues.alpaca_sessions``): outside
  the regular session (for a limit order with ``extended_hours``: outside the extended-hours day) an order is refused with the reason and the next open (``outside_session="refuse"``, the
  default), or sent as a ``day`` order that Alpaca holds for the open (``"queue"``), reported ``submitted`` with
  that reason.
- An error whose outcome is unknown (no answer, a dropped connection, 429, 5xx) is never answered by a blind resend:
  after ``settle_seconds`` the order is looked up by client order id (``get_order_by_client_id``, which finds open
  and closed orders alike); when Alpaca has it, its report is returned; it is sent again (at most ``attempts``
  creates) only when Alpaca answers 404 for the id. A lookup that fails too is ``UnknownOrderStateError``: execution
  marks the order submitted and reconciliation settles it later.
- A duplicate client order id (422 "client_order_id must be unique") means the order exists: it is looked up and its
  report returned, never booked as a rejection.
- Every other vendor error goes through the one Alpaca error table (``alphaloom.venues.alpaca_errors``): a refusal on
  a send (insufficient buying power, invalid quantity, bad keys) is ``OrderRejectedError``, anything else unknown.
- Statuses map onto our state machine (``alpaca_mapping.status_from_alpaca``); fills are the order's ``FILL``
  account activities, one ``Fill`` each, Decimal, and must add up to the order's ``filled_qty``.
- The kill switch is asked before every submit; while it is on nothing is sent (``KillSwitchEngagedError``).
- Routing (``execution.algos.routing``) reads Alpaca as a quote venue: ``venue_quote`` is the latest quote
  (``get_stock_latest_quote``, sizes in shares) and ``quote_fees`` the fee schedule (commission-free; the regulatory
  fees on sells, ``regulatory_fees``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from alphaloom.domain import AccountId, ClientOrderId, OrderStatus, Side, Symbol, VenueOrderId
from alphaloom.errors import (
    KillSwitchEngagedError,
    OrderRejectedError,
    UnknownOrderStateError,
    VenueError,
    VenueTemporaryError,
)
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.venues.alpaca_errors import (
    Call,
    is_duplicate_id,
    is_not_found,
    is_temporary,
    status_of,
    translated,
    vendor_errors,
    venue_error,
)
from alphaloom.venues.alpaca_sessions import Session, closed_reason, extended, next_open, session_at, session_of
from execution.algos.quotes import Quote, QuoteFees
from execution.brokers.alpaca_mapping import (
    CURRENCY,
    QUOTE_LOT,
    SELL_FEES,
    dec,
    fee_charges,
    fills_from_activities,
    limit_price_for,
    order_quantity,
    quote_from_alpaca,
    status_from_alpaca,
)
from execution.brokers.base import BrokerReport, ChargeStart, OrderRequest, OrderType, VenueCharge

if TYPE_CHECKING:
    from alpaca.data.historical import StockHistoricalDataClient
    from alpaca.trading.client import TradingClient
    from alpaca.trading.models import Order

DEFAULT_SETTLE_SECONDS = 2.0
# How far before an order's submission its fill activities are read (clock skew between us and the venue).
ACTIVITY_MARGIN = timedelta(minutes=5)
ACTIVITY_PAGE = 100
CALENDAR_DAYS = 10  # how many days ahead the calendar is read (long weekends and holidays included)


class AlpacaBroker:
    """``trading``: an alpaca-py ``TradingClient`` holding the account's keys (``alphaloom.venues.alpaca_client``);
    ``data``: its ``StockHistoricalDataClient``, for the quote the price band asks at send time and routing reads
    (``feed``: iex or sip; ``quote_lot``: shares per round lot of its sizes); ``regulatory_fees``: the fees routing
    prices a sell with."""

    name = "alpaca"
    live = True

    def __init__(
        self,
        trading: TradingClient,
        *,
        kill_switch: Callable[[], KillSwitchState],
        data: StockHistoricalDataClient | None = None,
        feed: str = "iex",
        account: AccountId | None = None,
        outside_session: Literal["refuse", "queue"] = "refuse",
        extended_hours: bool = False,
        attempts: int = 2,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] | None = None,
        regulatory_fees: QuoteFees = SELL_FEES,
        quote_lot: Decimal = QUOTE_LOT,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        self.trading = trading
        self.data = data
        self.feed = feed
        self.account = account
        self.outside_session = outside_session
        self.extended_hours = extended_hours
        self._kill_switch = kill_switch
        self._attempts = attempts
        self.settle_seconds = settle_seconds
        self.sleep = sleep
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sent: dict[ClientOrderId, OrderRequest] = {}
        self._fractionable: dict[str, bool] = {}
        self._calendar: tuple[date, list[Session]] | None = None
        self.regulatory_fees = regulatory_fees
        self.quote_lot = quote_lot

    # -- venue metadata --------------------------------------------------------------------------------------------
    def fractionable(self, symbol: Symbol) -> bool:
        """Whether ``symbol`` trades in fractions at Alpaca (``get_asset``); an unknown or untradable asset is an
        ``OrderRejectedError``."""
        if symbol not in self._fractionable:
            try:
                asset = self.trading.get_asset(symbol)
            except vendor_errors() as exc:
                if is_not_found(exc):
                    raise OrderRejectedError(f"alpaca has no asset {symbol!r}") from exc
                raise venue_error(exc, Call.READ, f"alpaca: asset {symbol}") from exc
            if not getattr(asset, "tradable", False):
                raise OrderRejectedError(f"alpaca: {symbol} is not tradable")
            self._fractionable[symbol] = bool(getattr(asset, "fractionable", False))
        return self._fractionable[symbol]

    def sessions(self, at: datetime) -> list[Session]:
        """The regular sessions from the day before ``at`` to ``CALENDAR_DAYS`` after (read once per day)."""
        day = at.astimezone(UTC).date()
        if self._calendar is None or self._calendar[0] != day:
            from alpaca.trading.requests import GetCalendarRequest

            with translated(Call.READ, "alpaca: market calendar"):
                days = self.trading.get_calendar(
                    GetCalendarRequest(start=day - timedelta(days=1), end=day + timedelta(days=CALENDAR_DAYS))
                )
            self._calendar = (day, [session_of(d.date, d.open, d.close) for d in days])  # type: ignore[union-attr]
        return self._calendar[1]

    # -- Broker ----------------------------------------------------------------------------------------------------
    def submit(self, request: OrderRequest) -> BrokerReport:
        state = self._kill_switch()
        if state.engaged:
            raise KillSwitchEngagedError(f"alpaca broker refuses {request.client_order_id}: {state.reason}")
        if request.order_type not in (OrderType.MARKET, OrderType.LIMIT):
            raise OrderRejectedError(f"alpaca broker sends market and limit orders, got {request.order_type.value!r}")
        quantity = order_quantity(request.symbol, request.quantity, fractionable=self.fractionable(request.symbol))
        queued = self._session_check(request.symbol, extended_hours=self._extended(request))
        order_data = self._order_data(request, quantity)
        self._sent[request.client_order_id] = request
        report = self._send(request.client_order_id, order_data)
        if queued and report.status is OrderStatus.SUBMITTED and not report.reason:
            return BrokerReport(report.client_order_id, report.status, report.venue_order_id, report.fills, queued,
                                report.symbol)  # fmt: skip
        return report

    def _extended(self, request: OrderRequest) -> bool:
        """Whether the order may trade in extended hours (configured, and a limit order: Alpaca's rule)."""
        return self.extended_hours and request.order_type is OrderType.LIMIT

    def _session_check(self, symbol: Symbol, *, extended_hours: bool) -> str:
        """Nothing inside the session (with extended hours where the order may trade then); outside it, the reason
        (queue mode) or an ``OrderRejectedError`` (refuse mode)."""
        now = self._clock()
        sessions = self.sessions(now)
        if extended_hours:
            sessions = [extended(s) for s in sessions]
        if session_at(sessions, now) is not None:
            return ""
        reason = closed_reason(symbol, now, sessions, kind="extended-hours" if extended_hours else "regular")
        if self.outside_session == "refuse":
            raise OrderRejectedError(reason)
        upcoming = next_open(sessions, now)
        return f"queued for the open at {upcoming.isoformat() if upcoming else 'the next session'}"

    def _order_data(self, request: OrderRequest, quantity: Decimal) -> Any:
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

        common: dict[str, Any] = {
            "symbol": request.symbol, "qty": float(quantity), "time_in_force": TimeInForce.DAY,
            "side": OrderSide.BUY if request.side is Side.BUY else OrderSide.SELL,
            "client_order_id": str(request.client_order_id),
        }  # fmt: skip
        if request.order_type is OrderType.LIMIT:
            if request.limit_price is None:
                raise OrderRejectedError(f"{request.client_order_id}: a limit order needs a limit price")
            price = limit_price_for(request.limit_price, request.side)
            return LimitOrderRequest(**common, limit_price=float(price), extended_hours=self._extended(request))
        return MarketOrderRequest(**common, extended_hours=False)

    def _send(self, coid: ClientOrderId, order_data: Any) -> BrokerReport:
        last: BaseException | None = None
        for _ in range(self._attempts):
            try:
                order = self.trading.submit_order(order_data)
            except vendor_errors() as exc:
                if is_duplicate_id(exc):
                    found = self._after_unknown(coid, exc, settle=False)
                    if found is None:
                        raise UnknownOrderStateError(
                            f"alpaca: {coid} refused as a duplicate client order id but not found; reconcile"
                        ) from exc
                    return found
                if not is_temporary(exc):
                    raise venue_error(exc, Call.SEND, f"alpaca: submit of {coid}") from exc
                found = self._after_unknown(coid, exc, settle=True)
                if found is not None:
                    return found
                last = exc  # Alpaca confirms it never saw the id: sending again is safe
                continue
            return self._report(order)  # type: ignore[arg-type]
        raise UnknownOrderStateError(f"alpaca: submit of {coid} failed {self._attempts} times: {last}") from last

    def _after_unknown(self, coid: ClientOrderId, cause: BaseException, *, settle: bool) -> BrokerReport | None:
        if settle and self.settle_seconds > 0:
            self.sleep(self.settle_seconds)
        try:
            return self.lookup(coid)
        except (VenueError, UnknownOrderStateError) as lookup_error:
            raise UnknownOrderStateError(
                f"alpaca: submit of {coid} failed ({type(cause).__name__}) and the lookup failed too "
                f"({lookup_error}); reconcile before resending"
            ) from cause

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        """Alpaca's report for ``client_order_id`` (open or closed), None when Alpaca never saw it."""
        try:
            order = self.trading.get_order_by_client_id(str(client_order_id))
        except vendor_errors() as exc:
            if is_not_found(exc):
                return None
            raise venue_error(exc, Call.READ, f"alpaca: lookup of {client_order_id}") from exc
        return self._report(order)  # type: ignore[arg-type]

    def _report(self, order: Order) -> BrokerReport:
        coid = ClientOrderId(order.client_order_id)
        symbol = Symbol(str(order.symbol))
        side = Side.BUY if str(_value(order.side)) == "buy" else Side.SELL
        filled = dec(order.filled_qty) or Decimal(0)
        quantity = dec(order.qty)
        status = status_from_alpaca(str(_value(order.status)), filled, quantity)
        fills: tuple[Any, ...] = ()
        if filled > 0:
            sent = self._sent.get(coid)
            activities = self._fill_activities(str(order.id), order.submitted_at)
            fills = fills_from_activities(coid, symbol, side, activities,
                                          reference_price=sent.reference_price if sent else None)  # fmt: skip
            booked = sum((f.quantity for f in fills), Decimal(0))
            if booked != filled:
                raise UnknownOrderStateError(
                    f"alpaca: {coid} reports {filled} filled but its fill activities add up to {booked}"
                )
        reason = ""
        if status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED) and filled:
            total = "?" if quantity is None else f"{quantity.normalize():f}"
            reason = f"filled {filled.normalize():f} of {total}; rest {status.value} at the venue"
        return BrokerReport(coid, status, VenueOrderId(str(order.id)), fills, reason, symbol)

    def _fill_activities(self, order_id: str, submitted_at: datetime) -> list[Mapping[str, Any]]:
        """The ``FILL`` account activities of one order (``/v2/account/activities/FILL``, paged)."""
        params: dict[str, Any] = {"direction": "asc", "page_size": ACTIVITY_PAGE,
                                  "after": (submitted_at - ACTIVITY_MARGIN).astimezone(UTC).isoformat()}  # fmt: skip
        mine: list[Mapping[str, Any]] = []
        while True:
            with translated(Call.READ, f"alpaca: fills of order {order_id}"):
                page = self.trading.get("/account/activities/FILL", params)
            rows = list(page or [])
            mine += [a for a in rows if str(a.get("order_id")) == order_id]
            if len(rows) < ACTIVITY_PAGE:
                return mine
            params["page_token"] = str(rows[-1]["id"])

    # -- ChargingBroker -------------------------------------------------------------------------------------------
    def charges_since(self, start: ChargeStart) -> list[VenueCharge]:
        """Alpaca's regulatory fees (``/v2/account/activities/FEE``, paged) from the day before ``start.since`` (the
        newest fee booked, else our first order; a fee is dated by day, so the day before is read again and the
        booking skips what it already has); nothing when the account has no order there."""
        if start.since is None:
            return []
        after = (start.since.astimezone(UTC) - timedelta(days=1)).date().isoformat()
        params: dict[str, Any] = {"direction": "asc", "page_size": ACTIVITY_PAGE, "after": after}
        rows: list[Mapping[str, Any]] = []
        while True:
            with translated(Call.READ, f"alpaca: fees after {after}"):
                page = list(self.trading.get("/account/activities/FEE", params) or [])
            rows += page
            if len(page) < ACTIVITY_PAGE:
                return fee_charges(rows)
            params["page_token"] = str(page[-1]["id"])

    # -- CancellingBroker ------------------------------------------------------------------------------------------
    def cancel(self, client_order_id: ClientOrderId, symbol: Symbol) -> BrokerReport | None:
        """Cancel the order if it still works; the venue's report after (None when Alpaca never saw it)."""
        report = self.lookup(client_order_id)
        if report is None or report.status not in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED):
            return report
        try:
            self.trading.cancel_order_by_id(str(report.venue_order_id))
        except vendor_errors() as exc:
            # 404 / 422: already final (filled, cancelled) in the meantime; the lookup tells which
            if status_of(exc) not in (404, 422):
                raise venue_error(exc, Call.READ, f"alpaca: cancel of {client_order_id}") from exc
        return self.lookup(client_order_id)

    def open_orders(self, symbol: Symbol | None = None) -> list[BrokerReport]:
        """Alpaca's open orders (of ``symbol``, else all)."""
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        request = GetOrdersRequest(status=QueryOrderStatus.OPEN, symbols=[symbol] if symbol else None)
        with translated(Call.READ, "alpaca: open orders"):
            orders = self.trading.get_orders(request)
        return [self._report(order) for order in orders]  # type: ignore[arg-type]

    # -- QuotingBroker ---------------------------------------------------------------------------------------------
    def current_price(self, symbol: Symbol, side: Side) -> Decimal:
        """The latest quote's ask for a buy, bid for a sell (``get_stock_latest_quote``); no quote, or a zero side
        (a closed market often has one), is a ``VenueTemporaryError``."""
        price = self.venue_quote(symbol).side(side)[0]
        if price is None:
            raise VenueTemporaryError(f"alpaca: the {symbol} quote has no {'ask' if side is Side.BUY else 'bid'}")
        return price

    # -- routing's QuoteVenueBroker -----------------------------------------------------------------------------
    def venue_quote(self, symbol: Symbol) -> Quote:
        """The latest quote of ``symbol`` (``get_stock_latest_quote``) in USD, sizes in shares; a zero side is no
        price on that side, and no quote at all has neither side nor time."""
        if self.data is None:
            raise VenueError(f"alpaca: no market data client to quote {symbol}")
        from alpaca.data.requests import StockLatestQuoteRequest

        with translated(Call.READ, f"alpaca: latest quote of {symbol}"):
            quotes = self.data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols=symbol,
                                                                             feed=self.feed))  # type: ignore[arg-type]  # fmt: skip
        quote = quotes.get(symbol) if isinstance(quotes, dict) else None
        if quote is None:
            return Quote(self.name, symbol, None, None, None, CURRENCY)
        return quote_from_alpaca(self.name, symbol, quote, lot=self.quote_lot)

    def quote_fees(self, symbol: Symbol) -> QuoteFees:
        """Commission-free; on sells the regulatory fees (``regulatory_fees``)."""
        return self.regulatory_fees

    # -- BalanceBroker ---------------------------------------------------------------------------------------------
    def balances(self) -> dict[str, Decimal]:
        """Cash in USD and every position in shares (keyed by symbol, as reconciliation compares them)."""
        with translated(Call.READ, "alpaca: account"):
            account = self.trading.get_account()
            positions = self.trading.get_all_positions()
        totals: dict[str, Decimal] = {}
        cash = dec(getattr(account, "cash", None))
        if cash:
            totals[CURRENCY] = cash
        for position in positions:
            qty = dec(getattr(position, "qty", None))
            if qty:
                totals[str(getattr(position, "symbol", ""))] = qty
        return totals


def _value(member: object) -> object:
    """An SDK enum's value (its models hold enums), else the thing itself."""
    return getattr(member, "value", member)
