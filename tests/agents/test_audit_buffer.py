"""``agents.audit_buffer.AuditBuffer.flush`` copies a replay's new rows straight into their tables, and where a
decision (or a weight) is recorded already it writes the others only, as the live path would: the existing decision
keeps exactly its own rows."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from agents.audit_buffer import AuditBuffer
from agents.deciding import DecisionDraft
from agents.memory import AgentWeight
from agents.recording import AgentOutputRow, DecisionRow, record_decision
from alphaloom.domain import AccountId, Action, Decision, DecisionId, Symbol
from alphaloom.records.decisions import decision_config
from execution.accounts.registry import ensure_account

AS_OF = datetime(2026, 3, 2, 10, tzinfo=UTC)


@pytest.fixture()
def run(engine) -> tuple[str, str]:
    """A fresh (run id, account)."""
    run_id, account = f"buffer-{uuid.uuid4().hex[:8]}", f"buffer-{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, AccountId(account), "paper", "USDT", "paper", Decimal(10_000), run_id)
    return run_id, account


def _draft(run_id: str, account: str, symbol: str, hours: int, agents: tuple[str, ...]) -> DecisionDraft:
    as_of = AS_OF + timedelta(hours=hours)
    decision_id = f"{run_id}-{symbol}-{hours}"
    row = DecisionRow(decision_id, run_id, account, symbol, "1h", as_of, "hold", 0.25, "cfg",
                      {"note": "tab\there", "agents": list(agents)})  # fmt: skip
    return DecisionDraft(
        decision=Decision(DecisionId(decision_id), AccountId(account), Symbol(symbol), "1h", as_of, Action.HOLD, 0.25,
                          ()),
        row=row,
        outputs=tuple(AgentOutputRow(a, {"action": "hold", "by": a}, input_ref={"symbol": symbol}) for a in agents),
        verdicts=(),
        lineage=(("marts.features", {"symbol": symbol, "ts": as_of.isoformat()}),),
    )  # fmt: skip


def _rows(conn, run_id: str) -> dict[str, list[tuple]]:
    return {
        "decisions": [tuple(r) for r in conn.execute(text(
            "select decision_id, score, inputs from audit.decisions where run_id = :r order by decision_id"),
            {"r": run_id})],
        "outputs": [tuple(r) for r in conn.execute(text(
            "select decision_id, agent, output, input_ref from audit.agent_outputs where run_id = :r order by id"),
            {"r": run_id})],
        "lineage": [tuple(r) for r in conn.execute(text(
            "select child_id, parent_table, parent_key from audit.lineage where run_id = :r order by id"),
            {"r": run_id})],
        "weights": [tuple(r) for r in conn.execute(text(
            "select agent, weight, hit_rate, scored from audit.agent_weights where run_id = :r order by agent"),
            {"r": run_id})],
    }  # fmt: skip


def _weights(buffer: AuditBuffer, account: str, run_id: str, weight: float) -> None:
    buffer.weights(account=account, as_of=AS_OF, run_id=run_id,
                   weights={a: AgentWeight(a, weight, None, 0) for a in ("news", "technical")})  # fmt: skip


def test_new_rows_are_written_as_the_live_path_writes_them(engine, run) -> None:
    run_id, account = run
    drafts = [_draft(run_id, account, s, h, ("technical", "news")) for h in (0, 1) for s in ("AAA", "BBB")]
    buffer = AuditBuffer("full")
    for draft in drafts:
        assert buffer.decision(draft)
    _weights(buffer, account, run_id, 1.0)
    with engine.begin() as conn:
        assert buffer.flush(conn) == 4
        assert buffer.pending == 0
        copied = _rows(conn, run_id)
        conn.execute(text("delete from audit.lineage where run_id = :r"), {"r": run_id})
        conn.execute(text("delete from audit.agent_outputs where run_id = :r"), {"r": run_id})
        conn.execute(text("delete from audit.decisions where run_id = :r"), {"r": run_id})
        for d in drafts:
            record_decision(conn, d.row, outputs=d.outputs, lineage=d.lineage)
        live = _rows(conn, run_id)
    assert {k: v for k, v in copied.items() if k != "weights"} == {k: v for k, v in live.items() if k != "weights"}
    assert copied["weights"] == [("news", 1.0, None, 0), ("technical", 1.0, None, 0)]


def test_a_decision_recorded_already_keeps_its_rows_and_the_others_are_written(engine, run) -> None:
    run_id, account = run
    first = _draft(run_id, account, "AAA", 0, ("technical",))
    with engine.begin() as conn:
        assert record_decision(conn, first.row, outputs=first.outputs, lineage=first.lineage)
        before = AuditBuffer("full")
        _weights(before, account, run_id, 2.0)
        before.flush(conn)
    buffer = AuditBuffer("full")
    again = _draft(run_id, account, "AAA", 0, ("technical", "news"))  # the same decision, other outputs
    fresh = _draft(run_id, account, "BBB", 0, ("technical", "news"))
    for draft in (again, fresh):
        buffer.decision(draft)
    _weights(buffer, account, run_id, 1.0)  # recorded already too: kept
    with engine.begin() as conn:
        assert buffer.flush(conn) == 1
        rows = _rows(conn, run_id)
    assert [r[0] for r in rows["decisions"]] == [first.row.decision_id, fresh.row.decision_id]
    assert [(r[0], r[1]) for r in rows["outputs"]] == [
        (first.row.decision_id, "technical"), (fresh.row.decision_id, "technical"), (fresh.row.decision_id, "news")]  # fmt: skip
    assert [r[0] for r in rows["lineage"]] == [first.row.decision_id, fresh.row.decision_id]
    assert [r[1] for r in rows["weights"]] == [2.0, 2.0]


def test_the_rows_of_a_decision_flush_decisions_found_recorded_are_not_written(engine, run) -> None:
    run_id, account = run
    first = _draft(run_id, account, "AAA", 0, ("technical",))
    with engine.begin() as conn:
        record_decision(conn, first.row, outputs=first.outputs, lineage=first.lineage)
    buffer = AuditBuffer("full")
    again = _draft(run_id, account, "AAA", 0, ("technical", "news"))
    fresh = _draft(run_id, account, "BBB", 0, ("technical",))
    for draft in (again, fresh):
        buffer.decision(draft)
    with engine.begin() as conn:
        assert buffer.flush_decisions(conn) == 1
        assert buffer.flush(conn) == 0
        rows = _rows(conn, run_id)
    assert [(r[0], r[1]) for r in rows["outputs"]] == [(first.row.decision_id, "technical"),
                                                       (fresh.row.decision_id, "technical")]  # fmt: skip
    assert [r[0] for r in rows["lineage"]] == [first.row.decision_id, fresh.row.decision_id]


def _configured(draft: DecisionDraft, version: str, config: dict[str, object]) -> DecisionDraft:
    """``draft`` with its row under configuration ``version``."""
    return replace(draft, row=replace(draft.row, config_version=version, config=config))


@pytest.mark.parametrize("path", ["flush", "flush_decisions", "taken"])
def test_the_decisions_config_is_written_once_before_them_by_whichever_flush_writes_them_first(
    engine, run, path
) -> None:
    run_id, account = run
    version, config = f"cfg-{uuid.uuid4().hex[:8]}", {"consensus": {"threshold": 0.3}, "limits": {"max": "5"}}
    buffer = AuditBuffer("full")
    for hours in (0, 1):
        buffer.decision(_configured(_draft(run_id, account, "AAA", hours, ("technical",)), version, config))
    assert buffer.pending == 1 + 2 * 3  # one config row for both decisions (and their output and lineage rows)
    with engine.begin() as conn:
        if path == "flush_decisions":
            assert buffer.flush_decisions(conn) == 2
        held = buffer.take() if path == "taken" else buffer
        held.flush(conn)
        buffer.decision(_configured(_draft(run_id, account, "AAA", 2, ("technical",)), version, config))
        assert buffer.pending == 3, "the version's row is held once per run"
        buffer.flush(conn)
        assert decision_config(conn, version) == config
        recorded = conn.execute(text("select run_id, inputs from audit.decisions where config_version = :v"),
                                {"v": version}).all()  # fmt: skip
        assert len(recorded) == 3 and all("config" not in r.inputs and r.run_id == run_id for r in recorded)
    again = AuditBuffer("full")  # another run of the same configuration: its version is recorded already, kept
    again.decision(_configured(_draft(run_id, account, "BBB", 0, ("technical",)), version, {"other": 1}))
    with engine.begin() as conn:
        assert again.flush(conn) == 1
        assert decision_config(conn, version) == config
