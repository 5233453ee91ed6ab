"""The team end to end against PostgreSQL: memory scores outcomes, weights learn from them point in time, the LLM
analyst is skipped (and recorded) without an endpoint and consulted through a local OpenAI-compatible server with one."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, text
from support.features import FEATURES_DDL
from support.llm_endpoint import Endpoint, answer, endpoint  # noqa: F401  (the local OpenAI-compatible server fixture)

from agents.llm import LlmAnalyst
from agents.memory import load_weights, similar_situations
from agents.sentiment import LexiconScorer
from agents.team import FEATURE_COLUMNS, build_team, decide
from alphaloom.domain import Decision
from alphaloom.settings import LlmSettings, Settings
from execution.accounts.registry import ensure_account

T0 = datetime(2024, 4, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def bearish(close: float) -> dict[str, float]:
    """Indicators that say SELL (EMA10 < EMA50, negative MACD histogram, RSI 40) at ``close``."""
    return {"close": close, "ema_10": close * 0.95, "ema_50": close, "macd_hist": -0.5, "rsi_14": 40.0,
            "bb_pct_b_20": 0.3, "realized_vol_20": 0.01, "ret_1": 0.01}  # fmt: skip


@dataclass
class Desk:
    engine: Engine
    settings: Settings
    account: str
    run_id: str
    tag: str
    scorer: LexiconScorer

    def symbol(self, name: str) -> str:
        return f"{name}{self.tag}/USDT"

    def rising_market(self, symbol: str, bars: int) -> None:
        """Bar i (open at T0 + i h, known an hour later) closes at 100 + i while the indicators stay bearish."""
        rows = [{"exchange": self.settings.exchange, "symbol": symbol, "ts": T0 + i * HOUR, "known_at": T0 + (i + 1) * HOUR}
                | {c: bearish(100.0 + i).get(c) for c in FEATURE_COLUMNS} for i in range(bars)]  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    f"""insert into marts.features (exchange, symbol, timeframe, ts, known_at,
                            {", ".join(FEATURE_COLUMNS)}, dbt_invocation_id)
                        values (:exchange, :symbol, '1h', :ts, :known_at,
                            {", ".join(":" + c for c in FEATURE_COLUMNS)}, 'dbt-inv-team')"""
                ),
                rows,
            )

    def decide(self, symbols: list[str], as_of: datetime, llm_agent: Any = None) -> list[Decision]:
        with self.engine.begin() as conn:
            return decide(conn, account=self.account, symbols=symbols, as_of=as_of, run_id=self.run_id,
                          settings=self.settings, scorer=self.scorer, llm_agent=llm_agent)  # fmt: skip

    def inputs(self, symbol: str, as_of: datetime) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return conn.execute(
                text("select inputs from audit.decisions where account = :a and symbol = :s and as_of = :t"),
                {"a": self.account, "s": symbol, "t": as_of},
            ).scalar_one()


@pytest.fixture()
def desk(engine: Engine, scorer: LexiconScorer) -> Desk:
    tag = uuid.uuid4().hex[:8].upper()
    settings = Settings(exchange=f"team-{tag}", timeframe="1h", llm=LlmSettings(base_url=None))
    run_id, account = f"run-team-{tag}", f"acct-team-{tag}"
    with engine.begin() as conn:
        conn.execute(text(FEATURES_DDL))
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "USDT", "paper", Decimal(100000), run_id)
    return Desk(engine, settings, account, run_id, tag, scorer)


def test_weights_fall_after_wrong_calls_are_scored_and_memory_is_point_in_time(desk: Desk) -> None:
    symbol = desk.symbol("MEM")
    desk.rising_market(symbol, 12)
    times = [T0 + (i + 1) * HOUR for i in range(9)]  # decide at each bar close
    for as_of in times:
        (decision,) = desk.decide([symbol], as_of)
        assert {o.agent: o.action.value for o in decision.opinions}["technical"] == "sell"

    first, last = desk.inputs(symbol, times[0]), desk.inputs(symbol, times[-1])
    assert first["weights"]["technical"] == {"weight": 1.0, "base": 1.0, "hit_rate": None, "scored": 0}
    # decisions at times[0..4] had their 4-bar horizon pass by times[8]: five SELLs into a rising market, all wrong
    assert last["weights"]["technical"]["scored"] == 5
    assert last["weights"]["technical"]["weight"] < 1.0 and last["weights"]["technical"]["hit_rate"] < 0.5
    with desk.engine.connect() as conn:
        outcomes = conn.execute(
            text("select as_of, realised_at, entry_price, exit_price, realised_return, hit from audit.opinion_outcomes "
                 "where account = :a and agent = 'technical' order by as_of"),
            {"a": desk.account},
        ).all()  # fmt: skip
        recorded = conn.execute(
            text("select as_of, weight from audit.agent_weights where account = :a and agent = 'technical' "
                 "order by as_of"), {"a": desk.account},
        ).all()  # fmt: skip
    # the decision at T0+1h read bar 0 (close 100); its outcome is the close known at T0+5h: bar 4, close 104
    assert outcomes[0].realised_at == times[0] + 4 * HOUR
    assert (outcomes[0].entry_price, outcomes[0].exit_price) == (100.0, 104.0)
    assert outcomes[0].realised_return == pytest.approx(0.04) and outcomes[0].hit is False
    assert [r.weight for r in recorded][:4] == [1.0] * 4 and recorded[4].weight < 1.0  # first outcome at times[4]

    # Point in time: with every later outcome already in the table, a decision at times[2] sees none of them.
    later_symbol = desk.symbol("LATE")
    desk.rising_market(later_symbol, 12)
    desk.decide([later_symbol], times[2])
    assert desk.inputs(later_symbol, times[2])["weights"] == first["weights"] | {
        "news": first["weights"]["news"], "llm": first["weights"]["llm"]}  # fmt: skip
    with desk.engine.connect() as conn:
        base = {"technical": 1.0, "news": 0.5, "llm": 0.5}
        at_5 = load_weights(conn, account=desk.account, as_of=times[5], base=base)
        assert at_5["technical"].scored == 2  # realised at times[4] and times[5]; the later three are not visible
        values = bearish(102.0)
        assert similar_situations(conn, account=desk.account, as_of=times[3], values=values) == []
        remembered = similar_situations(conn, account=desk.account, as_of=times[-1], values=values)
    assert remembered and all(m.as_of + 4 * HOUR <= times[-1] for m in remembered)


def test_without_an_endpoint_the_llm_is_skipped_and_recorded(desk: Desk) -> None:
    symbol = desk.symbol("NOLLM")
    desk.rising_market(symbol, 2)
    team = build_team(desk.settings)
    assert team.llm_agent is None
    assert team.scorer.name.startswith("lexicon")  # ProsusAI/finbert cannot be loaded offline
    (decision,) = desk.decide([symbol], T0 + 2 * HOUR)
    llm = next(o for o in decision.opinions if o.agent == "llm")
    assert llm.skipped and llm.rationale == "no LLM endpoint configured"
    with desk.engine.connect() as conn:
        row = conn.execute(
            text("select skipped, output from audit.agent_outputs where decision_id = :d and agent = 'llm'"),
            {"d": decision.decision_id},
        ).one()
    assert row.skipped and row.output["rationale"] == "no LLM endpoint configured"


def test_with_an_endpoint_the_llm_opinion_joins_the_vote_and_is_audited(desk: Desk, endpoint: Endpoint) -> None:  # noqa: F811
    symbol = desk.symbol("LLM")
    desk.rising_market(symbol, 2)
    endpoint.scripts[symbol] = [("json", (answer(action="sell", confidence=0.9, rationale="bearish, rsi_14 40"),
                                          (300, 50)))]  # fmt: skip
    settings = desk.settings.model_copy(
        update={
            "llm.base_url": endpoint.url,
            "llm.model": "team-model",
            "llm.price_per_1k_prompt": Decimal(0),
            "llm.price_per_1k_completion": Decimal(0),
        }
    )
    team = build_team(settings)
    assert isinstance(team.llm_agent, LlmAnalyst)
    (decision,) = desk.decide([symbol], T0 + 2 * HOUR, llm_agent=team.llm_agent)
    llm = next(o for o in decision.opinions if o.agent == "llm")
    assert not llm.skipped and llm.action.value == "sell" and llm.model == "team-model"
    assert any("rsi_14=61.25 but the input is 40" in f for f in llm.details["flags"])  # the canned answer cites 61.25
    with desk.engine.connect() as conn:
        row = conn.execute(
            text("select prompt_hash, tokens, latency_ms, input_ref from audit.agent_outputs "
                 "where decision_id = :d and agent = 'llm'"), {"d": decision.decision_id},
        ).one()  # fmt: skip
    assert row.prompt_hash == llm.prompt_hash and row.tokens == 350 and row.latency_ms is not None
    assert row.input_ref["features"]["symbol"] == symbol
    prompt = endpoint.requests[-1]["messages"][1]["content"]
    assert "rsi_14=40" in prompt and f"Symbol: {symbol}" in prompt
    assert json.dumps(row.input_ref)  # lineage of what the LLM saw is a row, not a log line
