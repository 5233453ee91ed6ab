"""What runs on each new bar between decision runs, for every account (or one): protective exits checked against the
newest bar known at ``at`` (``execution.protective``), then the TWAP slices due by ``at`` sent (``execution.release``).

Each account is handled in its own transaction with its own broker; an account whose broker cannot be built (a live
account without stored credentials) is counted in ``unprotected`` and skipped, so the others are still guarded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Engine, text

from alphaloom.settings import Settings
from execution.brokers.factory import broker_for_account
from execution.protective import check_exits
from execution.release import release_due_children
from execution.schedule import accounts_with_due_slices
from execution.submit import ExecutionResult


@dataclass
class SweepTotals:
    accounts: int = 0
    exits_sent: int = 0
    unprotected: int = 0
    slices_sent: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def sweep_accounts(
    engine: Engine, settings: Settings, *, run_id: str, at: datetime, account: str | None = None
) -> SweepTotals:
    totals = SweepTotals()
    with engine.connect() as conn:
        guarded = conn.execute(
            text("select distinct account from audit.protective_exits where status = 'active' "
                 "and (cast(:a as text) is null or account = :a) order by 1"), {"a": account},
        ).scalars().all()  # fmt: skip
    for name in guarded:
        result = _for_account(engine, settings, name, totals, lambda conn, broker, n=name: check_exits(
            conn, broker=broker, settings=settings, run_id=run_id, as_of=at, account=n))  # fmt: skip
        if result is not None:
            totals.accounts += 1
            totals.exits_sent += result.broker_submits
    with engine.connect() as conn:
        due = accounts_with_due_slices(conn, at, account)
    for name in due:
        result = _for_account(engine, settings, name, totals, lambda conn, broker, n=name: release_due_children(
            conn, broker, at, settings=settings, run_id=run_id, account=n))  # fmt: skip
        if result is not None:
            totals.slices_sent += result.broker_submits
    return totals


def _for_account(
    engine: Engine, settings: Settings, name: str, totals: SweepTotals, work: Callable[..., ExecutionResult]
) -> ExecutionResult | None:
    broker = broker_for_account(engine, settings, name)
    if broker is None:
        totals.unprotected += 1
        return None
    with engine.begin() as conn:
        return work(conn, broker)
