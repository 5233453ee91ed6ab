"""AlphaLoom's exception hierarchy. Vendor errors (psycopg, ccxt, openai, feedparser) are translated into these at the
adapters, so callers handle one vocabulary. What each one means operationally is in its docstring::

    AlphaLoomError
    ├── ConfigError             fix the configuration; retrying will not help
    ├── DatabaseError           the database is unreachable or refused; retry later or check the server
    ├── DbtError                a dbt model, test or unit test failed, or dbt could not start; fix the node or the data
    ├── InvalidInputError       a file, row or item is malformed; it is quarantined, the rest is ingested
    │   ├── SchemaError         a whole input has the wrong shape (missing columns); nothing of it is ingested
    │   └── SourceUnavailableError  a whole input could not be fetched (dead URL, HTTP error); retry later or fix it
    ├── DataUnavailableError    the data a decision needs is not known yet at its as_of; skip this step
    ├── NotFoundError           the order or decision asked about is not in the audit trail
    ├── RunInProgressError      another decision run holds this account's lock; retry after it finishes
    ├── VenueError              a broker or exchange problem
    │   ├── VenueTemporaryError retry later with backoff
    │   ├── OrderRejectedError  the venue refused the order; needs a human if it persists
    │   └── UnknownOrderStateError  the outcome of a submit is unknown; reconcile by client order id before any resend
    ├── InvalidOrderTransitionError  an order event the state machine forbids: a bug or a venue surprise; needs a human
    └── KillSwitchEngagedError  the kill switch is on: nothing may be sent
"""

from __future__ import annotations


class AlphaLoomError(Exception):
    """Base of every error AlphaLoom raises on purpose."""


class ConfigError(AlphaLoomError):
    """The configuration is wrong or incomplete; retrying will not help."""


class DatabaseError(AlphaLoomError):
    """The database could not be reached, started or migrated; check the server, then retry."""


class DbtError(AlphaLoomError):
    """A dbt invocation failed: a model, test or unit test failed, or dbt could not start (project, profile,
    connection). ``failures`` holds ``(node, message)`` pairs; fix the node or the data, then rerun."""

    def __init__(self, command: str, failures: list[tuple[str, str]]) -> None:
        self.command, self.failures = command, failures
        detail = "; ".join(f"{node}: {message}" for node, message in failures) or "no detail from dbt"
        super().__init__(f"dbt {command} failed: {detail}")


class InvalidInputError(AlphaLoomError):
    """A row or item of an input is malformed. ``source`` names the input, ``location`` the line or item."""

    def __init__(self, source: str, location: str, reason: str) -> None:
        self.source, self.location, self.reason = source, location, reason
        super().__init__(f"{source}:{location}: {reason}")


class SchemaError(InvalidInputError):
    """A whole input has the wrong shape (e.g. missing columns); nothing of it is ingested."""


class SourceUnavailableError(InvalidInputError):
    """A whole input could not be fetched (connection refused, HTTP 404, timeout); nothing of it was read. Retry later,
    or fix the address if it persists."""


class DataUnavailableError(AlphaLoomError):
    """The data a decision needs was not known at its ``as_of``; the step is skipped, not guessed."""


class NotFoundError(AlphaLoomError):
    """The order (or decision) asked about does not exist in the audit trail."""


class RunInProgressError(AlphaLoomError):
    """Another run holds the lock for this account; nothing was done. Retry after it finishes."""


class VenueError(AlphaLoomError):
    """A broker or exchange problem."""


class VenueTemporaryError(VenueError):
    """Network trouble, rate limit or maintenance: retry later with backoff."""


class OrderRejectedError(VenueError):
    """The venue refused the order (funds, precision, minimums); needs a human if it persists."""


class UnknownOrderStateError(VenueError):
    """A submit's outcome is unknown; reconcile by client order id before anything is resent."""


class InvalidOrderTransitionError(AlphaLoomError):
    """An order was asked to move between statuses the transition table forbids (e.g. filled -> submitted).

    Nothing is recorded for the forbidden event; it points at a bug or an unexpected venue report and needs a human.
    """

    def __init__(self, current: str, target: str) -> None:
        self.current, self.target = current, target
        super().__init__(f"order status cannot go from {current!r} to {target!r}")


class KillSwitchEngagedError(AlphaLoomError):
    """The kill switch is on: no order may leave."""
