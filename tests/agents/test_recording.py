"""A decision's audit rows written in one statement (``agents.recording``), and a step's outcome and weight rows in
one statement each (``agents.memory``), against PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Connection, Engine, event, text

from agents.memory import AgentWeight, insert_outcomes, outcome_record, record_weights
from agents.recording import AgentOutputRow, DecisionRow, decision_record, record_decision, record_decisions
from agents.risk import RiskVerdict
from alphaloom.domain import DecisionId, OrderIntent, Side
from alphaloom.records.decisions import DecisionRows
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


@contextmanager
def _statements(conn: Connection) -> Iterator[list[str]]:
    """The statements sent on ``conn`` meanwhile, one entry per statement run (an executemany's rows each count)."""
    sent: list[str] = []

    def count(_conn, _cursor, statement, parameters, _context, executemany) -> None:
        sent.extend([statement] * (len(parameters) if executemany else 1))

    event.listen(conn, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(conn, "before_cursor_execute", count)


def test_a_steps_outcomes_and_weights_are_each_written_by_one_statement_first_row_kept(engine: Engine) -> None:
    # each statement on a table whose references are checked per statement (0030) pays one trigger call
    tag = uuid.uuid4().hex[:8]
    run_id, account = f"run-mem-{tag}", f"mem-{tag}"
    ids = [DecisionId(f"d-mem-{tag}-{i}") for i in range(2)]
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "USDT", "paper", Decimal(1000), run_id)
        for d in ids:
            row = DecisionRow(d, run_id, account, "R/USDT", "1h", T0, "buy", 0.7, "v1", {"close": 100.0}, "inv-1")
            record_decision(conn, row)

    def outcome(decision_id: str, agent: str, exit_price: float) -> dict[str, object]:
        return outcome_record(
            decision_id=decision_id, agent=agent, account=account, symbol="R/USDT", as_of=T0,
            realised_at=T0 + timedelta(hours=4), horizon_bars=4, action="buy", confidence=0.6, entry_price=100.0,
            entry_ts=T0, exit_price=exit_price, exit_ts=T0 + timedelta(hours=4), run_id=run_id,
        )  # fmt: skip

    first = [outcome(ids[0], "technical", 101.5), outcome(ids[0], "team", 99.25), outcome(ids[1], "news", 100.1)]
    weights = {a: AgentWeight(a, w, r, n) for a, w, r, n in (("technical", 1.2, 0.6, 5), ("news", 0.5, None, 0))}
    with engine.begin() as conn, _statements(conn) as sent:
        insert_outcomes(conn, first)
        record_weights(conn, account=account, as_of=T0, run_id=run_id, weights=weights)
        assert len(sent) == 2
        # a row already scored (or recorded) for its key is kept, also within one call
        insert_outcomes(
            conn, [outcome(ids[1], "news", 50.0), outcome(ids[1], "llm", 102.0), outcome(ids[1], "llm", 1.0)]
        )
        record_weights(
            conn, account=account, as_of=T0, run_id=run_id, weights={"news": AgentWeight("news", 9, None, 9)}
        )
        assert len(sent) == 4
        insert_outcomes(conn, [])
        record_weights(conn, account=account, as_of=T0, run_id=run_id, weights={})
        assert len(sent) == 4  # nothing to write: nothing sent
        stored = conn.execute(
            text("""select decision_id, agent, account, symbol, as_of, realised_at, horizon_bars, action, confidence,
                           entry_price, exit_price, realised_return, hit, score, run_id
                    from audit.opinion_outcomes where run_id = :r order by decision_id, agent"""),
            {"r": run_id},
        ).all()  # fmt: skip
        kept = conn.execute(
            text(
                "select agent, as_of, weight, hit_rate, scored from audit.agent_weights where run_id = :r order by agent"
            ),
            {"r": run_id},
        ).all()
    expected = [*first, outcome(ids[1], "llm", 102.0)]
    assert [tuple(r) for r in stored] == sorted(tuple(o.values()) for o in expected)
    assert [tuple(r) for r in kept] == [("news", T0, 0.5, None, 0), ("technical", T0, 1.2, 0.6, 5)]


def test_a_steps_decisions_are_written_by_one_statement_in_order_a_recorded_one_kept(engine: Engine) -> None:
    tag = uuid.uuid4().hex[:8]
    run_id, account = f"run-step-{tag}", f"step-{tag}"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "USDT", "paper", Decimal(1000), run_id)

    def record(i: int, agents: tuple[str, ...]) -> DecisionRows:
        d = DecisionId(f"d-step-{tag}-{i}")
        row = DecisionRow(d, run_id, account, f"S{i}/USDT", "1h", T0, "hold", 0.0, f"v-{tag}", {}, config={"i": i})
        outputs = [AgentOutputRow(a, {"action": "hold"}) for a in agents]
        return decision_record(row, outputs=outputs, lineage=[("marts.features", {"symbol": f"S{i}/USDT"})])

    with engine.begin() as conn, _statements(conn) as sent:
        assert record_decisions(conn, [record(0, ("technical", "news")), record(1, ("technical",))]) == {
            f"d-step-{tag}-0",
            f"d-step-{tag}-1",
        }
        assert len(sent) == 1
        # recorded already: kept with its rows, the new one of the same call recorded
        assert record_decisions(conn, [record(1, ("llm",)), record(2, ("news",))]) == {f"d-step-{tag}-2"}
        assert record_decisions(conn, []) == set()
        assert len(sent) == 2
        outputs = conn.execute(
            text("select decision_id, agent from audit.agent_outputs where run_id = :r order by id"), {"r": run_id}
        ).all()
        lineage = conn.execute(text("select count(*) from audit.lineage where run_id = :r"), {"r": run_id}).scalar()
        configs = conn.execute(
            text("select config from audit.decision_configs where config_version = :v"), {"v": f"v-{tag}"}
        ).all()
    assert [tuple(o) for o in outputs] == [(f"d-step-{tag}-0", "technical"), (f"d-step-{tag}-0", "news"),
                                           (f"d-step-{tag}-1", "technical"), (f"d-step-{tag}-2", "news")]  # fmt: skip
    assert lineage == 3
    assert [c.config for c in configs] == [{"i": 0}]  # one row per version, the first given


def test_a_step_of_many_decisions_beyond_the_drivers_parameter_limit_is_recorded_whole_and_in_order(
    engine: Engine,
) -> None:
    # 400 symbols with 30 lineage edges each: about 89,000 bound values, beyond libpq's 65,535 per statement
    tag = uuid.uuid4().hex[:8]
    run_id, account = f"run-wide-{tag}", f"wide-{tag}"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "USDT", "paper", Decimal(1000), run_id)

    def wide(i: int) -> DecisionRows:
        d = DecisionId(f"d-wide-{tag}-{i:03d}")
        row = DecisionRow(d, run_id, account, f"W{i}/USDT", "1h", T0, "hold", 0.0, f"v-{tag}", {}, config={"w": 1})
        lineage = [("raw.news", {"id": f"n{i}-{k}"}) for k in range(30)]
        return decision_record(row, outputs=[AgentOutputRow("technical", {"action": "hold"})], lineage=lineage)

    records = [wide(i) for i in range(400)]
    with engine.begin() as conn:
        inserted = record_decisions(conn, records)
        edges = conn.execute(
            text("select child_id, parent_key->>'id' from audit.lineage where run_id = :r order by id"), {"r": run_id}
        ).all()
        outputs = conn.execute(
            text("select decision_id from audit.agent_outputs where run_id = :r order by id"), {"r": run_id}
        ).scalars().all()  # fmt: skip
    assert inserted == {f"d-wide-{tag}-{i:03d}" for i in range(400)}
    assert [tuple(e) for e in edges] == [(f"d-wide-{tag}-{i:03d}", f"n{i}-{k}") for i in range(400) for k in range(30)]
    assert outputs == [f"d-wide-{tag}-{i:03d}" for i in range(400)]
