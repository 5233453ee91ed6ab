"""The equity marks' repository (``audit.equity_marks``: an account's equity in its base currency at each decision
time): the upsert the risk context writes, and the reads of the drawdown peak, the daily-loss guard and the console's
equity chart. Every function takes the caller's connection (a mark is written in the decision's transaction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, text


def upsert_marks(conn: Connection, rows: Sequence[Mapping[str, object]]) -> None:
    """Upsert marks given as ``{"a": account, "t": as_of, "e": equity}`` (a later mark at the same time replaces the
    earlier one)."""
    if rows:
        conn.execute(
            text(
                """insert into audit.equity_marks (account, as_of, equity) values (:a, :t, :e)
                   on conflict (account, as_of) do update set equity = excluded.equity"""
            ),
            list(rows),
        )


def peak_equity(conn: Connection, account: str, as_of: datetime) -> Decimal | None:
    """The highest mark of ``account`` at or before ``as_of``; None when it has none."""
    peak: Decimal | None = conn.execute(
        text("select max(equity) from audit.equity_marks where account = :a and as_of <= :t"),
        {"a": account, "t": as_of},
    ).scalar_one()
    return peak


def day_marks(
    conn: Connection, account: str, day_start: datetime, at: datetime
) -> tuple[Decimal | None, Decimal | None]:
    """(the first mark from ``day_start`` to ``at``, the latest mark at or before ``at``), None where there is none."""
    row = conn.execute(
        text(
            """select (select equity from audit.equity_marks where account = :a and as_of >= :d and as_of <= :t
                       order by as_of limit 1) as first,
                      (select equity from audit.equity_marks where account = :a and as_of <= :t
                       order by as_of desc limit 1) as last"""
        ),
        {"a": account, "d": day_start, "t": at},
    ).one()
    return (None if row.first is None else Decimal(row.first), None if row.last is None else Decimal(row.last))


def equity_history(conn: Connection, account: str, window_seconds: int | None) -> list[tuple[datetime, float]]:
    """``account``'s marks in time order: all of them, or those within ``window_seconds`` of its newest mark."""
    rows = conn.execute(
        text(
            """select as_of, equity from audit.equity_marks where account = :a
               and (cast(:w as interval) is null
                    or as_of >= (select max(as_of) from audit.equity_marks where account = :a) - cast(:w as interval))
               order by as_of"""
        ),
        {"a": account, "w": None if window_seconds is None else f"{window_seconds} seconds"},
    ).all()
    return [(r.as_of, float(r.equity)) for r in rows]
