"""Pure translation between OANDA v20 JSON and our order types (no I/O; the adapter is ``oanda_broker``).

- Symbols: ours are ``EUR/USD``, OANDA's instruments ``EUR_USD`` (``oanda_client.instrument_of``, ``symbol_of``).
- ``InstrumentSpec`` (from ``accounts/{id}/instruments``): ``units_for`` turns a quantity into OANDA's signed units
  text, cut down to the instrument's units precision (whole units for currency pairs), refused below its minimum trade
  size; ``price_text`` rounds a limit price to its display precision (5 digits for EUR_USD, 3 for USD_JPY).
- ``order_body``: a market order (fill or kill) or a GTC limit order, our client order id as ``clientExtensions.id``.
- ``report_of``: an order's state and its transactions (``ORDER_FILL``, ``ORDER_CANCEL``) -> a ``BrokerReport`` on our
  state machine. Each fill's fee is what OANDA charged on it in the account's currency: ``commission`` plus
  ``guaranteedExecutionFee`` minus ``financing`` (financing paid is negative in v20, so it adds to the fee; financing
  received lowers it).
- ``financing_charges``: ``DAILY_FINANCING`` transactions (swap on positions held over the daily rollover) as fees
  in the account's currency.
- ``quote_from_pricing``: one price of ``accounts/{id}/pricing`` as routing's ``Quote``: the first (best) bucket of
  each side with its liquidity as the size, in the instrument's quote currency, tradeable as OANDA says.
- ``spot_holdings``: the account's balance and open positions as the spot-like holdings our ledger keeps (per base
  currency the net units; per quote currency minus their cost at the average price), for reconciliation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from alphaloom.domain import ClientOrderId, Fill, OrderStatus, Side, Symbol, VenueOrderId
from alphaloom.errors import OrderRejectedError, UnknownOrderStateError
from alphaloom.venues.oanda_client import symbol_of
from execution.algos.quotes import Quote
from execution.brokers.base import BrokerReport, OrderRequest, OrderType, VenueCharge

# Cancel reasons that mean "the venue would not take it" rather than "someone cancelled it".
CANCELLED_BY_REQUEST = frozenset({"CLIENT_REQUEST", "CLIENT_REQUEST_REPLACED"})
EXPIRED_REASONS = frozenset({"TIME_IN_FORCE_EXPIRED"})


def dec(value: object) -> Decimal:
    """A v20 decimal string as Decimal (``"0"`` when absent)."""
    if value is None or value == "":
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise UnknownOrderStateError(f"OANDA sent {value!r} where a number belongs") from None


def parse_time(value: object, default: datetime) -> datetime:
    """An RFC 3339 time of v20 (nanoseconds, ``Z``) as a UTC datetime; ``default`` when absent."""
    if not isinstance(value, str) or not value:
        return default
    head, _, rest = value.rstrip("Z").partition(".")
    micros = (rest[:6]).ljust(6, "0") if rest else "000000"
    return datetime.fromisoformat(f"{head}.{micros}").replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """What OANDA says about one instrument: pip location (-4: a pip is 0.0001), display precision (digits of a
    price), units precision (0: whole units) and minimum trade size (units)."""

    name: str
    pip_location: int
    display_precision: int
    units_precision: int
    minimum_units: Decimal

    @classmethod
    def from_v20(cls, raw: Mapping[str, Any]) -> InstrumentSpec:
        return cls(str(raw["name"]), int(raw.get("pipLocation", -4)), int(raw.get("displayPrecision", 5)),
                   int(raw.get("tradeUnitsPrecision", 0)), dec(raw.get("minimumTradeSize", "1")))  # fmt: skip

    @property
    def pip(self) -> Decimal:
        return Decimal(1).scaleb(self.pip_location)


def units_for(quantity: Decimal, side: Side, spec: InstrumentSpec) -> str:
    """OANDA's signed units for ``quantity`` (positive buys, negative sells), cut down to the units precision;
    ``OrderRejectedError`` naming the instrument when nothing or less than the minimum trade size is left."""
    step = Decimal(1).scaleb(-spec.units_precision)
    units = quantity.quantize(step, rounding=ROUND_DOWN)
    if units <= 0 or units < spec.minimum_units:
        raise OrderRejectedError(
            f"{spec.name}: {quantity} units is below the minimum trade size {spec.minimum_units} "
            f"(units precision {spec.units_precision})"
        )
    return str(units if side is Side.BUY else -units)


def price_text(price: Decimal, spec: InstrumentSpec) -> str:
    """``price`` rounded to the instrument's display precision."""
    return str(price.quantize(Decimal(1).scaleb(-spec.display_precision), rounding=ROUND_HALF_EVEN))


def order_body(request: OrderRequest, spec: InstrumentSpec) -> dict[str, Any]:
    """The v20 order of ``request``: market (fill or kill) or limit (good till cancelled), our client order id as its
    client extension id."""
    body: dict[str, Any] = {
        "instrument": spec.name,
        "units": units_for(request.quantity, request.side, spec),
        "positionFill": "DEFAULT",
        "clientExtensions": {"id": request.client_order_id},
    }
    if request.order_type is OrderType.MARKET:
        return {"type": "MARKET", "timeInForce": "FOK", **body}
    if request.order_type is OrderType.LIMIT and request.limit_price is not None:
        return {"type": "LIMIT", "timeInForce": "GTC", "price": price_text(request.limit_price, spec), **body}
    raise OrderRejectedError(f"oanda broker sends market and limit orders, got {request.order_type} "
                             f"(limit price {request.limit_price})")  # fmt: skip


def fill_of(
    txn: Mapping[str, Any], client_order_id: ClientOrderId, symbol: Symbol, side: Side, *, currency: str,
    reference_price: Decimal | None, default_ts: datetime,
) -> Fill:  # fmt: skip
    """One ``ORDER_FILL`` transaction as our ``Fill``: its fee (commission, guaranteed execution fee, financing)
    in the account's currency, charged to the account's cash (never to the position: ``fee_from_units`` False)."""
    quantity, price = abs(dec(txn.get("units"))), dec(txn.get("price"))
    fee = dec(txn.get("commission")) + dec(txn.get("guaranteedExecutionFee")) - dec(txn.get("financing"))
    slippage = abs(price - reference_price) * quantity if reference_price is not None else Decimal(0)
    return Fill(client_order_id, symbol, side, quantity, price, fee, currency, slippage,
                parse_time(txn.get("time"), default_ts), fee_from_units=False)  # fmt: skip


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What v20 says of one order: its id, instrument, signed units, state (``PENDING``, ``FILLED``, ``TRIGGERED``,
    ``CANCELLED``) and its transactions (fills and cancel)."""

    order_id: str
    instrument: str
    units: Decimal
    state: str
    transactions: Sequence[Mapping[str, Any]]

    @property
    def side(self) -> Side:
        return Side.BUY if self.units > 0 else Side.SELL


def facts_from_order(order: Mapping[str, Any], transactions: Sequence[Mapping[str, Any]]) -> OrderFacts:
    """An order of ``orders/@id`` with the account's transactions since it was created (only its own are kept)."""
    order_id = str(order["id"])
    own = [t for t in transactions if str(t.get("orderID")) == order_id]
    return OrderFacts(order_id, str(order.get("instrument", "")), dec(order.get("units")), str(order.get("state")), own)


def facts_from_create(answer: Mapping[str, Any]) -> OrderFacts:
    """The answer of an order create: the order exists with the create transaction's id; a cancel transaction means
    it was cancelled at once (a fill-or-kill that could not fill, a market that is closed)."""
    create = answer.get("orderCreateTransaction") or {}
    fill, cancel = answer.get("orderFillTransaction"), answer.get("orderCancelTransaction")
    units = dec(create.get("units"))
    filled = abs(dec(fill.get("units"))) if fill else Decimal(0)
    state = "CANCELLED" if cancel else ("FILLED" if fill and filled == abs(units) else "PENDING")
    return OrderFacts(str(create.get("id")), str(create.get("instrument", "")), units, state,
                      [t for t in (fill, cancel) if t])  # fmt: skip


def report_of(
    facts: OrderFacts, client_order_id: ClientOrderId, *, currency: str, reference_price: Decimal | None,
    default_ts: datetime,
) -> BrokerReport:  # fmt: skip
    """Our report of an order: status on our state machine, every fill so far, the venue's reason when it ended
    without filling in full."""
    symbol = Symbol(symbol_of(facts.instrument))
    fills = tuple(
        fill_of(t, client_order_id, symbol, facts.side, currency=currency, reference_price=reference_price,
                default_ts=default_ts)
        for t in facts.transactions if t.get("type") == "ORDER_FILL"
    )  # fmt: skip
    filled, wanted = sum((f.quantity for f in fills), Decimal(0)), abs(facts.units)
    cancel = next((t for t in facts.transactions if t.get("type") == "ORDER_CANCEL"), None)
    why = str(cancel.get("reason") or "") if cancel else ""
    status, reason = OrderStatus.SUBMITTED, ""
    if facts.state == "PENDING" or (facts.state == "TRIGGERED" and filled < wanted):
        status = OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.SUBMITTED
    elif facts.state in ("FILLED", "TRIGGERED"):
        if filled != wanted:
            raise UnknownOrderStateError(f"oanda: {client_order_id} is FILLED for {wanted} but its fills add up to "
                                         f"{filled}")  # fmt: skip
        status = OrderStatus.FILLED
    elif facts.state == "CANCELLED":
        if why in CANCELLED_BY_REQUEST:
            status = OrderStatus.CANCELLED
        elif filled > 0 or why in EXPIRED_REASONS:
            status, reason = OrderStatus.EXPIRED, f"filled {filled} of {wanted}; rest cancelled at the venue ({why})"
        else:
            status, reason = OrderStatus.REJECTED, f"cancelled by OANDA at once: {why or 'no reason given'}"
    else:
        raise UnknownOrderStateError(f"oanda order state {facts.state!r} has no meaning in our state machine")
    return BrokerReport(client_order_id, status, VenueOrderId(facts.order_id), fills, reason, symbol)


def spot_holdings(balance: Decimal, currency: str, positions: Sequence[Mapping[str, Any]]) -> dict[str, Decimal]:
    """The account as our spot-like ledger holds it: ``currency`` holds the balance, and each open position adds its
    net units to its base currency and subtracts their cost at the average price from its quote currency (unrealised
    P&L left out: the ledger books trades at their fill prices). Zero holdings are left out."""
    out: dict[str, Decimal] = {currency: balance}
    for position in positions:
        base, _, quote = str(position.get("instrument", "")).partition("_")
        for leg in ("long", "short"):
            side = position.get(leg) or {}
            units = dec(side.get("units"))
            if units:
                out[base] = out.get(base, Decimal(0)) + units
                out[quote] = out.get(quote, Decimal(0)) - units * dec(side.get("averagePrice"))
    return {ccy: amount for ccy, amount in out.items() if amount}


def financing_charges(
    transactions: Sequence[Mapping[str, Any]], currency: str, *, default_ts: datetime
) -> list[VenueCharge]:
    """The daily financing among ``transactions`` as charges of kind ``financing``, ``fee`` what the account paid in
    ``currency`` (the account's; v20 reports financing paid as a negative amount, so the fee is its negation)."""
    return [
        VenueCharge(
            str(t.get("id")), "financing", parse_time(t.get("time"), default_ts), -dec(t.get("financing")), currency
        )
        for t in transactions
        if t.get("type") == "DAILY_FINANCING"
    ]


FOREX_WEEK_CLOSE = (4, 22)  # Friday 22:00 UTC (alphaloom.ingest.calendars: the forex calendar)
FOREX_WEEK_OPEN = (6, 22)  # Sunday 22:00 UTC


def forex_next_open(at: datetime) -> datetime:
    """The next Sunday 22:00 UTC at or after ``at`` (when the forex week opens)."""
    at = at.astimezone(UTC)
    days = (FOREX_WEEK_OPEN[0] - at.weekday()) % 7
    candidate = (at + timedelta(days=days)).replace(hour=FOREX_WEEK_OPEN[1], minute=0, second=0, microsecond=0)
    return candidate if candidate >= at else candidate + timedelta(days=7)


def quote_from_pricing(venue: str, symbol: Symbol, price: Mapping[str, Any]) -> Quote:
    """A v20 ``ClientPrice`` as routing's ``Quote`` (see the module docstring); no time is no time (never now)."""

    def best(side: str) -> tuple[Decimal | None, Decimal | None]:
        buckets = price.get(side) or []
        if not buckets:
            return None, None
        top = buckets[0]
        level = dec(top.get("price"))
        size = top.get("liquidity")
        return (level if level > 0 else None), (None if size is None else dec(size))

    bid, bid_size = best("bids")
    ask, ask_size = best("asks")
    stamp = price.get("time")
    at = parse_time(stamp, datetime.min.replace(tzinfo=UTC)) if stamp else None
    tradeable = bool(price.get("tradeable", True)) and price.get("status", "tradeable") == "tradeable"
    currency = str(price.get("instrument", "")).partition("_")[2]
    return Quote(venue, symbol, bid, ask, at, currency, bid_size, ask_size, tradeable)
