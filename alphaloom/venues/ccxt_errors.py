"""The one table from ccxt's exceptions to AlphaLoom's (``alphaloom.errors``), used by the price ingest and the live
broker alike.

What a ccxt error means depends on what the call was doing, so the table has one column per kind of call (``Call``):

- ``INGEST``: the price ingest's reads of the configured series (markets, venue time, candles);
- ``READ``: a broker's reads and cancels (markets, order lookups, history, open orders, balances, tickers, books);
- ``SEND``: a broker's ``create_order``.

Rows (``TABLE``) are checked top to bottom; the first ccxt class the exception is an instance of gives the error, so a
row covers the subclasses not listed above it and the last row, ``BaseError``, everything else. In short: network
trouble is temporary (unknown outcome for a send); a refusal (bad symbol, invalid order, funds, bad request,
authentication) is a rejection for a send and a venue error for a read, except that an unknown symbol in the ingest is
the configuration's mistake; anything else is a venue error (unknown outcome for a send).

``TEMPORARY`` (``NetworkError``) is also what callers act on before translating: the ingest retries it with backoff,
the broker looks an order up by client id after it (the request may have reached the venue), never resending blindly.
Outcomes that are answers rather than errors are handled by the caller before the table: ``OrderNotFound`` on a lookup
or cancel (the venue does not have the order), a duplicate client id on a send (``is_duplicate_id``: the order may
exist, look it up).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum

import ccxt

from alphaloom.errors import (
    AlphaLoomError,
    ConfigError,
    OrderRejectedError,
    UnknownOrderStateError,
    VenueError,
    VenueTemporaryError,
)

# ccxt's own hierarchy puts RateLimitExceeded, DDoSProtection, ExchangeNotAvailable, OnMaintenance, InvalidNonce and
# RequestTimeout under NetworkError: trouble on the way, the venue may be fine a moment later.
TEMPORARY: tuple[type[ccxt.BaseError], ...] = (ccxt.NetworkError,)


class Call(Enum):
    """What the failed ccxt call was doing: the column of the table."""

    INGEST = "ingest"
    READ = "read"
    SEND = "send"


@dataclass(frozen=True, slots=True)
class Rule:
    """One row: what ``vendor`` (and its subclasses not listed above it) becomes for each kind of call; ``advice`` is
    added to the message."""

    vendor: type[ccxt.BaseError]
    ingest: type[AlphaLoomError]
    read: type[AlphaLoomError]
    send: type[AlphaLoomError]
    advice: str = ""

    def error(self, call: Call) -> type[AlphaLoomError]:
        return {Call.INGEST: self.ingest, Call.READ: self.read, Call.SEND: self.send}[call]


# Checked top to bottom.          ccxt class             INGEST               READ                 SEND
TABLE: tuple[Rule, ...] = (
    Rule(ccxt.NetworkError,        VenueTemporaryError, VenueTemporaryError, UnknownOrderStateError),
    Rule(ccxt.BadSymbol,           ConfigError,         VenueError,          OrderRejectedError,
         advice="unknown symbol: check the configured symbol"),
    Rule(ccxt.InvalidOrder,        VenueError,          VenueError,          OrderRejectedError),
    Rule(ccxt.InsufficientFunds,   VenueError,          VenueError,          OrderRejectedError),
    Rule(ccxt.BadRequest,          VenueError,          VenueError,          OrderRejectedError),
    # also PermissionDenied and AccountSuspended, AuthenticationErrors in ccxt
    Rule(ccxt.AuthenticationError, VenueError,          VenueError,          OrderRejectedError),
    Rule(ccxt.BaseError,           VenueError,          VenueError,          UnknownOrderStateError),
)  # fmt: skip


def rule_for(exc: ccxt.BaseError) -> Rule:
    """The table's row for ``exc``: the first whose ccxt class it is an instance of."""
    return next(rule for rule in TABLE if isinstance(exc, rule.vendor))


def error_for(exc: ccxt.BaseError, call: Call) -> type[AlphaLoomError]:
    """Our error class for ``exc`` raised by a ``call``."""
    return rule_for(exc).error(call)


def venue_error(exc: ccxt.BaseError, call: Call, context: str) -> AlphaLoomError:
    """Our error for ``exc`` raised by a ``call``, its message ``"<context>: <ccxt class>: <ccxt message>"`` (and the
    row's advice); raise it ``from exc``."""
    rule = rule_for(exc)
    advice = f" ({rule.advice})" if rule.advice else ""
    return rule.error(call)(f"{context}: {type(exc).__name__}: {exc}{advice}")


@contextmanager
def translated(call: Call, context: str) -> Iterator[None]:
    """Run the block with every ccxt error it raises translated through the table (``venue_error``)."""
    try:
        yield
    except ccxt.BaseError as exc:
        raise venue_error(exc, call, context) from exc


def is_duplicate_id(exc: BaseException) -> bool:
    """The venue refused a create because the client order id is already in use (ccxt ``DuplicateOrderId``, or
    binance's -2010 answer "Duplicate order sent." that ccxt raises as a plain ``InvalidOrder``)."""
    return isinstance(exc, ccxt.DuplicateOrderId) or (
        isinstance(exc, ccxt.InvalidOrder) and "duplicate order" in str(exc).lower()
    )
