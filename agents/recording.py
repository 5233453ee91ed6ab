"""Decisions' audit rows in one statement: the ``audit.decisions`` rows, their agents' outputs, their risk checks and
their lineage edges (ARCHITECTURE §8). One round trip per step (``record_decisions``) instead of one per table.

``record_decision`` inserts the decision unless it exists (``ON CONFLICT DO NOTHING``) and the other rows only when
it inserted it, so a decision recorded first by a concurrent run keeps exactly that run's rows. It writes on the
caller's connection and does not commit. The statement is ``alphaloom.records.decisions.insert_decisions``'s;
this module builds its rows.
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
from alphaloom.db.json_text import jsonb_text
from alphaloom.domain import OrderIntent
from alphaloom.records.decisions import CHECK_COLUMNS as CHECK_COLUMNS  # the row order, for agents.audit_buffer
from alphaloom.records.decisions import CONFIG_COLUMNS as CONFIG_COLUMNS
from alphaloom.records.decisions import DECISION_COLUMNS as DECISION_COLUMNS
from alphaloom.records.decisions import LINEAGE_COLUMNS as LINEAGE_COLUMNS
from alphaloom.records.decisions import OUTPUT_COLUMNS as OUTPUT_COLUMNS
from alphaloom.records.decisions import DecisionRows, insert_decisions


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
    # the configuration ``config_version`` names (``agents.params.decision_config``): recorded once per version in
    # ``audit.decision_configs`` before the decisions that reference it, not in every decision's ``inputs``
    config: Mapping[str, Any] | None = None


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


_dumps = jsonb_text  # JSON as text (one call less per value)


def decision_values(d: DecisionRow) -> tuple[Any, ...]:
    """The ``audit.decisions`` row (``DECISION_COLUMNS``, from ``alphaloom.records.decisions``; JSON as text)."""
    return (d.decision_id, d.run_id, d.account, d.symbol, d.timeframe, d.as_of, d.action, d.score, d.config_version,
            d.dbt_invocation_id, d.git_sha, _dumps(d.inputs))  # fmt: skip


def config_values(d: DecisionRow) -> tuple[Any, ...] | None:
    """The ``audit.decision_configs`` row of the decision's configuration (``CONFIG_COLUMNS``; the decision's run as
    the one recording it), None when the row carries none."""
    return None if d.config is None else (d.config_version, _dumps(d.config), d.run_id)


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
    """Insert the decision (and its configuration, unless its version is recorded already) and, when it was new, its
    outputs, risk checks and lineage edges (``(parent table, parent key)``); True when this call inserted it."""
    record = decision_record(decision, outputs=outputs, verdicts=verdicts, lineage=lineage)
    return bool(record_decisions(conn, [record]))


def decision_record(
    decision: DecisionRow,
    *,
    outputs: Sequence[AgentOutputRow] = (),
    verdicts: Sequence[tuple[OrderIntent, Sequence[RiskVerdict]]] = (),
    lineage: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> DecisionRows:
    """The rows ``record_decision`` writes, for ``record_decisions``."""
    d = decision
    return DecisionRows(
        decision_values(d), output_rows(d, outputs), check_rows(d, verdicts), lineage_rows(d, lineage), config_values(d)
    )


def record_decisions(conn: Connection, records: Sequence[DecisionRows]) -> set[str]:
    """``record_decision`` of each of ``records`` (``decision_record``), in one statement and in order; the ids of
    the decisions this call inserted."""
    return insert_decisions(conn, records)
