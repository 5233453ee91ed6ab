"""Run locks: at most one decision run per account at a time, across processes and machines sharing the database.

A PostgreSQL session-level advisory lock, held on a dedicated connection for the whole run. Its key space
(``alphaloom:decision-run:<account>``) is separate from the per-order transaction lock execution takes
(``alphaloom:account:<account>``), so a run holding this lock never blocks its own orders.

Chosen behaviour: a second run for the same account does not queue behind the first. It waits at most
``wait_seconds`` (default 0: not at all) and then raises ``RunInProgressError`` ("another decision run for account X
is in progress"), so the flow run fails visibly instead of deciding twice; the next schedule tick tries again.
A crashed holder's lock is released by PostgreSQL when its connection ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from alphaloom.errors import RunInProgressError


def decision_lock_key(account: str) -> str:
    return f"alphaloom:decision-run:{account}"


@contextmanager
def account_run_lock(engine: Engine, account: str, *, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the decision-run lock of ``account`` for the block; raise ``RunInProgressError`` when it is taken."""
    key = decision_lock_key(account)
    conn = engine.connect()
    try:
        if wait_seconds > 0:
            # lock_timeout bounds the wait for any lock, advisory ones included.
            conn.execute(text("select set_config('lock_timeout', :t, false)"), {"t": f"{int(wait_seconds * 1000)}ms"})
            try:
                conn.execute(text("select pg_advisory_lock(hashtextextended(:k, 0))"), {"k": key})
                acquired = True
            except OperationalError:
                conn.rollback()
                acquired = False
            conn.execute(text("select set_config('lock_timeout', '0', false)"))
        else:
            acquired = bool(
                conn.execute(text("select pg_try_advisory_lock(hashtextextended(:k, 0))"), {"k": key}).scalar()
            )
        conn.commit()  # the lock is session-level: it outlives this transaction, and the connection stays idle
        if not acquired:
            waited = f" (waited {wait_seconds:g} s)" if wait_seconds > 0 else ""
            raise RunInProgressError(f"another decision run for account {account!r} is in progress{waited}")
        try:
            yield
        finally:
            conn.execute(text("select pg_advisory_unlock(hashtextextended(:k, 0))"), {"k": key})
            conn.commit()
    finally:
        conn.close()


def lock_held(engine: Engine, account: str) -> bool:
    """Whether some session holds the decision-run lock of ``account`` now (for health checks and tests)."""
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    """select exists (select 1 from pg_locks where locktype = 'advisory' and granted
                       and ((classid::bigint << 32) | objid::bigint) = hashtextextended(:k, 0))"""
                ),
                {"k": decision_lock_key(account)},
            ).scalar()
        )
