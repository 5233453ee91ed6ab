"""``raw.quarantine``: rejected input rows, kept with the reason so nothing is silently lost."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, text


@dataclass(frozen=True, slots=True)
class Rejected:
    """One rejected row or item: ``source`` names the input, ``location`` the line/item, ``reason`` the problem."""

    source: str
    location: str
    payload: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.location}: {self.reason}"


def quarantine(conn: Connection, run_id: str, rejected: Iterable[Rejected]) -> int:
    """Store rejected rows with their reasons; returns how many were stored."""
    rows = [
        {"source": r.source, "location": r.location, "payload": r.payload, "reason": r.reason, "run_id": run_id}
        for r in rejected
    ]
    if rows:
        conn.execute(
            text(
                "insert into raw.quarantine (source, location, payload, reason, run_id) "
                "values (:source, :location, :payload, :reason, :run_id)"
            ),
            rows,
        )
    return len(rows)
