"""What runs on each new bar between decision runs, for every account (or one): protective exits checked against the
newest bar known at ``at`` (``execution.safety.protective``), then the TWAP/iceberg slices due by ``at`` sent
(``execution.algos.release``).

Each account is handled in its own transaction with its own broker; an account whose broker cannot be built (a live
account without stored credentials) is counted in ``unprotected`` and skipped, so the others are still guarded.

A slice is an order leaving later than its decision, so at release it passes what a fresh order passes: the
portfolio risk gate (``gate``: drawdown halt, exposure, VaR; the flows build it from ``agents.risk.gate``) besides the
kill switch, arming and hard limits. A live or shadow account's slices go only through a trading session
(``execution.accounts.session.open_session``): the account is reconciled with its venue first, and when that fails or
leaves differences, no slice goes to that venue this pass (counted in ``slices_held``; the refusal is recorded as for a
decision run). Protective exits are not held back: they only reduce risk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Engine, text

from alphaloom.domain import AccountId
from alphaloom.settings import Settings
from execution.accounts.registry import LIVE_MODES, AccountMode
from execution.accounts.session import open_session, release_in_session
from execution.algos.release import ReleaseResult, release_due_children
from execution.algos.schedule import accounts_with_due_slices
from execution.brokers.factory import broker_for_account
from execution.orders.outcomes import ExecutionResult
from execution.orders.send_context import SliceGate
from execution.safety.protective import check_exits


@dataclass
class SweepTotals:
    accounts: int = 0
    exits_sent: int = 0
    unprotected: int = 0
    slices_sent: int = 0
    slices_held: int = 0  # accounts whose due slices were held back: reconciliation failed or left differences

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def sweep_accounts(
    engine: Engine,
    settings: Settings,
    *,
    run_id: str,
    at: datetime,
    gate: SliceGate,
    account: AccountId | None = None,
) -> SweepTotals:
    totals = SweepTotals()
    with engine.connect() as conn:
        names: Sequence[str] = conn.execute(
            text("select distinct account from audit.protective_exits where status = 'active' "
                 "and (cast(:a as text) is null or account = :a) order by 1"), {"a": account},
        ).scalars().all()  # fmt: skip
    guarded = [AccountId(name) for name in names]
    for name in guarded:
        result = _for_account(engine, settings, name, totals, lambda conn, broker, n=name: check_exits(
            conn, broker=broker, settings=settings, run_id=run_id, as_of=at, account=n))  # fmt: skip
        if result is not None:
            totals.accounts += 1
            totals.exits_sent += result.broker_submits
    with engine.connect() as conn:
        due = accounts_with_due_slices(conn, at, account)
        rows = conn.execute(text("select id, mode from audit.accounts where id = any(:a)"), {"a": due}).all()
        modes: dict[str, AccountMode] = {row.id: AccountMode(row.mode) for row in rows}
    for name in due:
        if modes.get(name) in LIVE_MODES:
            released: ExecutionResult | ReleaseResult | None = _release_live(
                engine, settings, name, totals, run_id=run_id, at=at, gate=gate
            )
        else:
            released = _for_account(engine, settings, name, totals, lambda conn, broker, n=name: release_due_children(
                conn, broker, at, settings=settings, run_id=run_id, account=n, gate=gate))  # fmt: skip
        if released is not None:
            totals.slices_sent += released.broker_submits
    return totals


def _release_live(
    engine: Engine,
    settings: Settings,
    name: AccountId,
    totals: SweepTotals,
    *,
    run_id: str,
    at: datetime,
    gate: SliceGate,
) -> ReleaseResult | None:
    """A live or shadow account's due slices, through a session reconciled with its venue first; none when the
    session may not trade (the refusal is recorded by ``open_session``)."""
    session = open_session(engine, settings, name, run_id=run_id, event_time=at)
    if session.broker is None:
        totals.unprotected += 1
        return None
    if not session.may_trade:
        totals.slices_held += 1
        return None
    with engine.begin() as conn:
        return release_in_session(conn, session, at, run_id=run_id, settings=settings, gate=gate)


def _for_account(
    engine: Engine,
    settings: Settings,
    name: AccountId,
    totals: SweepTotals,
    work: Callable[..., ExecutionResult | ReleaseResult],
) -> ExecutionResult | ReleaseResult | None:
    broker = broker_for_account(engine, settings, name)
    if broker is None:
        totals.unprotected += 1
        return None
    with engine.begin() as conn:
        return work(conn, broker)
