"""The submit journal: a write-ahead record of every submit attempt (``audit.submit_attempts``), committed on its own
connection *before* the broker is called.

Why: execution records an order in the caller's transaction; a crash between the venue accepting an order and that
transaction committing leaves no audit row. The journal survives it, and an attempt with no audit order means
"outcome unknown": the order is looked up at the venue by client order id before anything is resent.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from alphaloom.domain import ClientOrderId


def was_attempted(conn: Connection, client_order_id: ClientOrderId) -> bool:
    return (
        conn.execute(
            text("select 1 from audit.submit_attempts where client_order_id = :c"), {"c": client_order_id}
        ).first()
        is not None
    )


def record_attempt(conn: Connection, client_order_id: ClientOrderId, account: str, venue: str) -> None:
    """Commit the attempt now, on a separate connection of the same engine (the caller's transaction may roll back).

    The insert runs in autocommit: it is its own transaction, durable when this returns, in one round trip."""
    with conn.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as own:
        own.execute(
            text(
                """insert into audit.submit_attempts (client_order_id, account, venue) values (:c, :a, :v)
                   on conflict (client_order_id) do nothing"""
            ),
            {"c": client_order_id, "a": account, "v": venue},
        )
