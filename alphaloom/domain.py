"""Frozen value types shared by every layer.

Prices and quantities are ``Decimal``; datetimes are timezone-aware UTC (constructors reject naive ones);
identifiers are distinct types so a decision id cannot be passed where a client order id is expected.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NewType

RunId = NewType("RunId", str)
NewsId = NewType("NewsId", str)
DecisionId = NewType("DecisionId", str)
ClientOrderId = NewType("ClientOrderId", str)
VenueOrderId = NewType("VenueOrderId", str)
# An account's id (``audit.accounts.id``) and a market's symbol as the venue spells it (``BTC/USDT``). Text from outside
# (a CLI argument, a setting, a database row) becomes one at that boundary, by ``AccountId(text)`` / ``Symbol(text)``.
AccountId = NewType("AccountId", str)
Symbol = NewType("Symbol", str)

# Every ccxt timeframe. Bars open on a fixed grid: the epoch's for minutes, hours, days and 3d (as the venues count
# them); ISO weeks (Monday 00:00 UTC, as Binance, Bybit and OKX open 1w bars) for 1w; calendar months (the 1st,
# 00:00 UTC) for 1M, whose bars last 28 to 31 days: a month bar ends at the next month's start, never after "30 days".
TIMEFRAMES = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")
_MINUTE, _HOUR, _DAY = 60, 3600, 86400
_SECONDS = {"1m": _MINUTE, "3m": 3 * _MINUTE, "5m": 5 * _MINUTE, "15m": 15 * _MINUTE, "30m": 30 * _MINUTE,
            "1h": _HOUR, "2h": 2 * _HOUR, "4h": 4 * _HOUR, "6h": 6 * _HOUR, "8h": 8 * _HOUR, "12h": 12 * _HOUR,
            "1d": _DAY, "3d": 3 * _DAY, "1w": 7 * _DAY}  # fmt: skip
MONTHLY = "1M"
_NOMINAL_MONTH_SECONDS = 30 * _DAY  # ccxt's own nominal month (parse_timeframe("1M"))
_WEEK_ORIGIN_SECONDS = 4 * _DAY  # 1970-01-05, the first Monday after the epoch


def check_timeframe(timeframe: str) -> str:
    """``timeframe`` itself when supported; else ``ValueError`` naming it and listing the supported ones."""
    if timeframe not in _SECONDS and timeframe != MONTHLY:
        raise ValueError(f"unknown timeframe {timeframe!r}; supported: {' '.join(TIMEFRAMES)}")
    return timeframe


def timeframe_delta(timeframe: str) -> timedelta:
    """The nominal length of one bar (``ValueError`` for an unknown timeframe): exact for every timeframe but ``1M``,
    which is 30 days here as in ccxt. Good for look-back windows, staleness and annualising; a bar's end is
    ``bar_close`` and the bar grid is ``bar_open``, both exact for months."""
    check_timeframe(timeframe)
    return timedelta(seconds=_SECONDS.get(timeframe, _NOMINAL_MONTH_SECONDS))


def timeframe_sql_interval(timeframe: str) -> str:
    """One bar as PostgreSQL interval text (``"3600 seconds"``, ``"1 month"``), exact in SQL ``ts + interval`` done
    in UTC (a month interval adds a calendar month)."""
    check_timeframe(timeframe)
    return "1 month" if timeframe == MONTHLY else f"{_SECONDS[timeframe]} seconds"


def bar_grid(timeframe: str) -> tuple[int, int] | None:
    """``(origin, step)`` in epoch seconds of a fixed-length timeframe's bar opens; ``None`` for months."""
    check_timeframe(timeframe)
    if timeframe == MONTHLY:
        return None
    return (_WEEK_ORIGIN_SECONDS if timeframe == "1w" else 0), _SECONDS[timeframe]


def _add_months(month_start: datetime, months: int) -> datetime:
    if (month_start.day, month_start.hour, month_start.minute, month_start.second, month_start.microsecond) != (
        1, 0, 0, 0, 0,
    ):  # fmt: skip
        raise ValueError(f"{month_start.isoformat()} is not the start of a 1M bar (the 1st, 00:00 UTC)")
    index = month_start.year * 12 + month_start.month - 1 + months
    return month_start.replace(year=index // 12, month=index % 12 + 1)


def bar_open(moment: datetime, timeframe: str) -> datetime:
    """The open time of the bar holding ``moment`` (UTC): ``moment`` floored to the timeframe's grid."""
    moment = require_utc(moment, "moment")
    grid = bar_grid(timeframe)
    if grid is None:
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    origin, step = grid
    seconds = (moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
    return datetime.fromtimestamp(origin + (seconds - origin) // step * step, UTC)


def shift_bars(bar_start: datetime, timeframe: str, bars: int) -> datetime:
    """The bar boundary ``bars`` bars after (negative: before) ``bar_start``, itself a bar boundary."""
    grid = bar_grid(timeframe)
    if grid is None:
        return _add_months(require_utc(bar_start, "bar_start"), bars)
    return bar_start + timedelta(seconds=grid[1] * bars)


def last_closed_open(moment: datetime, timeframe: str) -> datetime:
    """The open time of the newest bar closed by ``moment``: a bar opening at ``ts`` is known then exactly when
    ``ts <= last_closed_open(moment)`` (exact for months, unlike ``moment - timeframe_delta``)."""
    return shift_bars(bar_open(moment, timeframe), timeframe, -1)


def bar_close(ts: datetime, timeframe: str) -> datetime:
    """When the bar opening at ``ts`` closes and becomes known (its ``known_at``): ``ts`` + one bar, and for ``1M`` the
    start of the next calendar month (a February bar is known at March 1st)."""
    return shift_bars(ts, timeframe, 1)


def quote_currency(symbol: str, default: str) -> str:
    """The currency a symbol is priced in: ``BTC/USDT`` -> ``USDT``; ``default`` for a symbol without a quote part."""
    return symbol.split("/", 1)[1] if "/" in symbol else default


def require_utc(value: datetime, name: str = "datetime") -> datetime:
    """Return ``value`` in UTC; a naive datetime is an error, never silently assumed."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def stable_hash(*parts: object, length: int = 32) -> str:
    """A deterministic hex digest of ``parts`` (joined with an unambiguous separator)."""
    return _digest(_joined(parts), length)


def _joined(parts: Sequence[object]) -> str:
    """``stable_hash``'s text of ``parts``: each as ``str`` (None as empty), joined with the unit separator."""
    return "\x1f".join(["" if p is None else str(p) for p in parts])


def _digest(text: str, length: int = 32) -> str:
    """``stable_hash``'s digest of its text."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class Action(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"
    HOLD = "hold"


class OrderStatus(enum.StrEnum):
    NEW = "new"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


class AccountMode(enum.StrEnum):
    """How an account trades (``audit.accounts.mode``): on the paper venue, at its live venue, or at its live venue
    with the paper venue shadowing every order (``execution.brokers.shadow``)."""

    PAPER = "paper"
    LIVE = "live"
    SHADOW = "shadow"


# The modes whose orders reach a real venue: live arming, reconciliation and the decision-age guard apply.
LIVE_MODES = frozenset({AccountMode.LIVE, AccountMode.SHADOW})


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar; ``ts`` is the open time, the bar is known when it closes (``bar_close``)."""

    exchange: str
    symbol: str
    timeframe: str
    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", require_utc(self.ts, "Bar.ts"))

    @property
    def known_at(self) -> datetime:
        return bar_close(self.ts, self.timeframe)


@dataclass(frozen=True, slots=True)
class NewsItem:
    """A story as first seen; ``first_seen_assumed`` marks a first-seen time derived from publication + latency, and
    ``published_unknown`` a story its feed gave no date (``published_at`` is then the fetch time)."""

    id: NewsId
    url: str | None
    title: str
    summary: str
    published_at: datetime
    first_seen_at: datetime
    first_seen_assumed: bool
    symbols: tuple[str, ...] = ()
    published_unknown: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "published_at", require_utc(self.published_at, "NewsItem.published_at"))
        object.__setattr__(self, "first_seen_at", require_utc(self.first_seen_at, "NewsItem.first_seen_at"))


@dataclass(frozen=True, slots=True)
class Signal:
    """A strategy's view: ``strength`` in [-1, 1], negative is bearish."""

    name: str
    symbol: str
    strength: float
    reason: str

    def __post_init__(self) -> None:
        if not -1.0 <= self.strength <= 1.0:
            raise ValueError(f"Signal.strength must be in [-1, 1], got {self.strength}")


@dataclass(frozen=True, slots=True)
class AgentOpinion:
    """What one agent concluded for one symbol at ``as_of``; ``skipped`` opinions carry the reason in ``rationale``."""

    agent: str
    symbol: str
    as_of: datetime
    action: Action
    confidence: float
    rationale: str
    model: str | None = None
    prompt_hash: str | None = None
    skipped: bool = False
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What the trader wants, before execution: a signed target change in base units. ``protective``: a stop-loss or
    take-profit exit (``execution.safety.protective``), which the price band never refuses (a stop that gapped must still
    get out)."""

    decision_id: DecisionId
    account: AccountId
    symbol: Symbol
    side: Side
    quantity: Decimal
    reference_price: Decimal
    leg: int = 0
    protective: bool = False

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError(f"OrderIntent.quantity must be positive, got {self.quantity}")
        if self.reference_price <= 0:
            raise ValueError(f"OrderIntent.reference_price must be positive, got {self.reference_price}")

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.reference_price


@dataclass(frozen=True, slots=True)
class Decision:
    """The team's decision for one (account, symbol, as_of); ``intents`` is empty when it holds."""

    decision_id: DecisionId
    account: AccountId
    symbol: Symbol
    timeframe: str
    as_of: datetime
    action: Action
    score: float
    opinions: tuple[AgentOpinion, ...]
    intents: tuple[OrderIntent, ...] = ()


@dataclass(frozen=True, slots=True)
class Order:
    client_order_id: ClientOrderId
    decision_id: DecisionId
    account: AccountId
    symbol: Symbol
    side: Side
    quantity: Decimal
    status: OrderStatus
    venue_order_id: VenueOrderId | None = None
    limit_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    client_order_id: ClientOrderId
    symbol: Symbol
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    slippage: Decimal
    ts: datetime
    # The venue's fee model: a fee in the base currency comes out of the traded units (crypto venues: True), or out
    # of the account's cash of that currency (forex and stock brokers: the position is the venue's units exactly).
    fee_from_units: bool = True


@dataclass(frozen=True, slots=True)
class Position:
    account: AccountId
    symbol: Symbol
    quantity: Decimal
    avg_price: Decimal

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.avg_price


def decision_id_for(account: str, symbol: str, timeframe: str, as_of: datetime, config_version: str) -> DecisionId:
    """ARCHITECTURE §11: hash(account, symbol, timeframe, as_of, config version); a rerun yields the same id."""
    return DecisionId(stable_hash(account, symbol, timeframe, require_utc(as_of).isoformat(), config_version))


def decision_ids_for(
    account: str, symbols: Sequence[str], timeframe: str, as_of: datetime, config_version: str
) -> dict[str, DecisionId]:
    """``decision_id_for`` of each of ``symbols`` at one ``as_of`` (a step's: its time converted and written once, and
    ``stable_hash``'s text around the symbol joined once: the same text, so the same digest)."""
    at = require_utc(as_of).isoformat()
    head, tail = _joined((account, "")), _joined(("", timeframe, at, config_version))
    return {symbol: DecisionId(_digest(head + _joined((symbol,)) + tail)) for symbol in symbols}


def client_order_id_for(decision_id: DecisionId, leg: int) -> ClientOrderId:
    """Deterministic client order id from (decision id, leg): a retry or restart never doubles an order."""
    return ClientOrderId(f"al-{stable_hash(decision_id, leg, length=24)}")
