"""The decision flow's fan-out (``fan_out=True``, in the flow's process: threads) records exactly what a run without
fan-out records, also where a portfolio-level limit binds across symbols: which of a step's buys fit under the class
exposure cap is decided in symbol order, whatever order the symbols' analyst tasks finish in.

Before the fix each symbol was decided and executed in its own concurrent task: a task read the account (exposure,
cash) before the step's other tasks committed their orders, so the cap let through buys that the run without fan-out
shrinks or denies, and how many depended on timing (issue 18: ``submitted`` differed between two fan-out runs)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from support.features import write_alternating_bars
from support.llm_endpoint import Endpoint, answer, endpoint  # noqa: F401 (a fixture)

from alphaloom.settings import get_settings
from flows.decide import decide_flow

TAG = uuid.uuid4().hex[:6]
EXCHANGE = f"fan{TAG}"
SYMBOLS = [f"FO{n}{TAG.upper()}/USDT" for n in range(6)]
T0 = datetime(2023, 6, 1, tzinfo=UTC)  # a stretch of time of this module
HOUR = timedelta(hours=1)
STEPS = 3
# 12% of the 100,000 starting equity: two buys of 5,000 fit, a third is shrunk to 2,000, a fourth is denied.
CLASS_CAP_PCT = "12"


@pytest.fixture(scope="module")
def market(engine: Engine, prefect_harness: None) -> Iterator[None]:
    """Per symbol and step a bullish or bearish bar: four symbols want to buy at the first step."""
    write_alternating_bars(engine, exchange=EXCHANGE, symbols=SYMBOLS, steps=STEPS, start=T0, invocation="fan-out-test")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHALOOM_EXCHANGE", EXCHANGE)
        mp.setenv("ALPHALOOM_TIMEFRAME", "1h")
        mp.setenv("ALPHALOOM_MAX_CLASS_EXPOSURE_PCT", CLASS_CAP_PCT)
        mp.delenv("ALPHALOOM_DASK_ADDRESS", raising=False)
        get_settings.cache_clear()
        yield
    get_settings.cache_clear()


def _decide(account: str, *, fan_out: bool) -> dict[str, int]:
    state = decide_flow(symbols=SYMBOLS, as_of=T0 + STEPS * HOUR, steps=STEPS, account=account, fan_out=fan_out,
                        return_state=True)  # fmt: skip
    assert state.is_completed(), state
    return state.result()


def _records(engine: Engine, account: str) -> dict[str, list[tuple]]:
    """What a decision run recorded for ``account``, without run ids, times of recording or generated ids."""
    with engine.connect() as conn:
        return {
            "decisions": conn.execute(
                text("""select symbol, as_of, action, score, inputs -> 'intents' from audit.decisions
                        where account = :a order by symbol, as_of"""),
                {"a": account},
            ).all(),
            "risk_checks": conn.execute(
                text("""select d.symbol, d.as_of, r.check_name, r.approved, r.numbers ->> 'adjusted_quantity'
                        from audit.risk_checks r join audit.decisions d using (decision_id)
                        where d.account = :a order by 1, 2, 3"""),
                {"a": account},
            ).all(),
            "orders": conn.execute(
                text("""select o.symbol, d.as_of, o.side, o.quantity, o.status
                        from audit.orders o join audit.decisions d using (decision_id)
                        where o.account = :a order by 1, 2"""),
                {"a": account},
            ).all(),
            "positions": conn.execute(
                text("select symbol, quantity, avg_price from audit.positions where account = :a order by 1"),
                {"a": account},
            ).all(),
        }


def test_fan_out_records_what_a_run_without_fan_out_records_where_the_class_cap_binds(
    engine: Engine, market: None
) -> None:
    one_pass = _decide(f"fan-one-{TAG}", fan_out=False)
    fanned = _decide(f"fan-out-{TAG}", fan_out=True)
    assert fanned == one_pass
    one, out = _records(engine, f"fan-one-{TAG}"), _records(engine, f"fan-out-{TAG}")
    assert out == one
    # the cap bound at the first step, in symbol order: FO1 and FO2 bought 50, FO4 was shrunk to 20, FO5 denied
    first = [(o.symbol, o.side, o.quantity) for o in one["orders"] if o.as_of == T0 + HOUR]
    assert [(s[:3], side, str(q)) for s, side, q in first] == [
        ("FO1", "buy", "50"), ("FO2", "buy", "50"), ("FO4", "buy", "20")
    ]  # fmt: skip
    denied = [(r.symbol[:3], r.check_name) for r in one["risk_checks"] if r.as_of == T0 + HOUR and not r.approved]
    assert denied == [("FO5", "class_exposure")]


def _llm_outputs(engine: Engine, account: str) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            text("""select d.symbol, d.as_of, o.skipped, o.output ->> 'action' as action,
                           o.output ->> 'confidence' as confidence
                    from audit.agent_outputs o join audit.decisions d using (decision_id)
                    where d.account = :a and o.agent = 'llm' order by 1, 2"""),
            {"a": account},
        ).all()


def test_with_an_llm_analyst_the_fan_out_consults_it_once_per_symbol_and_step_and_decides_as_one_pass(
    engine: Engine,
    market: None,
    endpoint: Endpoint,  # noqa: F811 (the fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The analyst tasks consult the LLM (the decision pass uses their answers, it does not ask again); the run
    records what the run without fan-out records (that one reads the same answers back from the LLM cache)."""
    monkeypatch.setenv("ALPHALOOM_LLM_BASE_URL", endpoint.url)
    monkeypatch.setenv("ALPHALOOM_LLM_MODEL", "test-model")
    monkeypatch.setenv("ALPHALOOM_LLM_PRICES", json.dumps({"test-model": {"input": "0.15", "output": "0.6"}}))
    monkeypatch.setenv("ALPHALOOM_LLM_TRAINING_CUTOFFS", json.dumps({"test-model": "2020-01-01"}))
    get_settings.cache_clear()
    for n, symbol in enumerate(SYMBOLS):  # enough answers for both runs: the LLM says hold, or buys FO0 and FO3
        action = "buy" if n % 3 == 0 else "hold"
        endpoint.scripts[symbol] = [("reply", (answer(action, 0.9), (120, 30)))] * (2 * STEPS)
    try:
        fanned = _decide(f"fan-llm-out-{TAG}", fan_out=True)
        assert [endpoint.hits(symbol) for symbol in SYMBOLS] == [STEPS] * len(SYMBOLS)
        one_pass = _decide(f"fan-llm-one-{TAG}", fan_out=False)
    finally:
        get_settings.cache_clear()
    assert fanned == one_pass
    out, one = _records(engine, f"fan-llm-out-{TAG}"), _records(engine, f"fan-llm-one-{TAG}")
    assert out == one
    opinions = _llm_outputs(engine, f"fan-llm-out-{TAG}")
    assert len(opinions) == len(SYMBOLS) * STEPS and not any(o.skipped for o in opinions)
    assert {(o.symbol[:3], o.action) for o in opinions if o.action == "buy"} == {("FO0", "buy"), ("FO3", "buy")}
    assert [o[:4] for o in _llm_outputs(engine, f"fan-llm-one-{TAG}")] == [o[:4] for o in opinions]
    with engine.connect() as conn:  # the fan-out run's ledger: one paid call per symbol and step, none asked again
        statuses = conn.execute(
            text("""select status, count(*) from audit.llm_usage
                    where run_id = (select distinct run_id from audit.decisions where account = :a) group by 1"""),
            {"a": f"fan-llm-out-{TAG}"},
        ).all()
    assert statuses == [("ok", len(SYMBOLS) * STEPS)]
