"""The pattern analyst in the team: it votes with its own weight only when ``ALPHALOOM_PATTERN_WEIGHT`` is set (the
config version is unchanged otherwise), reads the bars known at ``as_of`` from the live snapshot and from the replay
cursor alike, and the replay engine writes the audit rows of the live step path with it (ARCHITECTURE §4, §5)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text
from support.patterns import DOUBLE_TOP, as_bars, drawn, mirrored

from agents.consensus import consensus
from agents.deciding import decide_snapshot, learned_consensus
from agents.memory import AgentWeight
from agents.params import DecisionParams, StrategyParams, config_version, decision_config
from agents.patterns.analyst import PatternParams, pattern_opinion
from agents.replay_cursor import ReplayCursor
from agents.risk import PortfolioContext
from agents.risk.sizing import trade_stats
from agents.sentiment import LexiconScorer
from agents.snapshot import AccountView, MarketView, Snapshot, read_market_view
from alphaloom.domain import Action, decision_id_for
from alphaloom.domain import timeframe_delta as bar_length
from alphaloom.ingest.sampledata import SampleData, generate
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.settings import Settings, get_settings
from flows.build_features import build_features
from flows.ingest_news import ingest_news
from flows.ingest_prices import ingest_prices

EXCHANGE = "pattern-x"
RUN = "patterns-team-test"
AS_OF = datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_the_analyst_joins_the_team_and_the_config_version_only_with_a_weight() -> None:
    plain = Settings(exchange="x")
    assert "patterns" not in decision_config(plain, StrategyParams())
    assert config_version(plain) == config_version(Settings(exchange="x", pattern_weight=0))
    assert "patterns" not in DecisionParams.from_settings(plain).strategy.base_weights()
    voting = Settings(exchange="x", pattern_weight=0.7)
    params = DecisionParams.from_settings(voting)
    assert params.strategy.patterns.enabled and params.strategy.base_weights()["patterns"] == 0.7
    assert params.config["patterns"]["weight"] == 0.7 and params.version == config_version(voting) != config_version(
        plain
    )
    assert params.strategy.bars_history == params.strategy.patterns.lookback
    sma = DecisionParams.from_settings(voting, StrategyParams(rule="sma_cross"))
    assert sma.strategy.bars_history == 0 and "patterns" not in sma.strategy.base_weights(), "only the SMA rule"
    with pytest.raises(ValueError, match="pattern_weight"):
        Settings(pattern_weight=-1)


def _snapshot(params: DecisionParams, bars) -> Snapshot:
    row = {"exchange": params.exchange, "timeframe": params.timeframe, "symbol": "AAA/USDT",
           "ts": AS_OF - timedelta(hours=1), "known_at": AS_OF, "dbt_invocation_id": "inv-1", "close": 100.0,
           "ema_10": 100.0, "ema_50": 100.0, "macd_hist": 0.0, "rsi_14": 50.0, "realized_vol_20": 0.01}  # fmt: skip
    market = MarketView(features={"AAA/USDT": row}, closes={"AAA/USDT": [b.close for b in bars]},
                        news={"AAA/USDT": []}, scores={}, bars={"AAA/USDT": bars})  # fmt: skip
    agents = params.strategy.base_weights()
    account = AccountView(
        kill_switch=KillSwitchState(False, "never engaged", ""),
        portfolio=PortfolioContext(equity=Decimal(100_000), peak_equity=Decimal(100_000)).prepared(),
        positions={"AAA/USDT": (Decimal(0), Decimal(0))},
        weights={a: AgentWeight(a, w, None, 0) for a, w in agents.items()},
        trades=trade_stats([]),
    )
    ids = {"AAA/USDT": decision_id_for("acct", "AAA/USDT", params.timeframe, AS_OF, params.version)}
    return Snapshot("acct", AS_OF, ("AAA/USDT",), ids, frozenset(), market, account, "lexicon-test", None)


def test_a_confirmed_double_bottom_moves_the_vote_by_the_analysts_weight() -> None:
    drawn_bars = as_bars(*drawn(mirrored(DOUBLE_TOP)), start=AS_OF - timedelta(hours=27))[:27]  # done at the last bar
    without = DecisionParams.from_settings(Settings(exchange="x"))
    with_patterns = DecisionParams.from_settings(Settings(exchange="x", pattern_weight=2.0))
    [plain] = decide_snapshot(_snapshot(without, drawn_bars), without, run_id="r")
    [voted] = decide_snapshot(_snapshot(with_patterns, drawn_bars), with_patterns, run_id="r")
    assert [o.agent for o in plain.outputs] == ["technical", "news", "llm"]
    assert [o.agent for o in voted.outputs] == ["technical", "news", "llm", "patterns"]
    pattern = voted.decision.opinions[-1]
    assert pattern.action is Action.BUY and not pattern.skipped
    assert pattern == pattern_opinion(drawn_bars, "AAA/USDT", AS_OF, with_patterns.strategy.patterns)
    assert plain.decision.action is Action.HOLD and voted.decision.action is Action.BUY, "the pattern tips the vote"
    learned = learned_consensus(with_patterns, _snapshot(with_patterns, drawn_bars).account_view.weights)
    assert (voted.decision.action, voted.decision.score) == consensus(voted.decision.opinions, learned)
    assert voted.outputs[-1].input_ref["bars"] == 27 and voted.row.inputs["weights"]["patterns"]["weight"] == 2.0
    assert voted.row.config_version == with_patterns.version != plain.row.config_version
    one_bar_earlier = decide_snapshot(_snapshot(with_patterns, drawn_bars[:26]), with_patterns, run_id="r")[0]
    assert one_bar_earlier.decision.opinions[-1].action is not Action.BUY, "not known before its completing bar"


@pytest.fixture(scope="module")
def data(engine, prefect_harness, tmp_path_factory) -> Iterator[SampleData]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHALOOM_EXCHANGE", EXCHANGE)
        mp.setenv("ALPHALOOM_HOME", str(tmp_path_factory.mktemp("pthome")))
        get_settings.cache_clear()
        sample = generate(Path(tmp_path_factory.mktemp("pt")), seed=31, days=20, exchange=EXCHANGE)
        for state in (
            ingest_prices([str(p) for p in sample.price_files], quality=False, return_state=True),
            ingest_news([str(p) for p in sample.news_files], quality=False, return_state=True),
            build_features(return_state=True),
        ):
            assert state.is_completed(), state
        with engine.begin() as conn:
            conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test') on conflict do nothing"),
                         {"r": RUN})  # fmt: skip
        try:
            yield sample
        finally:  # later modules' incremental feature builds never see this exchange
            with engine.begin() as conn:
                conn.execute(text("delete from marts.features where exchange = :e"), {"e": EXCHANGE})
                conn.execute(text("delete from raw.ohlcv where exchange = :e"), {"e": EXCHANGE})
    get_settings.cache_clear()


def test_the_cursor_gives_the_live_bars_and_the_same_pattern_opinions_at_every_as_of(engine, data) -> None:
    settings = Settings(exchange=EXCHANGE, pattern_weight=0.5)
    params = DecisionParams.from_settings(settings)
    patterns, scorer, symbols = params.strategy.patterns, LexiconScorer(), list(data.symbols)
    start = data.start + timedelta(days=3)  # before the analyst's full lookback: the history reaches back before it
    rng = random.Random(21)
    span = int((data.end - start).total_seconds())
    times = [start + timedelta(seconds=rng.randrange(span + 1)) for _ in range(40)] + [start, data.end]
    opinions = set()
    with engine.connect() as conn:
        cursor = ReplayCursor.load(conn, symbols=symbols, start=start, end=data.end, params=params, scorer=scorer,
                                   run_id=RUN)  # fmt: skip
        for as_of in times:
            live = read_market_view(conn, symbols=symbols, as_of=as_of, run_id=RUN, params=params, scorer=scorer)
            replayed = cursor.market_at(as_of, symbols)
            assert replayed.bars == live.bars and set(live.bars) == set(live.features), as_of
            for symbol, bars in live.bars.items():
                assert 0 < len(bars) <= patterns.lookback
                assert bars[-1].ts + bar_length("1h") <= as_of, "only bars known at as_of"
                assert bars[-1].ts == live.features[symbol]["ts"].astimezone(UTC)
                mine = pattern_opinion(replayed.bars[symbol], symbol, as_of, patterns)
                assert mine == pattern_opinion(bars, symbol, as_of, patterns)
                opinions.add((mine.action, mine.skipped))
    assert len(opinions) >= 3, opinions
    plain = DecisionParams.from_settings(Settings(exchange=EXCHANGE))
    with engine.connect() as conn:
        view = read_market_view(conn, symbols=symbols, as_of=data.end, run_id=RUN, params=plain, scorer=scorer)
    assert view.bars == {}, "no bars are read while the analyst does not vote"


_AUDIT = {
    "decisions": """select d.symbol, d.as_of, d.action, d.score, d.config_version, d.inputs
                    from audit.decisions d where d.account = :a order by 1, 2""",
    "agent_outputs": """select d.symbol, d.as_of, o.agent, o.input_ref, o.output, o.skipped
                        from audit.agent_outputs o join audit.decisions d using (decision_id)
                        where d.account = :a order by 1, 2, 3""",
    "opinion_outcomes": """select symbol, as_of, agent, realised_at, action, confidence, realised_return, hit
                           from audit.opinion_outcomes where account = :a order by 1, 2, 3""",
    "agent_weights": """select agent, as_of, weight, hit_rate, scored from audit.agent_weights where account = :a
                        order by 1, 2""",
    "fills": """select f.symbol, f.side, f.quantity, f.price, f.ts from audit.fills f where f.account = :a
                order by f.ts, f.symbol""",
}


def test_the_replay_engine_records_the_pattern_analyst_as_the_live_step_path_does(engine, data) -> None:
    from agents.audit_buffer import AuditBuffer
    from agents.team import Team
    from execution.accounts.registry import ensure_account
    from flows.backtest import CHUNK_STEPS, Replay, ReplayWindow, _bar_opens, _step, replay_chunk
    from flows.decide import decision_times

    settings = get_settings().model_copy(update={"pattern_weight": 1.5})
    strategy, scorer = StrategyParams(), LexiconScorer()
    symbols = list(data.symbols)[:2]
    times = decision_times(data.end - timedelta(days=1), 60, "1h")
    opens = _bar_opens(engine, settings, symbols, times[0], times[-1])
    rows = {}
    for path in ("live", "replay"):
        account, run_id = f"pattern-parity-{path}", f"pattern-parity-{path}-run"
        with engine.begin() as conn:
            conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
            ensure_account(conn, account, "paper", "USDT", "paper", settings.starting_cash, run_id)
        window = (
            ReplayWindow.load(engine, account=account, symbols=symbols, times=times, run_id=run_id,
                              settings=settings, strategy=strategy, scorer=scorer)
            if path == "replay" else None
        )  # fmt: skip
        audit = AuditBuffer("full") if path == "replay" else None
        replay = Replay(account, symbols, run_id, settings, Team(scorer, None), strategy, "next_open", times[-1],
                        opens, window, audit)  # fmt: skip
        if path == "live":
            for as_of in times:
                _step(replay, as_of)
        else:
            for first in range(0, len(times), CHUNK_STEPS):
                replay_chunk.fn(replay, times[first : first + CHUNK_STEPS])
        with engine.connect() as conn:
            rows[path] = {name: conn.execute(text(sql), {"a": account}).all() for name, sql in _AUDIT.items()}
    live = rows["live"]
    voted = [r for r in live["agent_outputs"] if r.agent == "patterns" and not r.skipped]
    assert len(live["decisions"]) == 60 * len(symbols) and voted, "the analyst gave opinions"
    assert all(r.input_ref["bars"] == DecisionParams.from_settings(settings).strategy.patterns.lookback for r in voted)
    assert {r.config_version for r in live["decisions"]} == {config_version(settings)}
    assert "patterns" in {r.agent for r in live["agent_weights"]}
    assert any(r.agent == "patterns" for r in live["opinion_outcomes"]), "its opinions are scored like the others"
    for name in _AUDIT:
        assert rows["replay"][name] == live[name], name


def test_replace_keeps_an_explicit_strategy_weight_over_the_setting() -> None:
    strategy = replace(StrategyParams(), patterns=PatternParams(weight=0.3))
    params = DecisionParams.from_settings(Settings(exchange="x", pattern_weight=0.9), strategy)
    assert params.strategy.patterns.weight == 0.3
