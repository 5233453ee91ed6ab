"""The submit journal: a write-ahead record of every submit attempt (``audit.submit_attempts``), committed on its own
connection *before* the broker is called.

Why: execution records an order in the caller's transaction; a crash between the venue accepting an order and that
transaction committing leaves no audit row. The journal survives it, and an attempt with no audit order means
"outcome unknown": the order is looked up at the venue by client order id before anything is resent.

The attempt carries the order as sent (``details``: symbol, side, quantity, prices, decision id, leg, parent, run,
event time, timeframe), so reconciliation (``execution.accounts.reconcile``) can look every orphaned attempt up at its
venue and book what the venue has, even when the decision that sent it was never committed and is never recomputed (a
later run at another ``as_of``). An attempt reconciliation settled is marked ``resolved_at`` with its
``resolution``: ``booked`` (the venue had it; now in ``audit.orders``) or ``absent`` (the venue confirmed it never saw
it).

Where the attempt is committed follows the venue (``journal_apart``): for a venue whose book outlives a failed
caller (a real venue, the Postgres paper venue, an in-memory one by default) on a connection of its own, before the
submit; for a replay's venue (``InMemoryVenue(outlives_caller=False)``) in the caller's transaction, written by the
statement that records the order (``execution.orders.store.NewOrder.journal``): the replay stops at a step whose transaction failed and drops its venue with it, so no attempt is ever
looked up there, and a replay pays no pooled connection per order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from alphaloom.domain import AccountId, ClientOrderId


@dataclass(frozen=True, slots=True)
class Attempt:
    """A journaled attempt with no order in ``audit.orders`` that reconciliation has not settled yet."""

    client_order_id: ClientOrderId
    account: AccountId
    venue: str
    attempted_at: datetime
    details: Mapping[str, Any] | None


def was_attempted(conn: Connection, client_order_id: ClientOrderId) -> bool:
    return (
        conn.execute(
            text("select 1 from audit.submit_attempts where client_order_id = :c"), {"c": client_order_id}
        ).first()
        is not None
    )


def journal_apart(broker: object) -> bool:
    """Whether ``broker``'s attempts are committed on a connection of their own (see the module docstring): yes
    unless its venue says its book does not outlive a failed caller (``venue_outlives_caller``)."""
    return bool(getattr(broker, "venue_outlives_caller", True))


def record_attempt(
    conn: Connection,
    client_order_id: ClientOrderId,
    account: AccountId,
    venue: str,
    details: Mapping[str, Any] | None = None,
    *,
    apart: bool = True,
) -> None:
    """Commit the attempt now, on a separate connection of the same engine (the caller's transaction may roll back);
    ``apart`` False (``journal_apart``: a replay's venue): on ``conn``, in the caller's transaction.

    Apart, the insert runs in autocommit: it is its own transaction, durable when this returns, in one round trip. An
    attempt sent again (reconciliation had settled the earlier one as absent) is open again until settled."""
    if not apart:
        _insert_attempt(conn, client_order_id, account, venue, details)
        return
    with conn.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as own:
        _insert_attempt(own, client_order_id, account, venue, details)


def _insert_attempt(
    conn: Connection, client_order_id: ClientOrderId, account: AccountId, venue: str, details: Mapping[str, Any] | None
) -> None:
    conn.execute(
        text(
            """insert into audit.submit_attempts (client_order_id, account, venue, details)
               values (:c, :a, :v, cast(:d as jsonb))
               on conflict (client_order_id) do update
               set resolved_at = null, resolution = null,
                   details = coalesce(excluded.details, audit.submit_attempts.details)"""
        ),
        {"c": client_order_id, "a": account, "v": venue,
         "d": None if details is None else json.dumps(details, default=str)},
    )  # fmt: skip


def orphaned_attempts(conn: Connection, account: AccountId, venue: str) -> list[Attempt]:
    """``account``'s attempts at ``venue`` that have no order and were not settled yet, oldest first."""
    rows = conn.execute(
        text(
            """select a.client_order_id, a.account, a.venue, a.attempted_at, a.details from audit.submit_attempts a
               where a.account = :a and a.venue = :v and a.resolved_at is null
                 and not exists (select 1 from audit.orders o where o.client_order_id = a.client_order_id)
               order by a.attempted_at, a.client_order_id"""
        ),
        {"a": account, "v": venue},
    ).all()
    return [Attempt(ClientOrderId(r.client_order_id), r.account, r.venue, r.attempted_at, r.details) for r in rows]


def resolve_attempt(conn: Connection, client_order_id: ClientOrderId, resolution: str) -> None:
    conn.execute(
        text("update audit.submit_attempts set resolved_at = now(), resolution = :r where client_order_id = :c"),
        {"c": client_order_id, "r": resolution},
    )
