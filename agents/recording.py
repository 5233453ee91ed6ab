"""One decision's audit rows in one statement: the ``audit.decisions`` row, its agents' outputs, its risk checks and
its lineage edges (DESIGN §3). One round trip per decision instead of one per table.

``record_decision`` inserts the decision unless it exists (``ON CONFLICT DO NOTHING``) and the other rows only when
it inserted it, so a decision recorded first by a concurrent run keeps exactly that run's rows. It writes on the
caller's connection and does not commit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from agents.risk.recorder import check_name
from agents.risk.verdict import RiskVerdict
from alphaloom.db.batch import Statement
from alphaloom.domain import OrderIntent


@dataclass(frozen=True)
class DecisionRow:
    decision_id: str
    run_id: str
    account: str
    symbol: str
    timeframe: str
    as_of: datetime
    action: str
    score: float
    config_version: str
    inputs: Mapping[str, Any]
    dbt_invocation_id: str | None = None
    git_sha: str | None = None


@dataclass(frozen=True)
class AgentOutputRow:
    agent: str
    output: Mapping[str, Any]
    model: str | None = None
    prompt_hash: str | None = None
    input_ref: Mapping[str, Any] = field(default_factory=dict)
    skipped: bool = False
    tokens: int | None = None
    latency_ms: int | None = None


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def _child_insert(st: Statement, name: str, table: str, columns: Sequence[tuple[str, str]], rows: list[tuple]) -> str:
    """``name as (insert into table (...) select ... from (values ...) where the decision was inserted)``; every
    column cast to its type, since a ``VALUES`` list outside ``INSERT`` is not typed by the target table."""
    casts = dict(enumerate(sql_type for _, sql_type in columns))
    names = ", ".join(column for column, _ in columns)
    return (
        f"{name} as (insert into {table} ({names}) select {names} from (values {st.values(rows, casts)})"
        f" as v ({names}) where exists (select 1 from d))"
    )


def record_decision(
    conn: Connection,
    decision: DecisionRow,
    *,
    outputs: Sequence[AgentOutputRow] = (),
    verdicts: Sequence[tuple[OrderIntent, Sequence[RiskVerdict]]] = (),
    lineage: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> bool:
    """Insert the decision and, when it was new, its outputs, risk checks and lineage edges (``(parent table, parent
    key)``); True when this call inserted it."""
    st = Statement()
    d = decision
    parts = [
        "d as (insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action, score,"
        " config_version, dbt_invocation_id, git_sha, inputs) values "
        + st.values(
            [(d.decision_id, d.run_id, d.account, d.symbol, d.timeframe, d.as_of, d.action, d.score, d.config_version,
              d.dbt_invocation_id, d.git_sha, _dumps(d.inputs))],
            {11: "jsonb"},
        )
        + " on conflict (decision_id) do nothing returning decision_id)"
    ]  # fmt: skip
    if outputs:
        rows = [(d.run_id, d.decision_id, o.agent, d.symbol, d.as_of, o.model, o.prompt_hash, _dumps(o.input_ref),
                 _dumps(o.output), o.skipped, o.tokens, o.latency_ms) for o in outputs]  # fmt: skip
        columns = [("run_id", "text"), ("decision_id", "text"), ("agent", "text"), ("symbol", "text"),
                   ("as_of", "timestamptz"), ("model", "text"), ("prompt_hash", "text"), ("input_ref", "jsonb"),
                   ("output", "jsonb"), ("skipped", "boolean"), ("tokens", "integer"), ("latency_ms", "integer")]  # fmt: skip
        parts.append(_child_insert(st, "a", "audit.agent_outputs", columns, rows))
    checks = [(d.run_id, intent.decision_id, intent.account, intent.symbol, check_name(v, intent), v.approved,
               v.reason, json.dumps(v.numbers)) for intent, intent_verdicts in verdicts for v in intent_verdicts]  # fmt: skip
    if checks:
        columns = [("run_id", "text"), ("decision_id", "text"), ("account", "text"), ("symbol", "text"),
                   ("check_name", "text"), ("approved", "boolean"), ("reason", "text"), ("numbers", "jsonb")]  # fmt: skip
        parts.append(_child_insert(st, "r", "audit.risk_checks", columns, checks))
    if lineage:
        rows = [(d.run_id, "audit.decisions", d.decision_id, table, _dumps(key)) for table, key in lineage]
        columns = [("run_id", "text"), ("child_table", "text"), ("child_id", "text"), ("parent_table", "text"),
                   ("parent_key", "jsonb")]  # fmt: skip
        parts.append(_child_insert(st, "l", "audit.lineage", columns, rows))
    sql = "with " + ",\n".join(parts) + "\nselect decision_id from d"
    return st.execute(conn, sql).first() is not None
