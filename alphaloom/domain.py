"""Frozen value types shared by every layer.

Prices and quantities are ``Decimal``; datetimes are timezone-aware UTC (constructors reject naive ones);
identifiers are distinct types so a decision id cannot be passed where a client order id is expected.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NewType

RunId = NewType("RunId", str)
NewsId = NewType("NewsId", str)
DecisionId = NewType("DecisionId", str)
ClientOrderId = NewType("ClientOrderId", str)
VenueOrderId = NewType("VenueOrderId", str)

_TIMEFRAMES = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400}


def timeframe_delta(timeframe: str) -> timedelta:
    """Length of one bar; raises ``ValueError`` for an unknown timeframe."""
    try:
        return timedelta(seconds=_TIMEFRAMES[timeframe])
    except KeyError:
        raise ValueError(f"unknown timeframe {timeframe!r}; expected one of {sorted(_TIMEFRAMES)}") from None


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
    text = "\x1f".join("" if p is None else str(p) for p in parts)
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


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar; ``ts`` is the open time, the bar is known at ``ts + timeframe``."""

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
        return self.ts + timeframe_delta(self.timeframe)


@dataclass(frozen=True, slots=True)
class NewsItem:
    """A story as first seen; ``first_seen_assumed`` marks a first-seen time derived from publication + latency."""

    id: NewsId
    url: str | None
    title: str
    summary: str
    published_at: datetime
    first_seen_at: datetime
    first_seen_assumed: bool
    symbols: tuple[str, ...] = ()

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
    take-profit exit (``execution.protective``), which the price band never refuses (a stop that gapped must still
    get out)."""

    decision_id: DecisionId
    account: str
    symbol: str
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
    account: str
    symbol: str
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
    account: str
    symbol: str
    side: Side
    quantity: Decimal
    status: OrderStatus
    venue_order_id: VenueOrderId | None = None
    limit_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    client_order_id: ClientOrderId
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    slippage: Decimal
    ts: datetime


@dataclass(frozen=True, slots=True)
class Position:
    account: str
    symbol: str
    quantity: Decimal
    avg_price: Decimal

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.avg_price


def decision_id_for(account: str, symbol: str, timeframe: str, as_of: datetime, config_version: str) -> DecisionId:
    """DESIGN §6: hash(account, symbol, timeframe, as_of, config version); a rerun yields the same id."""
    return DecisionId(stable_hash(account, symbol, timeframe, require_utc(as_of).isoformat(), config_version))


def client_order_id_for(decision_id: DecisionId, leg: int) -> ClientOrderId:
    """Deterministic client order id from (decision id, leg): a retry or restart never doubles an order."""
    return ClientOrderId(f"al-{stable_hash(decision_id, leg, length=24)}")
