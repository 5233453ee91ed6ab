"""Fat-finger checks and account halts, enforced right before any submit.

Pure checks (``check_daily_loss``, ``check_orders_per_run``) return ``LimitBreach``es like the hard limits of
``alphaloom.guards``; the helpers around them read the state they need and record every trip in
``audit.guard_trips`` (shown by ``alphaloom trading trips``). A daily loss past the limit halts the account
(``audit.account_halts``): nothing is sent for it until an operator releases it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from alphaloom.domain import AccountId, Symbol, timeframe_delta
from alphaloom.guards import LimitBreach
from alphaloom.ops.alerts import alert


def check_daily_loss(day_start_equity: Decimal | None, equity: Decimal | None, limit: Decimal) -> LimitBreach | None:
    """A breach when equity fell by ``limit`` or more since the first mark of the day."""
    if day_start_equity is None or equity is None:
        return None
    loss = day_start_equity - equity
    if loss >= limit:
        return LimitBreach(
            "daily_loss_limit",
            f"daily loss {loss:.2f} reached the limit {limit}: account halted",
            {"day_start_equity": str(day_start_equity), "equity": str(equity), "loss": str(loss),
             "limit": str(limit)},
        )  # fmt: skip
    return None


def check_orders_per_run(orders_in_run: int, cap: int) -> LimitBreach | None:
    if orders_in_run >= cap:
        return LimitBreach(
            "max_orders_per_run",
            f"{orders_in_run} orders already sent by this decision run (cap {cap})",
            {"orders_in_run": str(orders_in_run), "cap": str(cap)},
        )
    return None


def check_decision_age(decided_at: datetime, now: datetime, *, timeframe: str, max_bars: int) -> LimitBreach | None:
    """A live or shadow send for a decision older than ``max_bars`` bars of ``timeframe`` before ``now`` (the wall
    clock): the decision was about a past bar, and its price is not today's. Pure."""
    age, limit = now - decided_at, timeframe_delta(timeframe) * max_bars
    if age <= limit:
        return None
    return LimitBreach(
        "decision_age",
        f"the decision is about {decided_at:%Y-%m-%d %H:%M} UTC, {age} before the send at {now:%Y-%m-%d %H:%M} UTC: "
        f"more than {max_bars} bars of {timeframe} (ALPHALOOM_LIVE_MAX_DECISION_AGE_BARS); a live order is never "
        "sent for a past bar",
        {"decided_at": decided_at.isoformat(), "now": now.isoformat(), "age_seconds": str(int(age.total_seconds())),
         "max_bars": str(max_bars), "timeframe": timeframe},
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class HaltState:
    halted: bool
    reason: str


def halt_state(conn: Connection, account: AccountId) -> HaltState:
    row = conn.execute(
        text("select halted, reason from audit.account_halts where account = :a order by id desc limit 1"),
        {"a": account},
    ).first()
    return HaltState(False, "never halted") if row is None else HaltState(bool(row.halted), row.reason)


def set_halt(
    conn: Connection, account: AccountId, halted: bool, reason: str, numbers: Mapping[str, Any] | None = None
) -> None:
    conn.execute(
        text(
            "insert into audit.account_halts (account, halted, reason, numbers) values (:a, :h, :r, cast(:n as jsonb))"
        ),
        {"a": account, "h": halted, "r": reason, "n": json.dumps(numbers or {}, default=str)},
    )
    if halted:
        alert("account_halt", f"account {account} halted: {reason}", {"account": account, **dict(numbers or {})})


def day_equity(conn: Connection, account: AccountId, at: datetime) -> tuple[Decimal | None, Decimal | None]:
    """(first equity mark of ``at``'s UTC day, latest mark at or before ``at``) from ``audit.equity_marks``."""
    day_start = datetime.combine(at.date(), time(0), tzinfo=at.tzinfo)
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


def orders_in_run(conn: Connection, account: AccountId, run_id: str) -> int:
    return int(
        conn.execute(
            text("select count(*) from audit.orders where account = :a and run_id = :r"), {"a": account, "r": run_id}
        ).scalar_one()
    )


def record_trip(
    conn: Connection,
    *,
    run_id: str | None,
    account: AccountId,
    guard: str,
    reason: str,
    numbers: Mapping[str, Any],
    symbol: Symbol | None = None,
    client_order_id: str | None = None,
    decision_id: str | None = None,
    alert_kind: str | None = "fat_finger",
) -> None:
    """One ``audit.guard_trips`` row, and an operator alert of ``alert_kind`` (None: the row only; a backtest
    summarises its trips once at the end instead of one alert per refusal)."""
    conn.execute(
        text(
            """insert into audit.guard_trips (run_id, account, symbol, client_order_id, decision_id, guard, reason,
                                              numbers)
               values (:r, :a, :s, :c, :d, :g, :reason, cast(:n as jsonb))"""
        ),
        {"r": run_id, "a": account, "s": symbol, "c": client_order_id, "d": decision_id, "g": guard,
         "reason": reason, "n": json.dumps(numbers, default=str)},
    )  # fmt: skip
    if alert_kind is None:
        return
    alert(alert_kind, f"{guard} tripped for {account} {symbol or ''}: {reason}".replace("  ", " "),
          {"account": account, "symbol": symbol, "guard": guard, "client_order_id": client_order_id, **dict(numbers)})  # fmt: skip


def recent_trips(conn: Connection, account: AccountId | None = None, limit: int = 20) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            """select created_at, account, symbol, guard, reason, client_order_id from audit.guard_trips
               where cast(:a as text) is null or account = :a order by id desc limit :n"""
        ),
        {"a": account, "n": limit},
    ).mappings()
    return [dict(r) for r in rows]
