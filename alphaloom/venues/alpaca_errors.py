"""The one table from Alpaca's errors (alpaca-py ``APIError`` by HTTP status, and ``requests``' network errors) to
AlphaLoom's (``alphaloom.errors``), used by the price and news ingest and the Alpaca broker alike. It gives each error
the same operational meaning as the ccxt table (``alphaloom.venues.ccxt_errors``):

- network trouble (no answer, a dropped connection, 429, 5xx) is temporary: retry later on a read, outcome unknown on a
  send (the order may have reached the venue: look it up by client order id, never resend blindly);
- a refusal (400, 403 such as insufficient buying power, 422 such as an invalid quantity, 401 bad keys) is a rejection
  on a send and a venue error on a read; an unknown symbol (404) in the ingest is the configuration's mistake;
- anything else is a venue error (outcome unknown on a send).

Answers that are not errors are handled by the caller before the table: 404 on a lookup (the venue does not have the
order), a duplicate client order id on a send (``is_duplicate_id``: the order may exist, look it up).
"""

from __future__ import annotations

from collections.abc import Iterator
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


class Call(Enum):
    """What the failed call was doing: the column of the table."""

    INGEST = "ingest"
    READ = "read"
    SEND = "send"


@dataclass(frozen=True, slots=True)
class Rule:
    """One row: what an error of ``kind`` becomes for each kind of call; ``advice`` is added to the message."""

    kind: str
    ingest: type[AlphaLoomError]
    read: type[AlphaLoomError]
    send: type[AlphaLoomError]
    advice: str = ""

    def error(self, call: Call) -> type[AlphaLoomError]:
        return {Call.INGEST: self.ingest, Call.READ: self.read, Call.SEND: self.send}[call]


#                kind            INGEST               READ                 SEND
TABLE: dict[str, Rule] = {r.kind: r for r in (
    Rule("network",      VenueTemporaryError, VenueTemporaryError, UnknownOrderStateError),
    Rule("unknown_symbol", ConfigError,       VenueError,          OrderRejectedError,
         advice="unknown symbol: check the configured symbol"),
    Rule("refused",      VenueError,          VenueError,          OrderRejectedError),
    Rule("auth",         VenueError,          VenueError,          OrderRejectedError,
         advice="check the keys stored with `alphaloom keys add alpaca`"),
    Rule("other",        VenueError,          VenueError,          UnknownOrderStateError),
)}  # fmt: skip


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an alpaca-py ``APIError`` (None for anything else)."""
    from alpaca.common.exceptions import APIError

    if isinstance(exc, APIError):
        status = exc.status_code
        return int(status) if status is not None else None
    return None


def kind_of(exc: BaseException) -> str:
    """The table's row for ``exc``."""
    import requests

    if isinstance(exc, requests.RequestException):
        return "network"
    status = status_of(exc)
    if status is None:
        return "other"
    if status == 429 or status >= 500:
        return "network"
    if status == 401:
        return "auth"
    if status == 404:
        return "unknown_symbol"
    if status in (400, 403, 422):
        return "refused"
    return "other"


def is_temporary(exc: BaseException) -> bool:
    """Network trouble or an overloaded venue: the request may or may not have been acted on."""
    return kind_of(exc) == "network"


def is_not_found(exc: BaseException) -> bool:
    return status_of(exc) == 404


def message_of(exc: BaseException) -> str:
    """Alpaca's own message (its JSON ``message`` when there is one), else the exception's text."""
    from alpaca.common.exceptions import APIError

    if isinstance(exc, APIError):
        try:
            return f"HTTP {exc.status_code} {exc.code}: {exc.message}"
        except (ValueError, KeyError, TypeError):
            return f"HTTP {exc.status_code}: {exc}"
    return f"{type(exc).__name__}: {exc}"


def is_duplicate_id(exc: BaseException) -> bool:
    """The venue refused a create because the client order id is already in use (422 "client_order_id must be
    unique")."""
    return status_of(exc) == 422 and "client_order_id must be unique" in str(exc).lower()


def venue_error(exc: BaseException, call: Call, context: str) -> AlphaLoomError:
    """Our error for ``exc`` raised by a ``call``: ``"<context>: <Alpaca's message>"`` (and the row's advice)."""
    rule = TABLE[kind_of(exc)]
    advice = f" ({rule.advice})" if rule.advice else ""
    return rule.error(call)(f"{context}: {message_of(exc)}{advice}")


def vendor_errors() -> tuple[type[BaseException], ...]:
    """What the table translates: alpaca-py's ``APIError`` and ``requests``' errors."""
    import requests
    from alpaca.common.exceptions import APIError

    return (APIError, requests.RequestException)


@contextmanager
def translated(call: Call, context: str) -> Iterator[None]:
    """Run the block with every Alpaca error it raises translated through the table (``venue_error``)."""
    try:
        yield
    except vendor_errors() as exc:
        raise venue_error(exc, call, context) from exc
