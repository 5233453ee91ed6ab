"""One decision's audit rows in one statement: the ``audit.decisions`` row, its agents' outputs, its risk checks and
its lineage edges (ARCHITECTURE §8). One round trip per decision instead of one per table.

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
from alphaloom.db.json_text import jsonb_text
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
    return jsonb_text(value)


def _child_insert(
    st: Statement, name: str, table: str, columns: Sequence[tuple[str, str]], rows: list[tuple[Any, ...]]
) -> str:
    """``name as (insert into table (...) select ... from (values ...) where the decision was inserted)``; every
    column cast to its type, since a ``VALUES`` list outside ``INSERT`` is not typed by the target table."""
    casts = dict(enumerate(sql_type for _, sql_type in columns))
    names = ", ".join(column for column, _ in columns)
    return (
        f"{name} as (insert into {table} ({names}) select {names} from (values {st.values(rows, casts)})"
        f" as v ({names}) where exists (select 1 from d))"
    )


# The columns of each table a decision records, with their SQL types (a ``VALUES`` list outside ``INSERT`` is not
# typed by the target table); ``decision_rows``, ``output_rows``, ``check_rows`` and ``lineage_rows`` give the values
# in this order (the replay's bulk writer, ``agents.audit_buffer``, copies the same rows).
DECISION_COLUMNS = (("decision_id", "text"), ("run_id", "text"), ("account", "text"), ("symbol", "text"),
                    ("timeframe", "text"), ("as_of", "timestamptz"), ("action", "text"), ("score", "double precision"),
                    ("config_version", "text"), ("dbt_invocation_id", "text"), ("git_sha", "text"),
                    ("inputs", "jsonb"))  # fmt: skip
OUTPUT_COLUMNS = (("run_id", "text"), ("decision_id", "text"), ("agent", "text"), ("symbol", "text"),
                  ("as_of", "timestamptz"), ("model", "text"), ("prompt_hash", "text"), ("input_ref", "jsonb"),
                  ("output", "jsonb"), ("skipped", "boolean"), ("tokens", "integer"), ("latency_ms", "integer"))  # fmt: skip
CHECK_COLUMNS = (("run_id", "text"), ("decision_id", "text"), ("account", "text"), ("symbol", "text"),
                 ("check_name", "text"), ("approved", "boolean"), ("reason", "text"), ("numbers", "jsonb"))  # fmt: skip
LINEAGE_COLUMNS = (("run_id", "text"), ("child_table", "text"), ("child_id", "text"), ("parent_table", "text"),
                   ("parent_key", "jsonb"))  # fmt: skip


def decision_values(d: DecisionRow) -> tuple[Any, ...]:
    """The ``audit.decisions`` row (``DECISION_COLUMNS``; JSON as text)."""
    return (d.decision_id, d.run_id, d.account, d.symbol, d.timeframe, d.as_of, d.action, d.score, d.config_version,
            d.dbt_invocation_id, d.git_sha, _dumps(d.inputs))  # fmt: skip


def output_rows(d: DecisionRow, outputs: Sequence[AgentOutputRow]) -> list[tuple[Any, ...]]:
    """The decision's ``audit.agent_outputs`` rows (``OUTPUT_COLUMNS``)."""
    return [(d.run_id, d.decision_id, o.agent, d.symbol, d.as_of, o.model, o.prompt_hash, _dumps(o.input_ref),
             _dumps(o.output), o.skipped, o.tokens, o.latency_ms) for o in outputs]  # fmt: skip


def check_rows(d: DecisionRow, verdicts: Sequence[tuple[OrderIntent, Sequence[RiskVerdict]]]) -> list[tuple[Any, ...]]:
    """The decision's ``audit.risk_checks`` rows (``CHECK_COLUMNS``): one per check per intent."""
    return [(d.run_id, intent.decision_id, intent.account, intent.symbol, check_name(v, intent), v.approved,
             v.reason, json.dumps(v.numbers)) for intent, intent_verdicts in verdicts for v in intent_verdicts]  # fmt: skip


def lineage_rows(d: DecisionRow, lineage: Sequence[tuple[str, Mapping[str, Any]]]) -> list[tuple[Any, ...]]:
    """The decision's ``audit.lineage`` edges (``LINEAGE_COLUMNS``) to ``(parent table, parent key)``."""
    return [(d.run_id, "audit.decisions", d.decision_id, table, _dumps(key)) for table, key in lineage]


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
    names = ", ".join(column for column, _ in DECISION_COLUMNS)
    parts = [
        f"d as (insert into audit.decisions ({names}) values {st.values([decision_values(d)], {11: 'jsonb'})}"
        " on conflict (decision_id) do nothing returning decision_id)"
    ]
    for name, table, columns, rows in (
        ("a", "audit.agent_outputs", OUTPUT_COLUMNS, output_rows(d, outputs)),
        ("r", "audit.risk_checks", CHECK_COLUMNS, check_rows(d, verdicts)),
        ("l", "audit.lineage", LINEAGE_COLUMNS, lineage_rows(d, lineage)),
    ):
        if rows:
            parts.append(_child_insert(st, name, table, columns, rows))
    sql = "with " + ",\n".join(parts) + "\nselect decision_id from d"
    return st.execute(conn, sql).first() is not None
