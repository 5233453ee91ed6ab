"""Writes verdicts to ``audit.risk_checks``: one row per check with its numbers, approved or denied."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection

from agents.risk.verdict import RiskVerdict
from alphaloom.db.batch import insert_rows
from alphaloom.domain import OrderIntent

RISK_CHECK_COLUMNS = ("run_id", "decision_id", "account", "symbol", "check_name", "approved", "reason", "numbers")


def check_name(verdict: RiskVerdict, intent: OrderIntent) -> str:
    """The recorded name: the rule's, suffixed ``[leg n]`` for legs after the first."""
    return verdict.check_name if intent.leg == 0 else f"{verdict.check_name}[leg {intent.leg}]"


def record_verdicts(conn: Connection, run_id: str, intent: OrderIntent, verdicts: Sequence[RiskVerdict]) -> int:
    """Insert one ``audit.risk_checks`` row per verdict, in one statement (a rerun of the same decision adds
    nothing)."""
    rows = [
        (run_id, intent.decision_id, intent.account, intent.symbol, check_name(v, intent), v.approved, v.reason,
         json.dumps(v.numbers))
        for v in verdicts
    ]  # fmt: skip
    insert_rows(conn, "audit.risk_checks", RISK_CHECK_COLUMNS, rows, casts={7: "jsonb"},
                suffix="on conflict (decision_id, check_name) do nothing")  # fmt: skip
    return len(rows)
