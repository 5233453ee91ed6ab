"""The one table from OANDA v20 failures (``OandaApiError``) to AlphaLoom's errors, used by the candle ingest and the
forex broker alike, with the operational meaning of the ccxt table (``alphaloom.venues.ccxt_errors``):

- ``INGEST``: the candle ingest's reads; ``READ``: a broker's reads and cancels; ``SEND``: a broker's order create.
- No answer (timeout, refused connection), HTTP 429 and 5xx: temporary, retry later (``VenueTemporaryError``); for a
  send the outcome is unknown (``UnknownOrderStateError``): the order may exist, look it up by client id.
- An unknown instrument: the configuration's mistake in the ingest (``ConfigError``), a refusal for a send.
- HTTP 401/403 (bad token, account not this token's) and any other 4xx (a reject reason such as
  ``INSUFFICIENT_MARGIN``, ``MARKET_HALTED``, ``UNITS_PRECISION_EXCEEDED``): a refusal for a send
  (``OrderRejectedError``), a venue error otherwise.
- Anything else: a venue error (unknown outcome for a send).

Rows are checked top to bottom; the first whose predicate holds gives the error. Answers that are not errors are
handled by the caller before the table: ``is_not_found`` (the order does not exist: a lookup's "never saw it") and
``is_duplicate_id`` (``CLIENT_ORDER_ID_ALREADY_EXISTS``: the order may exist, look it up).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum

from alphaloom.errors import (
    AlphaLoomError,
    ConfigError,
    OrderRejectedError,
    UnknownOrderStateError,
    VenueError,
    VenueTemporaryError,
)
from alphaloom.venues.oanda_client import OandaApiError

NOT_FOUND_CODES = frozenset({"ORDER_DOESNT_EXIST", "NO_SUCH_ORDER"})
DUPLICATE_CODES = frozenset({"CLIENT_ORDER_ID_ALREADY_EXISTS"})
INSTRUMENT_CODES = frozenset({"INSTRUMENT_UNKNOWN", "INVALID_INSTRUMENT", "INSTRUMENT_NOT_TRADEABLE"})


class Call(Enum):
    """What the failed v20 call was doing: the column of the table."""

    INGEST = "ingest"
    READ = "read"
    SEND = "send"


def is_temporary(exc: OandaApiError) -> bool:
    """No answer, rate limited, or OANDA unavailable: the request may succeed a moment later."""
    return exc.status is None or exc.status == 429 or exc.status >= 500


def _instrument(exc: OandaApiError) -> bool:
    return exc.code in INSTRUMENT_CODES or (exc.status == 400 and "instrument" in exc.message.lower())


def _auth(exc: OandaApiError) -> bool:
    return exc.status in (401, 403)


def _client_error(exc: OandaApiError) -> bool:
    return exc.status is not None and 400 <= exc.status < 500


def _anything(exc: OandaApiError) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Rule:
    """One row: when ``applies`` holds, what the failure becomes for each kind of call; ``advice`` is added."""

    name: str
    applies: Callable[[OandaApiError], bool]
    ingest: type[AlphaLoomError]
    read: type[AlphaLoomError]
    send: type[AlphaLoomError]
    advice: str = ""

    def error(self, call: Call) -> type[AlphaLoomError]:
        return {Call.INGEST: self.ingest, Call.READ: self.read, Call.SEND: self.send}[call]


# Checked top to bottom.   failure                        INGEST               READ                 SEND
TABLE: tuple[Rule, ...] = (
    Rule("temporary", is_temporary,       VenueTemporaryError, VenueTemporaryError, UnknownOrderStateError),
    Rule("instrument", _instrument,       ConfigError,         VenueError,          OrderRejectedError,
         advice="unknown instrument: check the configured symbol"),
    Rule("authentication", _auth,         VenueError,          VenueError,          OrderRejectedError,
         advice="check the token and account id stored by `alphaloom keys add oanda`"),
    Rule("refused", _client_error,        VenueError,          VenueError,          OrderRejectedError),
    Rule("other", _anything,              VenueError,          VenueError,          UnknownOrderStateError),
)  # fmt: skip


def rule_for(exc: OandaApiError) -> Rule:
    """The table's row for ``exc``: the first that applies."""
    return next(rule for rule in TABLE if rule.applies(exc))


def venue_error(exc: OandaApiError, call: Call, context: str) -> AlphaLoomError:
    """Our error for ``exc`` raised by a ``call``, its message ``"<context>: <v20 failure>"`` (and the row's
    advice); raise it ``from exc``."""
    rule = rule_for(exc)
    advice = f" ({rule.advice})" if rule.advice else ""
    return rule.error(call)(f"{context}: {exc}{advice}")


@contextmanager
def translated(call: Call, context: str) -> Iterator[None]:
    """Run the block with every ``OandaApiError`` translated through the table."""
    try:
        yield
    except OandaApiError as exc:
        raise venue_error(exc, call, context) from exc


def is_not_found(exc: OandaApiError) -> bool:
    """OANDA has no order under the id asked about (a lookup's or cancel's answer, not a failure)."""
    return exc.status == 404 and (exc.code in NOT_FOUND_CODES or not exc.code)


def is_duplicate_id(exc: OandaApiError) -> bool:
    """OANDA refused a create because the client order id is already in use: the order may exist."""
    return exc.code in DUPLICATE_CODES
