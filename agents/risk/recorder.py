"""Writes verdicts to ``audit.risk_checks``: one row per check with its numbers, approved or denied."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection, text

from agents.risk.verdict import RiskVerdict
from alphaloom.domain import OrderIntent


def check_name(verdict: RiskVerdict, intent: OrderIntent) -> str:
    """The recorded name: the rule's, suffixed ``[leg n]`` for legs after the first."""
    return verdict.check_name if intent.leg == 0 else f"{verdict.check_name}[leg {intent.leg}]"


def record_verdicts(conn: Connection, run_id: str, intent: OrderIntent, verdicts: Sequence[RiskVerdict]) -> int:
    """Insert one ``audit.risk_checks`` row per verdict (a rerun of the same decision adds nothing)."""
    rows = [
        {
            "run_id": run_id,
            "decision_id": intent.decision_id,
            "account": intent.account,
            "symbol": intent.symbol,
            "check_name": check_name(v, intent),
            "approved": v.approved,
            "reason": v.reason,
            "numbers": json.dumps(v.numbers),
        }
        for v in verdicts
    ]
    if rows:
        conn.execute(
            text(
                """insert into audit.risk_checks (run_id, decision_id, account, symbol, check_name, approved, reason,
                                                  numbers)
                   values (:run_id, :decision_id, :account, :symbol, :check_name, :approved, :reason,
                           cast(:numbers as jsonb))
                   on conflict (decision_id, check_name) do nothing"""
            ),
            rows,
        )
    return len(rows)
