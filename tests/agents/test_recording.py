"""A decision's audit rows written in one statement (``agents.recording``), against PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Engine, text

from agents.recording import AgentOutputRow, DecisionRow, record_decision
from agents.risk import RiskVerdict
from alphaloom.domain import DecisionId, OrderIntent, Side
from execution.accounts.registry import ensure_account

T0 = datetime(2024, 8, 1, 12, tzinfo=UTC)


def test_a_decision_and_its_rows_are_written_once_and_a_second_recording_adds_nothing(engine: Engine) -> None:
    tag = uuid.uuid4().hex[:8]
    run_id, account, decision_id = f"run-rec-{tag}", f"rec-{tag}", DecisionId(f"d-rec-{tag}")
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "USDT", "paper", Decimal(1000), run_id)
    intent = OrderIntent(decision_id, account, "R/USDT", Side.BUY, Decimal(1), Decimal(100))
    row = DecisionRow(decision_id, run_id, account, "R/USDT", "1h", T0, "buy", 0.7, "v1", {"close": 100.0}, "inv-1")
    outputs = [
        AgentOutputRow("technical", {"action": "buy"}, None, None, {"features": {"ts": T0}}),
        AgentOutputRow("llm", {"action": "hold"}, "gpt", "h1", {}, True, None, None),  # skipped: NULL tokens
    ]
    verdicts = [
        (intent, [RiskVerdict("kill_switch", True, "off", {"engaged": "False"}), RiskVerdict("x", False, "no")])
    ]
    lineage = [("marts.features", {"symbol": "R/USDT"}), ("raw.news", {"id": "n1"})]
    with engine.begin() as conn:
        assert record_decision(conn, row, outputs=outputs, verdicts=verdicts, lineage=lineage)
        again = record_decision(conn, row, outputs=outputs[:1], verdicts=verdicts, lineage=lineage)
        assert not again  # already recorded: nothing more is written
        counts = [
            conn.execute(text(f"select count(*) from audit.{table} where {key} = :d"), {"d": decision_id}).scalar()
            for table, key in (("decisions", "decision_id"), ("agent_outputs", "decision_id"),
                               ("risk_checks", "decision_id"), ("lineage", "child_id"))
        ]  # fmt: skip
        llm = conn.execute(
            text(
                "select skipped, tokens, model, output from audit.agent_outputs where decision_id = :d and agent = 'llm'"
            ),
            {"d": decision_id},
        ).one()
        denied = conn.execute(
            text("select approved, numbers from audit.risk_checks where decision_id = :d and check_name = 'x'"),
            {"d": decision_id},
        ).one()
    assert counts == [1, 2, 2, 2]
    assert (llm.skipped, llm.tokens, llm.model, llm.output) == (True, None, "gpt", {"action": "hold"})
    assert (denied.approved, denied.numbers) == (False, {})
