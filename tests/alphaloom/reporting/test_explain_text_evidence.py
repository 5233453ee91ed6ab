"""``alphaloom explain`` shows the text evidence behind a decision: the earnings report the earnings analyst read (its
``raw.news`` row with the extracted figures and guidance) and the social posts it read (``raw.social_posts`` through
``audit.lineage``, each kept or dropped as spam), on the chain, the CLI tree and the HTML page."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Connection, Engine, text
from typer.testing import CliRunner

from agents.deciding import decide_snapshot
from agents.memory import AgentWeight
from agents.params import DecisionParams
from agents.recording import record_decision
from agents.risk import PortfolioContext
from agents.risk.sizing import trade_stats
from agents.sentiment import SentimentScore
from agents.snapshot import AccountView, MarketView, Snapshot
from alphaloom.cli import app
from alphaloom.domain import AccountId, NewsId, NewsItem, Symbol, decision_id_for
from alphaloom.ingest.social_post import SocialPost
from alphaloom.ingest.social_source import post_text_hash
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.records.orders import OrderRow
from alphaloom.reporting.explain import OrderChain, explain_decision
from alphaloom.reporting.explain_html import render_html
from alphaloom.settings import Settings
from execution.accounts.registry import ensure_account

AS_OF = datetime(2026, 11, 3, 12, tzinfo=UTC)
FLAT = {"close": 100.0, "ema_10": 100.0, "ema_50": 100.0, "macd_hist": 0.0, "rsi_14": 50.0, "ret_1": 0.0,
        "realized_vol_20": 0.01}  # fmt: skip
REPORT = "AAA Corp reports third quarter results, raises full-year guidance"


def _post(tag: str, n: int, author: str, title: str, symbol: str) -> SocialPost:
    seen = AS_OF - timedelta(hours=n)
    return SocialPost(f"p{n}-{tag}", None, author, None, title, "", post_text_hash(title, ""), seen, seen, False,
                      (symbol,))  # fmt: skip


def _store(conn: Connection, run_id: str, report: NewsItem, posts: list[SocialPost], symbol: str) -> None:
    conn.execute(text("""insert into raw.news (id, title, summary, published_at, first_seen_at, first_seen_assumed,
                                               run_id)
                         values (:i, :t, :s, :p, :f, false, :r)"""),
                 {"i": report.id, "t": report.title, "s": report.summary, "p": report.published_at,
                  "f": report.first_seen_at, "r": run_id})  # fmt: skip
    conn.execute(text("insert into raw.news_symbols (news_id, symbol, first_known_at) values (:i, :s, :f)"),
                 {"i": report.id, "s": symbol, "f": report.first_seen_at})  # fmt: skip
    for p in posts:
        conn.execute(text("""insert into raw.social_posts (id, author, title, body, text_hash, published_at,
                                                           first_seen_at, first_seen_assumed, run_id)
                             values (:i, :a, :t, '', :h, :p, :f, false, :r)"""),
                     {"i": p.id, "a": p.author, "t": p.title, "h": p.text_hash, "p": p.published_at,
                      "f": p.first_seen_at, "r": run_id})  # fmt: skip
        conn.execute(text("insert into raw.social_sightings values (:i, 'social_wsb.atom', :f, :r)"),
                     {"i": p.id, "f": p.first_seen_at, "r": run_id})  # fmt: skip
        conn.execute(text("insert into raw.social_symbols values (:i, :s, :f)"),
                     {"i": p.id, "s": symbol, "f": p.first_seen_at})  # fmt: skip


def _decided(engine: Engine) -> tuple[str, str]:
    """A decision on a fresh symbol with an earnings report, two posts and one post its author repeated (spam), recorded
    with its lineage; its id and symbol."""
    tag = uuid.uuid4().hex[:8]
    symbol = f"A{tag.upper()}/USDT"
    params = DecisionParams.from_settings(Settings(exchange="explain-text"))
    report = NewsItem(NewsId(f"e-{tag}"), None, REPORT,
                      "Diluted EPS of $2.10 versus the consensus estimate of $1.80.", AS_OF - timedelta(hours=3),
                      AS_OF - timedelta(hours=2), False, (symbol,))  # fmt: skip
    posts = [_post(tag, 4, "/u/b", "AAA great", symbol), _post(tag, 3, "/u/a", "AAA strong", symbol),
             _post(tag, 2, "/u/a", "AAA strong", symbol)]  # fmt: skip
    row = {"exchange": params.exchange, "timeframe": params.timeframe, "ts": AS_OF - timedelta(hours=1),
           "known_at": AS_OF, "dbt_invocation_id": "inv-1", **FLAT, "symbol": symbol}  # fmt: skip
    market = MarketView(features={symbol: row}, closes={symbol: [100.0] * 30}, news={symbol: [report]},
                        scores={report.id: SentimentScore("neutral", 0.0)}, social={symbol: posts},
                        social_scores={p.id: SentimentScore("positive", 0.9) for p in posts})  # fmt: skip
    account = AccountView(
        kill_switch=KillSwitchState(False, "never engaged", ""),
        portfolio=PortfolioContext(equity=Decimal(100_000), peak_equity=Decimal(100_000)).prepared(),
        positions={symbol: (Decimal(0), Decimal(0))},
        weights={a: AgentWeight(a, 1.0, None, 0) for a in ("technical", "news", "llm", "earnings", "social")},
        trades=trade_stats([]),
    )
    ids = {symbol: decision_id_for("acct-explain", symbol, params.timeframe, AS_OF, params.version)}
    snapshot = Snapshot("acct-explain", AS_OF, (symbol,), ids, frozenset(), market, account, "lexicon-test", None)
    run_id = f"run-explain-{tag}"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, AccountId("acct-explain"), "paper", "USDT", "paper", Decimal(100000), run_id)
        _store(conn, run_id, report, posts, symbol)
        (draft,) = decide_snapshot(snapshot, params, run_id=run_id)
        record_decision(conn, draft.row, outputs=draft.outputs, verdicts=draft.verdicts, lineage=draft.lineage)
    return ids[symbol], symbol


def test_explain_shows_the_earnings_report_and_the_social_posts_behind_a_decision(engine: Engine) -> None:
    decision_id, _ = _decided(engine)
    with engine.connect() as conn:
        chain = explain_decision(conn, decision_id)
    report = chain.earnings
    assert report is not None and report.title == REPORT and report.guidance == "raised"
    assert report.eps is not None and report.eps["outcome"] == "beat" and report.score is not None
    assert [(p.title, p.kept) for p in chain.social] == [("AAA great", True), ("AAA strong", True),
                                                        ("AAA strong", False)]  # fmt: skip
    assert all(p.sources == ["social_wsb.atom"] for p in chain.social)
    assert "social" in {r.role for r in chain.runs}

    result = CliRunner().invoke(app, ["explain", decision_id])
    assert result.exit_code == 0, result.output
    assert "earnings report e-" in result.output and "guidance raised" in result.output
    assert "social posts (3)" in result.output and "spam: AAA strong" in result.output


def test_the_explain_page_has_the_earnings_and_social_cards_escaped(engine: Engine) -> None:
    decision_id, symbol = _decided(engine)
    with engine.begin() as conn:
        first = explain_decision(conn, decision_id).social[0].id
        conn.execute(text("update raw.social_posts set title = '<script>alert(1)</script>' where id = :i"),
                     {"i": first})  # fmt: skip
    with engine.connect() as conn:
        chain = explain_decision(conn, decision_id)
    # the page is drawn for an order's chain: this decision's, under an order row of its own
    order = OrderRow("o-explain", AccountId("acct-explain"), "paper", Symbol(symbol), "buy", "market", Decimal(1),
                     Decimal(100), "new", Decimal(0), AS_OF, "run", [], [])  # fmt: skip
    ordered = OrderChain(order, chain.decision, chain.agent_outputs, chain.risk_checks, chain.features, chain.bars,
                         chain.news, chain.runs, chain.debate, social=chain.social, earnings=chain.earnings)  # fmt: skip
    assert "social posts" not in ordered.missing and "earnings report row" not in ordered.missing
    assert "social posts" in dataclasses.replace(ordered, social=[]).missing
    page = render_html(ordered, [])
    assert "Earnings report it read" in page and "2.10 vs estimate 1.80 (beat, +16.7%)" in page
    assert "raised" in page and REPORT in page
    assert "Social posts it read" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page and page.count(">spam<") == 1 and page.count(">kept<") == 2
