"""Flow: on each new bar, guard every account's stop-loss and take-profit levels between decision runs, and send the
TWAP slices that have come due since."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow

from agents.risk.gate import portfolio_gate
from alphaloom.domain import AccountId, require_utc
from alphaloom.settings import get_settings
from execution.accounts.sweep import sweep_accounts
from flows._alerts import alert_on_failure
from flows._audit import audited_run


@flow(name="protect_positions", on_failure=[alert_on_failure])
def protect_positions(as_of: datetime | None = None, account: str | None = None) -> dict[str, int]:
    """Check the active protective exits of every account (or only ``account``) against the newest bar known at ``as_of`` (default: now)
    and submit the exits that bars touched; an account whose broker cannot be built (no credentials) is counted in
    ``unprotected`` and fails the run, since its positions are not guarded. Then every account's TWAP slices due by
    ``at`` are sent (``execution.algos.release``; ``slices_sent``), each through the portfolio risk gate at ``at``; a live
    or shadow account's only after it reconciled cleanly with its venue (else ``slices_held``)."""
    at = require_utc(as_of, "as_of") if as_of is not None else datetime.now(UTC)
    with audited_run("protect_positions", {"as_of": at.isoformat(), "account": account}) as (engine, run_id):
        settings = get_settings()
        totals = sweep_accounts(engine, settings, run_id=run_id, at=at, account=None if account is None else AccountId(account),
                                gate=portfolio_gate(settings))  # fmt: skip
        if totals.unprotected:
            raise RuntimeError(
                f"{totals.unprotected} account(s) with protective exits or due TWAP slices have no usable broker"
            )
    return totals.as_dict()
