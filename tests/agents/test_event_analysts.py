"""The earnings and social analysts in the pure decision stage: they vote when they have something, are recorded with
their inputs and lineage, and the LLM roles are shown the rule-based earnings extraction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from agents.deciding import analyst_inputs, decide_snapshot
from agents.llm.team_prompts import evidence
from agents.memory import AgentWeight
from agents.params import DecisionParams
from agents.risk import PortfolioContext
from agents.risk.sizing import trade_stats
from agents.sentiment import SentimentScore
from agents.snapshot import AccountView, MarketView, Snapshot
from alphaloom.domain import Action, NewsId, NewsItem, decision_id_for
from alphaloom.ingest.social_post import SocialPost
from alphaloom.ingest.social_source import post_text_hash
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.settings import Settings

AS_OF = datetime(2026, 11, 3, 12, tzinfo=UTC)
FLAT = {"close": 100.0, "ema_10": 100.0, "ema_50": 100.0, "macd_hist": 0.0, "rsi_14": 50.0, "ret_1": 0.0,
        "realized_vol_20": 0.01}  # fmt: skip


def _post(n: int, author: str, title: str) -> SocialPost:
    seen = AS_OF - timedelta(hours=n)
    return SocialPost(
        f"p{n}", None, author, None, title, "", post_text_hash(title, ""), seen, seen, False, ("AAA/USDT",)
    )


def _snapshot(params: DecisionParams) -> Snapshot:
    symbols = ("AAA/USDT", "BBB/USDT")
    row = {"exchange": params.exchange, "timeframe": params.timeframe, "ts": AS_OF - timedelta(hours=1),
           "known_at": AS_OF, "dbt_invocation_id": "inv-1", **FLAT}  # fmt: skip
    report = NewsItem(NewsId("e1"), None, "AAA Corp reports third quarter results, raises full-year guidance",
                      "Diluted EPS of $2.10 versus the consensus estimate of $1.80.", AS_OF - timedelta(hours=3),
                      AS_OF - timedelta(hours=2), False, ("AAA/USDT",))  # fmt: skip
    posts = [_post(2, "/u/b", "AAA great"), _post(1, "/u/a", "AAA strong")]
    market = MarketView(
        features={s: {**row, "symbol": s} for s in symbols},
        closes={s: [100.0] * 30 for s in symbols},
        news={"AAA/USDT": [report], "BBB/USDT": []},
        scores={report.id: SentimentScore("neutral", 0.0)},
        social={"AAA/USDT": posts},
        social_scores={p.id: SentimentScore("positive", 0.9) for p in posts},
    )
    account = AccountView(
        kill_switch=KillSwitchState(False, "never engaged", ""),
        portfolio=PortfolioContext(equity=Decimal(100_000), peak_equity=Decimal(100_000)).prepared(),
        positions=dict.fromkeys(symbols, (Decimal(0), Decimal(0))),
        weights={a: AgentWeight(a, 1.0, None, 0) for a in ("technical", "news", "llm", "earnings", "social")},
        trades=trade_stats([]),
    )
    ids = {s: decision_id_for("acct", s, params.timeframe, AS_OF, params.version) for s in symbols}
    return Snapshot("acct", AS_OF, symbols, ids, frozenset(), market, account, "lexicon-test", None)


def test_earnings_and_social_vote_and_are_recorded_only_where_they_have_something() -> None:
    params = DecisionParams.from_settings(Settings(exchange="x"))
    snapshot = _snapshot(params)
    aaa, bbb = decide_snapshot(snapshot, params, run_id="r1")
    agents = {o.agent: o for o in aaa.decision.opinions}
    assert agents["earnings"].action is Action.BUY and agents["earnings"].details["eps"]["outcome"] == "beat"
    assert agents["social"].action is Action.BUY and agents["social"].details["mentions"] == 2
    # same flat features and no social or earnings for BBB: the two event analysts move AAA's vote up
    assert aaa.decision.score > bbb.decision.score
    assert {o.agent for o in bbb.decision.opinions} == {"technical", "news", "llm"}
    outputs = {o.agent: o for o in aaa.outputs}
    assert outputs["earnings"].model == "rules" and outputs["social"].model == "lexicon-test"
    assert outputs["social"].input_ref == {"post_ids": ["p2", "p1"], "scorer": "lexicon-test"}
    assert ("raw.social_posts", {"id": "p1"}) in aaa.lineage and ("raw.news", {"id": "e1"}) in aaa.lineage
    assert [p["id"] for p in aaa.row.inputs["social"]] == ["p2", "p1"] and "social" not in bbb.row.inputs
    shown = evidence(analyst_inputs(snapshot, "AAA/USDT", params))
    assert shown["earnings_reports_extracted"][0]["guidance"] == "raised"
    assert "earnings_reports_extracted" not in evidence(analyst_inputs(snapshot, "BBB/USDT", params))
