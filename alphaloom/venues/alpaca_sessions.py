"""When the US stock market is open, from the exchange's own trading calendar (Alpaca's ``/v2/calendar``: one session
per trading day, holidays absent, early closes shortened). Pure: the broker reads the calendar, this judges times.

``Session(open, close)`` is one regular session in UTC; ``session_at(sessions, at)`` is the session holding ``at``
(None outside every session) and ``next_open(sessions, at)`` the first open after it (None when the calendar read does
not reach that far). ``closed_reason`` words the refusal of an order outside the session. ``extended(session)`` is the
same trading day with Alpaca's extended hours: from 04:00 New York to four hours after the regular close (20:00, or
17:00 after an early close).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from alphaloom.domain import require_utc

EXCHANGE_TZ = ZoneInfo("America/New_York")


@dataclass(frozen=True, slots=True)
class Session:
    """One regular trading session, ``[open, close)`` in UTC."""

    open: datetime
    close: datetime

    def holds(self, at: datetime) -> bool:
        return self.open <= at < self.close


def session_of(day: date, opens: time | datetime, closes: time | datetime) -> Session:
    """A calendar day's session; times without a zone are the exchange's (New York) wall clock."""

    def utc(value: time | datetime) -> datetime:
        local = value if isinstance(value, datetime) else datetime.combine(day, value)
        if local.tzinfo is None:
            local = local.replace(tzinfo=EXCHANGE_TZ)
        return local.astimezone(UTC)

    return Session(utc(opens), utc(closes))


EXTENDED_OPEN = time(4, 0)
AFTER_HOURS = timedelta(hours=4)


def extended(session: Session) -> Session:
    """The trading day of ``session`` with pre-market and after-hours trading."""
    day = session.open.astimezone(EXCHANGE_TZ).date()
    return Session(session_of(day, EXTENDED_OPEN, EXTENDED_OPEN).open, session.close + AFTER_HOURS)


def session_at(sessions: Iterable[Session], at: datetime) -> Session | None:
    """The session holding ``at``, or None."""
    at = require_utc(at, "at")
    return next((s for s in sessions if s.holds(at)), None)


def next_open(sessions: Sequence[Session], at: datetime) -> datetime | None:
    """The first session open after ``at``; None when the sessions read do not reach past it."""
    at = require_utc(at, "at")
    return min((s.open for s in sessions if s.open > at), default=None)


def closed_reason(symbol: str, at: datetime, sessions: Sequence[Session], *, kind: str = "regular") -> str:
    """Why an order of ``symbol`` at ``at`` is outside the (``kind``) session, naming the next open."""
    upcoming = next_open(sessions, at)
    when = upcoming.isoformat() if upcoming else "not within the calendar read"
    return f"{symbol}: the US stock market is closed at {at.isoformat()} (next {kind} session opens {when})"
