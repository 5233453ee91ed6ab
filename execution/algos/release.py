"""The release pass: send the TWAP slices whose time has come (``audit.scheduled_slices``), each through ``execute``.

So every slice meets what a decision's order meets: the account lock, a lookup by client id of an order already
recorded or journaled (a crash between journal and record, then a rerun: recovered, never resent), the kill switch
(a slice it stops cancels the rest of its parent's schedule), the portfolio risk gate at release time (drawdown,
exposure, VaR: the ``gate`` the flows pass), live arming, the fat-finger guards and hard limits.
A slice is priced at the newest bar close known at ``now`` (else the parent's reference price) and its slippage is
measured against its parent's arrival price. An iceberg child is due once the child before it has filled; when that
one ended otherwise (cancelled, rejected, expired; or its slice refused or cancelled) the rest of its parent's
children are cancelled with the reason, so one child at most is shown at a time. Idempotent: a released slice is ``released`` in the same transaction
that records its order, so a second pass finds nothing due.

Superseded parents: a later decision for the same account and symbol on the other side cancels the slices still
scheduled (``execute``, in the read before its order), so a sell decision is never followed by the rest of an
earlier buy's TWAP. A later decision on the same side leaves the earlier schedule running beside its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, text

from alphaloom.domain import AccountId, ClientOrderId, Symbol, last_closed_open, require_utc
from alphaloom.settings import Settings
from execution.accounts.registry import lock_account
from execution.algos.schedule import (
    ScheduledSlice,
    accounts_with_due_slices,
    cancel_parents,
    due_slices,
    order_statuses,
    pending_parents,
    schedule_of,
    stopped_parents,
)
from execution.brokers.base import Broker
from execution.orders.outcomes import ExecutionResult
from execution.orders.send_context import SliceGate
from execution.orders.venue_reports import BookingListener
from execution.submit import execute


@dataclass
class ReleaseResult:
    """What one release pass did: ``due`` slices it tried, and ``execute``'s result per account."""

    due: list[ClientOrderId] = field(default_factory=list)
    results: dict[str, ExecutionResult] = field(default_factory=dict)

    @property
    def broker_submits(self) -> int:
        return sum(r.broker_submits for r in self.results.values())


def _prices(conn: Connection, settings: Settings, symbols: list[Symbol], cutoff: datetime) -> dict[str, Decimal]:
    rows = conn.execute(
        text("""select distinct on (symbol) symbol, close from raw.ohlcv
                where exchange = :e and timeframe = :tf and symbol = any(:s) and ts <= :c
                order by symbol, ts desc"""),
        {"e": settings.exchange, "tf": settings.timeframe, "s": symbols, "c": cutoff},
    ).all()  # fmt: skip
    return {r.symbol: Decimal(r.close) for r in rows}


def release_due_children(
    conn: Connection,
    broker: Broker,
    now: datetime,
    *,
    settings: Settings,
    run_id: str,
    account: AccountId | None = None,
    last_prices: Mapping[str, Decimal] | None = None,
    gate: SliceGate | None = None,
    on_booking: BookingListener | None = None,
) -> ReleaseResult:
    """Send every TWAP slice due by ``now`` (of ``account``, or of every account: give a broker that serves them)
    through ``execute`` at event time ``now``, on the caller's connection (its transaction decides); ``gate``: the
    portfolio risk gate each slice passes first (``execute``); ``on_booking``: told of every booking of fills
    (``execute``)."""
    now = require_utc(now, "now")
    out = ReleaseResult()
    for name in accounts_with_due_slices(conn, now, account):
        lock_account(conn, name)  # before the slice rows: the order every execute takes its locks in
        slices = schedule_of(conn, pending_parents(conn, name, now))
        statuses = order_statuses(conn, sorted({s.after_client_order_id for s in slices if s.after_client_order_id}))
        stopped = stopped_parents(slices, statuses)
        for parent, why in sorted(stopped.items()):
            cancel_parents(conn, [parent], why, run_id)
        due = due_slices([s for s in slices if s.parent_client_order_id not in stopped], now, statuses)
        if not due:  # released meanwhile by a pass that held the lock first
            continue
        prices = {**_prices(conn, settings, sorted({s.intent.symbol for s in due}),
                            last_closed_open(now, settings.timeframe)), **(last_prices or {})}  # fmt: skip
        priced: list[ScheduledSlice] = [
            dataclasses.replace(
                s, intent=dataclasses.replace(s.intent, reference_price=prices.get(s.intent.symbol,
                                                                                   s.intent.reference_price))
            )
            for s in due
        ]  # fmt: skip
        out.due += [s.client_order_id for s in due]
        out.results[name] = execute(conn, [], run_id=run_id, broker=broker, settings=settings, event_time=now,
                                    last_prices=last_prices, slices=priced, gate=gate,
                                    on_booking=on_booking)  # fmt: skip
    return out
