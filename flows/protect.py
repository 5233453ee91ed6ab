"""Flow: on each new bar, guard every account's stop-loss and take-profit levels between decision runs, and send the
TWAP slices that have come due since."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow
from sqlalchemy import text

from alphaloom.domain import require_utc
from alphaloom.settings import get_settings
from execution.brokers.factory import broker_for_account
from execution.protective import check_exits
from execution.release import release_due_children
from execution.schedule import accounts_with_due_slices
from flows._alerts import alert_on_failure
from flows._audit import audited_run


@flow(name="protect_positions", on_failure=[alert_on_failure])
def protect_positions(as_of: datetime | None = None, account: str | None = None) -> dict[str, int]:
    """Check the active protective exits of every account (or only ``account``) against the newest bar known at ``as_of`` (default: now)
    and submit the exits that bars touched; an account whose broker cannot be built (no credentials) is counted in
    ``unprotected`` and fails the run, since its positions are not guarded. Then every account's TWAP slices due by
    ``at`` are sent (``execution.release``; ``slices_sent``)."""
    settings = get_settings()
    at = require_utc(as_of, "as_of") if as_of is not None else datetime.now(UTC)
    totals = {"accounts": 0, "exits_sent": 0, "unprotected": 0, "slices_sent": 0}
    with audited_run("protect_positions", {"as_of": at.isoformat(), "account": account}) as (engine, run_id):
        with engine.connect() as conn:
            accounts = conn.execute(
                text("select distinct account from audit.protective_exits where status = 'active' "
                     "and (cast(:a as text) is null or account = :a) order by 1"), {"a": account},
            ).scalars().all()  # fmt: skip
        for name in accounts:
            broker = broker_for_account(engine, settings, name)
            if broker is None:
                totals["unprotected"] += 1
                continue
            with engine.begin() as conn:
                result = check_exits(conn, broker=broker, settings=settings, run_id=run_id, as_of=at, account=name)
            totals["accounts"] += 1
            totals["exits_sent"] += result.broker_submits
        with engine.connect() as conn:
            due = accounts_with_due_slices(conn, at, account)
        for name in due:
            broker = broker_for_account(engine, settings, name)
            if broker is None:
                totals["unprotected"] += 1
                continue
            with engine.begin() as conn:
                released = release_due_children(conn, broker, at, settings=settings, run_id=run_id, account=name)
            totals["slices_sent"] += released.broker_submits
        if totals["unprotected"]:
            raise RuntimeError(
                f"{totals['unprotected']} account(s) with protective exits or due TWAP slices have no usable broker"
            )
    return totals
