"""Fat-finger checks and account halts, enforced right before any submit.

Pure checks (``check_daily_loss``, ``check_orders_per_run``) return ``LimitBreach``es like the hard limits of
``alphaloom.guards``; the helpers around them read the state they need and record every trip in
``audit.guard_trips`` (shown by ``alphaloom trading trips``). A daily loss past the limit halts the account
(``audit.account_halts``): nothing is sent for it until an operator releases it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from alphaloom.domain import AccountId, Symbol, timeframe_delta
from alphaloom.guards import LimitBreach
from alphaloom.ops.alerts import alert
from alphaloom.records import guards as guard_records
from alphaloom.records.equity import day_marks
from alphaloom.records.guards import insert_halt, insert_trip, latest_halt


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
    row = latest_halt(conn, account)
    return HaltState(False, "never halted") if row is None else HaltState(row.halted, row.reason)


def set_halt(
    conn: Connection, account: AccountId, halted: bool, reason: str, numbers: Mapping[str, Any] | None = None
) -> None:
    insert_halt(conn, account, halted, reason, numbers or {})
    if halted:
        alert("account_halt", f"account {account} halted: {reason}", {"account": account, **dict(numbers or {})})


def day_equity(conn: Connection, account: AccountId, at: datetime) -> tuple[Decimal | None, Decimal | None]:
    """(first equity mark of ``at``'s UTC day, latest mark at or before ``at``) from ``audit.equity_marks``."""
    day_start = datetime.combine(at.date(), time(0), tzinfo=at.tzinfo)
    return day_marks(conn, account, day_start, at)


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
    insert_trip(conn, run_id=run_id, account=account, guard=guard, reason=reason, numbers=numbers, symbol=symbol,
                client_order_id=client_order_id, decision_id=decision_id)  # fmt: skip
    if alert_kind is None:
        return
    alert(alert_kind, f"{guard} tripped for {account} {symbol or ''}: {reason}".replace("  ", " "),
          {"account": account, "symbol": symbol, "guard": guard, "client_order_id": client_order_id, **dict(numbers)})  # fmt: skip


def recent_trips(conn: Connection, account: AccountId | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The newest ``limit`` guard trips (of ``account`` when given)."""
    return guard_records.recent_trips(conn, account, limit)
