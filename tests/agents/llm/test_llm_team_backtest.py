"""The LLM team in a step-path backtest, through the real openai SDK against the local stand-in: a live run with the
debate (tool calls read the replay's point-in-time data), then its replay from the store: 0 tokens, nothing sent,
identical decisions, opinions and risk checks (the sample's votes hold here, so the risk reviewer is not asked: its
replay is covered by test_llm_team). Its own exchange, seed and stretch of time; the stand-in bills 15 tokens a
call, since the session's tests share one database and so the daily LLM budget."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest
from sqlalchemy import text
from support.llm_standin import StandIn, team_responder
from support.llm_support import forget_spend

from alphaloom.ingest.sampledata import SampleData, generate
from alphaloom.settings import get_settings
from flows.backtest import backtest_flow
from flows.build_features import build_features
from flows.ingest_news import ingest_news
from flows.ingest_prices import ingest_prices

EXCHANGE = "llmtx"
END = datetime(2022, 9, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def data(engine, prefect_harness, tmp_path_factory) -> Iterator[tuple[SampleData, StandIn]]:
    standin = StandIn(responder=functools.partial(team_responder, bars=3, tokens=(12, 3))).start()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHALOOM_EXCHANGE", EXCHANGE)
        mp.setenv("ALPHALOOM_HOME", str(tmp_path_factory.mktemp("llmtxhome")))
        get_settings.cache_clear()
        sample = generate(Path(tmp_path_factory.mktemp("llmtx")), seed=23, days=12, end=END, exchange=EXCHANGE)
        for state in (
            ingest_prices([str(p) for p in sample.price_files], quality=False, return_state=True),
            ingest_news([str(p) for p in sample.news_files], quality=False, return_state=True),
            build_features(return_state=True),
        ):
            assert state.is_completed(), state
        mp.setenv("ALPHALOOM_LLM_BASE_URL", standin.url)
        mp.setenv("ALPHALOOM_LLM_MODEL", "team-stand-in")
        mp.setenv("ALPHALOOM_LLM_TEAM_MODE", "debate")
        mp.setenv("ALPHALOOM_LLM_MAX_RETRIES", "0")
        mp.setenv("ALPHALOOM_LLM_TRAINING_CUTOFFS", '{"team-stand-in": "2000-01-01"}')
        mp.setenv("ALPHALOOM_LLM_PRICES", '{"team-stand-in": {"input": 0.15, "output": 0.6}}')
        get_settings.cache_clear()
        yield sample, standin
    standin.stop()
    get_settings.cache_clear()


def _rows(engine, sql: str, run_id: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), {"r": run_id})]


DECISIONS = "select symbol, as_of, action, score from audit.decisions where run_id = :r order by 1, 2"
OPINIONS = """select symbol, as_of, skipped, prompt_hash, output->>'action', output->>'confidence'
              from audit.agent_outputs where run_id = :r and agent = 'llm' order by 1, 2"""
CHECKS = """select d.symbol, d.as_of, c.check_name, c.approved, c.reason from audit.risk_checks c
            join audit.decisions d using (decision_id) where d.run_id = :r order by 1, 2, 3, 5"""


def test_a_backtest_with_the_debate_replays_from_the_store_at_zero_tokens(engine, data, request) -> None:
    sample, standin = data
    symbols, steps = list(sample.symbols)[:2], 3
    live = backtest_flow(symbols=symbols, end=END - timedelta(hours=6), steps=steps, llm_live=True)
    request.addfinalizer(lambda: forget_spend(engine, live["run_id"]))
    sent = len(standin.requests)
    assert live["llm_tokens"] > 0 and sent == live["llm_calls"] >= steps * 2 * 4
    opinions = _rows(engine, OPINIONS, live["run_id"])
    assert len(opinions) == steps * 2 and not any(skipped for _, _, skipped, *_ in opinions)
    # the researchers' features tool read the history through the as_of-bounded reader: three bars, none later
    asked = [r for r in standin.requests if any(m["role"] == "tool" for m in r["messages"])]
    assert any('"bars": [{' in m["content"] and m["content"].count('"ts"') == 3
               for r in asked for m in r["messages"] if m["role"] == "tool")  # fmt: skip

    replay = backtest_flow(symbols=symbols, end=END - timedelta(hours=6), steps=steps)
    request.addfinalizer(lambda: forget_spend(engine, replay["run_id"]))
    assert len(standin.requests) == sent, "the replay sent nothing"
    assert replay["llm_tokens"] == 0 and set(replay["llm_usage"]) == {"cached"}
    assert _rows(engine, DECISIONS, replay["run_id"]) == _rows(engine, DECISIONS, live["run_id"])
    assert _rows(engine, OPINIONS, replay["run_id"]) == opinions
    assert _rows(engine, CHECKS, replay["run_id"]) == _rows(engine, CHECKS, live["run_id"])


ORDERS = """select o.symbol, d.as_of, o.side, o.quantity, o.status, o.filled_quantity from audit.orders o
            join audit.decisions d using (decision_id) where o.run_id = :r order by 1, 2"""
REVIEWS = """select d.symbol, d.as_of, c.approved, c.numbers->>'shrunk_quantity', c.numbers->>'approved_quantity',
                    c.numbers->>'quantity_step', c.numbers->>'outcome', c.reason from audit.risk_checks c join audit.decisions d using (decision_id)
             where d.run_id = :r and c.check_name = 'llm_risk_review' order by 1, 2"""


def test_a_backtest_where_the_reviewer_shrinks_an_order_replays_the_same_shrunk_order_at_zero_tokens(
    engine, data, request
) -> None:
    """The two bars where BTC's technical vote and the manager's buy make a buy (the stand-in's reviewer answers
    ``reduce`` at 0.5): the live run's order is half what the gate approved, rounded down to the market's step; the
    cache-only replay asks nothing, spends 0 tokens and sends the identical shrunk order."""
    _, standin = data
    window = {"symbols": ["BTC/USDT"], "end": END - timedelta(hours=2), "steps": 2}
    before = len(standin.requests)
    live = backtest_flow(**window, llm_live=True)
    request.addfinalizer(lambda: forget_spend(engine, live["run_id"]))
    sent = len(standin.requests)
    assert live["llm_tokens"] > 0 and sent - before == live["llm_calls"]
    assert any("You are the risk reviewer" in r["messages"][0]["content"] for r in standin.requests[before:])
    reviews = _rows(engine, REVIEWS, live["run_id"])
    (order,) = orders = _rows(engine, ORDERS, live["run_id"])
    symbol, as_of, side, quantity, *_ = order
    (review,) = [r for r in reviews if r[:2] == (symbol, as_of)]
    approved, adjusted, gate_quantity, step, outcome, reason = review[2:]
    assert (side, approved, outcome) == ("buy", True, "reduce") and "one story only" in reason, review
    half = (Decimal(gate_quantity) / 2 / Decimal(step)).to_integral_value(rounding=ROUND_DOWN) * Decimal(step)
    assert quantity == Decimal(adjusted) == half, "half the gate's quantity, rounded down to the market's step"
    assert 0 < quantity < Decimal(gate_quantity)

    replay = backtest_flow(**window)
    request.addfinalizer(lambda: forget_spend(engine, replay["run_id"]))
    assert len(standin.requests) == sent, "the replay sent nothing"
    assert replay["llm_tokens"] == 0 and set(replay["llm_usage"]) == {"cached"}
    assert _rows(engine, ORDERS, replay["run_id"]) == orders
    assert _rows(engine, REVIEWS, replay["run_id"]) == reviews
    assert _rows(engine, CHECKS, replay["run_id"]) == _rows(engine, CHECKS, live["run_id"])
