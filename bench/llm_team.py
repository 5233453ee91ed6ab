"""Benchmark: the LLM team against a local OpenAI-compatible stand-in (tests/support/llm_standin.py) on 127.0.0.1, through
the real openai SDK, on a throwaway database of the server in force.

Per mode (compact: one call plays every role; debate: bull and bear for one round, research manager, risk reviewer),
each decision a new symbol (no cache hits), each role making one tool call:
- calls and tokens per decision (the stand-in bills about 4 characters a token, prompt and answer);
- our side's overhead per decision: wall time of the team's consult and review stages minus the time the stand-in
  spent answering (what is left: prompts, tools, SDK and HTTP client, cache, budget ledger, transcript), with its
  goal, and per call against a baseline measured in the same run: a bare SDK call to the same stand-in (no
  database), as a ratio;
- of that, the time in the budget ledger (reserve and settle: two committed transactions per call);
- the replay of the same decisions cache only: tokens (goal 0) and overhead per decision.
Usage: python bench/llm_team.py [--decisions 30]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

# The tests' stand-in LLM server (tests/support), with the repository root ahead of tests/: tests/alphaloom, tests/agents
# ... mirror our packages and, were they found first, would be imported as namespace packages in their place.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai
from _throwaway import create_throwaway_database, drop_throwaway_database
from sqlalchemy import create_engine, text
from support.llm_standin import StandIn, team_responder

from agents.deciding import LlmAnswer, analyst_inputs, decide_snapshot
from agents.llm import conversation
from agents.llm.review import review_drafts
from agents.llm.team_agent import LlmTeam
from agents.memory import AgentWeight
from agents.params import DecisionParams
from agents.risk import PortfolioContext
from agents.risk.sizing import trade_stats
from agents.sentiment import SentimentScore
from agents.snapshot import AccountView, MarketView, Snapshot
from alphaloom.db.migrate import upgrade
from alphaloom.domain import AccountId, NewsId, NewsItem, Symbol, decision_id_for
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.settings import LlmPrice, LlmSettings, Settings

AS_OF = datetime(2024, 8, 1, tzinfo=UTC)
BULLISH = {"close": 100.0, "ema_10": 105.0, "ema_50": 100.0, "macd_hist": 0.5, "rsi_14": 60.0, "ret_1": 0.004,
           "realized_vol_20": 0.01}  # fmt: skip
OVERHEAD_GOAL_MS_PER_CALL = 50.0  # a real call lasts 0.5 s or more: our side stays under a tenth of it
STANDIN = StandIn()
LEDGER_S = [0.0]  # time in the budget ledger's reserve and settle (each a committed transaction)


def _timed(fn: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            LEDGER_S[0] += time.perf_counter() - started

    return wrapper


conversation.reserve = _timed(conversation.reserve)  # measured, not changed
conversation.settle = _timed(conversation.settle)


def snapshot(params: DecisionParams, symbol: str, as_of: datetime) -> Snapshot:
    row = {"exchange": params.exchange, "timeframe": params.timeframe, "ts": as_of - timedelta(hours=1),
           "known_at": as_of, "dbt_invocation_id": "inv-bench", "symbol": symbol, **BULLISH}  # fmt: skip
    story = NewsItem(NewsId(f"n-{symbol}"), None, f"{symbol} beats estimates", "record quarter",
                     as_of - timedelta(hours=2), as_of - timedelta(hours=1), False, (symbol,))  # fmt: skip
    market = MarketView({symbol: row}, {symbol: [100.0 + i for i in range(30)]}, {symbol: [story]},
                        {story.id: SentimentScore("positive", 0.8)})  # fmt: skip
    account = AccountView(KillSwitchState(False, "never engaged", ""), {symbol: (Decimal(0), Decimal(0))},
                          {a: AgentWeight(a, 1.0, None, 0) for a in ("technical", "news", "llm")}, trade_stats([]),
                          portfolio=PortfolioContext(equity=Decimal(100_000), peak_equity=Decimal(100_000)).prepared())  # fmt: skip
    ids = {symbol: decision_id_for("bench-llm", symbol, params.timeframe, as_of, params.version)}
    return Snapshot(
        AccountId("bench-llm"), as_of, (Symbol(symbol),), ids, frozenset(), market, account, "lexicon-bench", None
    )


def consult(engine: Any, team: LlmTeam, params: DecisionParams, snaps: list[Snapshot], run_id: str) -> dict[str, Any]:
    """The consult and review stages for every snapshot but the first (a warm-up: HTTP connection, first queries),
    timed; the pure decision between them is not."""
    tokens = calls = cached = 0
    ours = 0.0
    for n, snap in enumerate(snaps):
        if n == 1:
            ours, tokens, calls, cached, standin_busy = 0.0, 0, 0, 0, STANDIN.busy_s
            LEDGER_S[0] = 0.0
        symbol = snap.symbols[0]
        with engine.begin() as conn:
            started = time.perf_counter()
            opinion = team.opine(conn, run_id=run_id, inputs=analyst_inputs(snap, symbol, params), snapshot=snap)
            ours += time.perf_counter() - started
            drafts = decide_snapshot(snap, params, {symbol: LlmAnswer(opinion)}, run_id=run_id)
            started = time.perf_counter()
            (draft,) = review_drafts(conn, snap, drafts, params, team, run_id=run_id)
            ours += time.perf_counter() - started
        review = draft.row.inputs.get("llm_risk_review") or {}
        tokens += opinion.details["tokens"] + int(review.get("tokens") or 0)
        calls += opinion.details["calls"] + int(review.get("calls") or 0)
        cached += opinion.details["cached_calls"] + int(review.get("cached_calls") or 0)
    return {
        "wall": ours,
        "tokens": tokens,
        "calls": calls,
        "cached": cached,
        "standin": STANDIN.busy_s - standin_busy,
        "ledger": LEDGER_S[0],
    }


def bare_sdk_call(standin: StandIn, n: int) -> float:
    """Seconds per bare SDK call to the stand-in, its own answering time left out (the baseline)."""
    client = openai.OpenAI(base_url=standin.url, api_key="bench", max_retries=0)
    request = {"model": "bench", "messages": [{"role": "system", "content": "You are the bull researcher of X/USDT."},
                                              {"role": "user", "content": "Make your case."}]}  # fmt: skip
    busy, started = standin.busy_s, time.perf_counter()
    for _ in range(n):
        client.chat.completions.create(**request)
    return (time.perf_counter() - started - (standin.busy_s - busy)) / n


def _line(name: str, value: float, unit: str, goal: str | None = None, met: bool | None = None) -> None:
    verdict = "" if goal is None else f" (goal {goal}) {'met' if met else 'MISSED'}"
    print(f"{name}: {value:,.2f} {unit}{verdict}")


def main(decisions: int) -> None:
    STANDIN.responder = team_responder
    url = create_throwaway_database()
    engine = create_engine(url, pool_size=5)
    standin = STANDIN.start()
    try:
        upgrade(engine)
        baseline = bare_sdk_call(standin, 3 * decisions)
        _line("baseline: bare openai SDK call to the stand-in (no database)", baseline * 1000, "ms per call")
        for mode in ("compact", "debate"):
            settings = Settings(
                llm=LlmSettings(
                    base_url=standin.url,
                    model="bench-model",
                    team_mode=mode,
                    max_retries=0,
                    run_token_budget=10**9,
                    run_cost_budget=Decimal(10**6),
                    daily_token_budget=10**12,
                    daily_cost_budget=Decimal(10**9),
                    decision_token_budget=10**9,
                    decision_cost_budget=Decimal(10**6),
                    prices={"bench-model": LlmPrice(input=Decimal("0.15"), output=Decimal("0.6"))},
                )
            )
            params = DecisionParams.from_settings(settings)
            snaps = [snapshot(params, f"B{i:04d}{mode[:2].upper()}/USDT", AS_OF + timedelta(hours=i))
                     for i in range(decisions + 1)]  # fmt: skip
            for phase, live_calls in (("live", None), ("replay", 0)):
                run_id = f"bench-llm-{mode}-{phase}"
                with engine.begin() as conn:
                    conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'bench')"), {"r": run_id})
                got = consult(engine, LlmTeam(settings, live_calls=live_calls), params, snaps, run_id)
                ours_ms = (got["wall"] - got["standin"]) * 1000 / decisions
                prefix = f"{mode} {phase}, {decisions} decisions"
                if phase == "live":
                    per_call = ours_ms / max(got["calls"] / decisions, 1)
                    _line(f"{prefix}: LLM calls", got["calls"] / decisions, "calls per decision")
                    _line(f"{prefix}: tokens", got["tokens"] / decisions, "tokens per decision")
                    _line(f"{prefix}: our overhead", ours_ms, "ms per decision")
                    _line(f"{prefix}: our overhead per call", per_call, "ms per call",
                          f"< {OVERHEAD_GOAL_MS_PER_CALL:g} ms", per_call < OVERHEAD_GOAL_MS_PER_CALL)  # fmt: skip
                    print(f"{prefix}: ratio ours/bare SDK per call: {per_call / (baseline * 1000):.2f}")
                    ledger = got["ledger"] * 1000 / max(got["calls"], 1)
                    _line(f"{prefix}: of which the budget ledger (reserve + settle)", ledger, "ms per call")
                else:
                    _line(f"{prefix}: tokens", got["tokens"] / decisions, "tokens per decision", "0",
                          got["tokens"] == 0)  # fmt: skip
                    _line(f"{prefix}: calls answered from the store", got["cached"] / decisions, "per decision")
                    _line(f"{prefix}: our overhead", ours_ms, "ms per decision")
    finally:
        standin.stop()
        engine.dispose()
        drop_throwaway_database(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=30)
    main(parser.parse_args().decisions)
