"""Each analyst's out-of-sample contribution (issue 21 item 4): a real team walk-forward on generated data, whose page
shows per agent the opinions, calls, hit rate and P&L credited over the out-of-sample replays only, equal to a hand
computation from the audit rows (fills paired at average cost, each round trip shared by weight x confidence among the
agents that voted for its entry; hits from the realised returns' signs).

Own exchange and a stretch of time 260 days before the sample data's default end (no other module's bars or stories)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from alphaloom.ingest.sampledata import DEFAULT_END, SampleData, generate
from alphaloom.reporting.agent_contribution import contributions, walk_forward_contributions
from alphaloom.settings import get_settings
from flows.build_features import build_features
from flows.ingest_news import ingest_news
from flows.ingest_prices import ingest_prices
from flows.team_walk_forward import team_walk_forward_flow

EXCHANGE = "acfx"


@pytest.fixture(scope="module")
def data(engine, prefect_harness, tmp_path_factory) -> Iterator[SampleData]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHALOOM_EXCHANGE", EXCHANGE)
        mp.setenv("ALPHALOOM_HOME", str(tmp_path_factory.mktemp("achome")))
        get_settings.cache_clear()
        sample = generate(Path(tmp_path_factory.mktemp("ac")), seed=41, days=12, exchange=EXCHANGE,
                          end=DEFAULT_END - timedelta(days=260))  # fmt: skip
        for state in (
            ingest_prices([str(p) for p in sample.price_files], quality=False, return_state=True),
            ingest_news([str(p) for p in sample.news_files], quality=False, return_state=True),
            build_features(return_state=True),
        ):
            assert state.is_completed(), state
        yield sample
    get_settings.cache_clear()


def _hand_pnl(engine: Engine, run_ids: list[str]) -> dict[str, float]:
    """Closed-trade P&L per agent by hand: average cost per symbol, the entry's voters by weight x confidence."""
    credited: dict[str, float] = {}
    with engine.connect() as conn:
        for run_id in run_ids:
            fills = conn.execute(
                text("""select f.ts, f.symbol, f.side, f.quantity, f.price, f.fee, o.decision_id
                        from audit.fills f join audit.orders o using (client_order_id)
                        where o.run_id = :r order by f.ts"""),
                {"r": run_id},
            ).all()  # fmt: skip
            held: dict[str, list] = {}  # symbol -> [quantity, cost, entry decision]
            for f in fills:
                q, price, fee = float(f.quantity), float(f.price), float(f.fee)
                book = held.setdefault(f.symbol, [0.0, 0.0, None])
                if f.side == "buy":
                    if book[0] <= 0:
                        book[2] = f.decision_id
                    book[0], book[1] = book[0] + q, book[1] + q * price + fee
                elif book[0] > 0:
                    average = book[1] / book[0]
                    pnl = q * price - fee - q * average
                    book[0], book[1] = book[0] - q, book[1] - q * average
                    votes = {}
                    for agent, output, skipped, weights in conn.execute(
                        text("""select o.agent, o.output, o.skipped, d.inputs->'weights'
                                from audit.agent_outputs o join audit.decisions d on d.decision_id = o.decision_id
                                where o.decision_id = :d"""),
                        {"d": book[2]},
                    ):  # fmt: skip
                        if not skipped and output["action"] == "buy" and output["confidence"] > 0:
                            votes[agent] = (weights or {}).get(agent, {"weight": 1.0})["weight"] * output["confidence"]
                    for agent, vote in (votes or {"unattributed": 1.0}).items():
                        share = vote / sum(votes.values()) if votes else 1.0
                        credited[agent] = credited.get(agent, 0.0) + pnl * share
    return credited


def test_the_walk_forward_page_shows_each_analysts_out_of_sample_contribution(engine: Engine, data: SampleData) -> None:
    symbols = [s for s in data.symbols if "/" in s][:3]
    # a low threshold and a 1%:2% stop-loss/take-profit: trades open and close within the short stretches
    result = team_walk_forward_flow(symbols=symbols, thresholds="0.05", weights="default", sizing="fixed",
                                    exits="1:2", in_sample=6, out_sample=16,
                                    start=data.end - timedelta(hours=60), end=data.end)  # fmt: skip
    replays = [str(w["replay_run_id"]) for w in result["windows"]]
    assert len(replays) >= 2
    with engine.connect() as conn:
        found = {c.agent: c for c in walk_forward_contributions(conn, replays)}
        oos = conn.execute(
            text("""select o.agent, o.output->>'action' as action, o.skipped, d.as_of, d.run_id
                    from audit.agent_outputs o join audit.decisions d on d.decision_id = o.decision_id
                    where d.run_id = any(:r)"""),
            {"r": replays},
        ).all()  # fmt: skip
        outcomes = conn.execute(
            text("""select x.agent, x.action, x.realised_return from audit.opinion_outcomes x
                    join audit.decisions d on d.decision_id = x.decision_id where d.run_id = any(:r)"""),
            {"r": replays},
        ).all()  # fmt: skip
        in_sample_decisions = conn.execute(
            text("""select count(*) from audit.decisions d join audit.runs r on r.run_id = d.run_id
                    where r.parameters->>'walk_forward_run' = :w and r.parameters->>'phase' = 'in_sample'"""),
            {"w": result["run_id"]},
        ).scalar_one()  # fmt: skip
    # out of sample only: every decision counted is in a window's out-of-sample stretch
    windows = [(w["out_of_sample_start"], w["out_of_sample_end"]) for w in result["windows"]]
    assert all(any(lo <= row.as_of <= hi for lo, hi in windows) for row in oos)
    assert sum(c.opinions for c in found.values()) == sum(1 for r in oos if not r.skipped) > 0
    # hand: opinions and calls counted per agent; hits from the sign of the realised return
    for agent in {"technical", "news"}:
        mine = [r for r in oos if r.agent == agent and not r.skipped]
        assert found[agent].opinions == len(mine)
        assert found[agent].calls == sum(r.action in ("buy", "sell") for r in mine)
        calls = [o for o in outcomes if o.agent == agent and o.action in ("buy", "sell") and o.realised_return != 0]
        hits = sum((o.realised_return > 0) if o.action == "buy" else (o.realised_return < 0) for o in calls)
        assert (found[agent].scored, found[agent].hits) == (len(calls), hits)
    # hand: the P&L credited to each agent
    hand = _hand_pnl(engine, replays)
    assert hand, "the out-of-sample replays closed no trade: nothing to attribute"
    assert {a: c.pnl for a, c in found.items() if c.pnl} == pytest.approx({a: v for a, v in hand.items() if v})
    page = Path(result["page"]).read_text(encoding="utf-8")
    assert "Analyst contribution, out of sample" in page
    assert all(f"<th>{agent}</th>" in page for agent in found)
    assert in_sample_decisions >= 0  # in-sample trials may record decisions; none of them is in the figures above


def test_contributions_is_a_plain_count() -> None:
    rows = contributions(
        [("news", "buy", False), ("news", "hold", False), ("llm", "hold", True), ("technical", "sell", False)],
        [("news", "buy", True), ("news", "hold", None), ("technical", "sell", False)],
        {"technical": -3.0, "news": 5.0, "unattributed": 1.0},
    )
    assert [(r.agent, r.opinions, r.calls, r.scored, r.hits, r.pnl) for r in rows] == [
        ("news", 2, 1, 1, 1, 5.0), ("unattributed", 0, 0, 0, 0, 1.0), ("llm", 0, 0, 0, 0, 0.0),
        ("technical", 1, 1, 1, 0, -3.0),
    ]  # fmt: skip
    assert rows[0].hit_rate == 1.0 and rows[2].hit_rate is None
