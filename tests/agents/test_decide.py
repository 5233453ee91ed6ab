"""The decision team end to end against PostgreSQL: hand-made ``marts.features`` rows and news -> decide -> execute."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from support.decision_world import HOUR, T0, CountingBroker, World
from support.features import BEARISH, BULLISH, FEATURES_DDL

from agents.sentiment import LexiconScorer
from agents.team import config_version
from alphaloom.domain import Action, Decision, OrderIntent, client_order_id_for
from alphaloom.ops.kill_switch import kill_switch_state, set_kill_switch
from alphaloom.settings import LlmSettings, Settings
from execution.accounts.registry import cash_balance, ensure_account
from execution.brokers.paper import PaperBroker


@pytest.fixture()
def world(engine: Engine, scorer: LexiconScorer) -> World:
    tag = uuid.uuid4().hex[:8].upper()
    settings = Settings(
        exchange=f"test-{tag}", timeframe="1h", order_notional=Decimal(5000), llm=LlmSettings(base_url=None)
    )
    run_id, account = f"run-{tag}", f"acct-{tag}"
    with engine.begin() as conn:
        conn.execute(text(FEATURES_DDL))
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "USDT", "paper", Decimal(100000), run_id)

    def switch():
        with engine.connect() as conn:
            return kill_switch_state(conn)

    broker = CountingBroker(PaperBroker(fee_bps=Decimal(10), slippage_bps=Decimal(5), kill_switch=switch))
    return World(engine, settings, account, run_id, tag, broker, scorer)


def _intents(decisions: Sequence[Decision]) -> list[OrderIntent]:
    return [intent for d in decisions for intent in d.intents]


def test_buy_then_sell_round_trip_one_order_per_signal(world: World) -> None:
    buyer, holder, absent = world.symbol("BUY"), world.symbol("HOLD"), world.symbol("NONE")
    world.features(buyer, T0, BULLISH)
    world.features(holder, T0, {**BULLISH, "macd_hist": -0.5, "rsi_14": 50.0})  # mixed trend: hold
    as_of = T0 + HOUR

    decisions = world.decide([buyer, holder, absent], as_of)
    assert [(d.symbol, d.action) for d in decisions] == [(buyer, Action.BUY), (holder, Action.HOLD)]  # absent skipped
    [buy] = _intents(decisions)
    assert (buy.quantity, buy.reference_price) == (Decimal(50), Decimal(100))  # floor(5000 / 100)
    result = world.execute([buy], as_of)
    assert world.broker.submits == 1 and result.submitted[0].client_order_id == client_order_id_for(buy.decision_id, 0)

    world.features(buyer, T0 + HOUR, BEARISH)
    sell_decisions = world.decide([buyer], as_of + HOUR)
    [sell] = _intents(sell_decisions)
    assert (sell.side.value, sell.quantity, sell.reference_price) == ("sell", Decimal(50), Decimal(98))
    world.execute([sell], as_of + HOUR)
    assert world.broker.submits == 2

    orders = world.query("select client_order_id, side from audit.orders where account = :a", a=world.account)
    assert len({o.client_order_id for o in orders}) == 2 and sorted(o.side for o in orders) == ["buy", "sell"]
    [position] = world.query(
        "select quantity, realized_pnl from audit.positions where account = :a and symbol = :s",
        a=world.account,
        s=buyer,
    )
    # buy 50 @ 100.05 (+ fee 5.0025) = 5007.5025; sell 50 @ 97.951 (- fee 4.89755) = 4892.65245
    assert Decimal(position.quantity) == 0 and Decimal(position.realized_pnl) == Decimal("-114.85005")
    with world.engine.connect() as conn:
        assert cash_balance(conn, world.account, "USDT") == Decimal("99885.14995")


def test_rerunning_the_same_decision_submits_nothing(world: World) -> None:
    symbol = world.symbol("RERUN")
    world.features(symbol, T0, BULLISH)
    first = world.decide([symbol], T0 + HOUR)
    world.execute(_intents(first), T0 + HOUR)
    assert world.broker.submits == 1

    again = world.decide([symbol], T0 + HOUR)
    assert [d.decision_id for d in again] == [d.decision_id for d in first]
    assert _intents(again) == [] and again[0].action is Action.BUY and len(again[0].opinions) == 3
    world.execute(_intents(again), T0 + HOUR)
    replay = world.execute(_intents(first), T0 + HOUR)  # even replaying the first intents sends nothing
    assert world.broker.submits == 1 and len(replay.duplicates) == 1
    [count] = world.query("select count(*) from audit.decisions where account = :a", a=world.account)
    assert count[0] == 1


def test_config_version_changes_with_limits_and_not_with_the_scorer(world: World) -> None:
    base = config_version(world.settings)
    assert config_version(world.settings.model_copy(update={"risk.max_order_notional": Decimal(1)})) != base
    assert config_version(world.settings.model_copy(update={"llm.base_url": "http://x"})) == base


def test_kill_switch_means_zero_broker_submits(world: World) -> None:
    symbol, later = world.symbol("KILL"), world.symbol("KILL2")
    world.features(symbol, T0, BULLISH)
    world.features(later, T0, BULLISH)
    before = world.decide([symbol], T0 + HOUR)  # approved while the switch was off
    assert len(_intents(before)) == 1
    with world.engine.begin() as conn:
        set_kill_switch(conn, True, "test drill", "test_decide")
    try:
        during = world.decide([later], T0 + HOUR)
        result = world.execute(_intents(before) + _intents(during), T0 + HOUR)
    finally:
        with world.engine.begin() as conn:
            set_kill_switch(conn, False, "drill over", "test_decide")
    assert _intents(during) == [] and result.kill_switch_blocked == 1 and world.broker.submits == 0
    [check] = world.query(
        "select approved, reason from audit.risk_checks where decision_id = :d and check_name = 'kill_switch'",
        d=during[0].decision_id,
    )
    assert not check.approved and "test drill" in check.reason


def test_risk_denial_records_the_check_and_creates_no_intent(world: World) -> None:
    symbol = world.symbol("BIG")
    world.features(symbol, T0, BULLISH)
    world.settings = world.settings.model_copy(update={"order_notional": Decimal(15000)})  # > max order 10000
    [decision] = world.decide([symbol], T0 + HOUR)
    assert decision.action is Action.BUY and decision.intents == ()
    checks = {
        r.check_name: r
        for r in world.query(
            "select check_name, approved, numbers from audit.risk_checks where decision_id = :d",
            d=decision.decision_id,
        )
    }
    assert not checks["max_order_notional"].approved and checks["kill_switch"].approved
    assert checks["max_order_notional"].numbers == {"notional": "15000", "limit": "10000"}
    assert world.query("select 1 from audit.orders where decision_id = :d", d=decision.decision_id) == []


def test_decision_reads_only_what_was_known_at_as_of_and_records_it(world: World) -> None:
    symbol = world.symbol("PIT")
    world.features(symbol, T0, BEARISH)  # known at T0 + 1h
    world.features(symbol, T0 + HOUR, BULLISH)  # known at T0 + 2h: after as_of
    as_of = T0 + HOUR + timedelta(minutes=30)
    seen = world.news(symbol, "Record profit beats estimates", as_of - timedelta(minutes=10))
    world.news(symbol, "Fraud probe and bankruptcy fears", as_of + timedelta(minutes=1))  # not yet seen

    [decision] = world.decide([symbol], as_of)
    [row] = world.query(
        "select inputs, dbt_invocation_id, git_sha, config_version from audit.decisions where decision_id = :d",
        d=decision.decision_id,
    )
    features = row.inputs["features"]
    assert features["key"]["ts"] == T0.isoformat() and features["values"]["ema_10"] == 95.0
    assert row.dbt_invocation_id == "dbt-inv-1" and features["dbt_invocation_id"] == "dbt-inv-1"
    assert [n["id"] for n in row.inputs["news"]] == [seen] and row.inputs["news"][0]["label"] == "positive"
    assert row.inputs["scorer"] == "lexicon-lm" and row.inputs["position"] == {"quantity": "0", "avg_price": "0"}
    assert row.config_version == config_version(world.settings)

    outputs = {
        r.agent: r
        for r in world.query(
            "select agent, skipped, output from audit.agent_outputs where decision_id = :d", d=decision.decision_id
        )
    }
    assert set(outputs) == {"technical", "news", "llm"}
    assert outputs["llm"].skipped and outputs["llm"].output["rationale"] == "no LLM endpoint configured"
    assert outputs["technical"].output["action"] == "sell" and outputs["news"].output["details"]["count"] == 1

    lineage = world.query(
        "select parent_table, parent_key from audit.lineage where child_table = 'audit.decisions' and child_id = :d",
        d=decision.decision_id,
    )
    parents = {(r.parent_table, r.parent_key.get("ts") or r.parent_key.get("id")) for r in lineage}
    assert parents == {("marts.features", T0.isoformat()), ("raw.ohlcv", T0.isoformat()), ("raw.news", seen)}


def test_a_decisions_config_is_recorded_once_under_its_version_and_not_in_its_inputs(world: World) -> None:
    from agents.params import DecisionParams
    from alphaloom.records.decisions import decision_config
    from alphaloom.reporting.explain import explain_decision

    symbols = [world.symbol("CA"), world.symbol("CB")]
    for symbol in symbols:
        world.features(symbol, T0, BULLISH)
    [first, _] = world.decide(symbols, T0 + HOUR)
    world.decide(symbols, T0 + 2 * HOUR)
    rows = world.query("select config_version, inputs from audit.decisions where run_id = :r", r=world.run_id)
    assert len(rows) == 4 and {r.config_version for r in rows} == {config_version(world.settings)}
    assert not any("config" in r.inputs for r in rows)
    params = DecisionParams.from_settings(world.settings)
    [recorded] = world.query("select config, run_id from audit.decision_configs where config_version = :v",
                             v=params.version)  # fmt: skip
    assert recorded.config == params.config and recorded.run_id == world.run_id
    with world.engine.connect() as conn:  # what an operator reads: by version, and with the decision explained
        assert decision_config(conn, params.version) == params.config
        assert explain_decision(conn, first.decision_id).decision.config == params.config


def test_a_symbol_with_no_known_features_is_skipped_and_recorded_nowhere(world: World) -> None:
    symbol = world.symbol("LATE")
    world.features(symbol, T0, BULLISH)  # known at T0 + 1h
    assert world.decide([symbol], T0 + timedelta(minutes=59)) == []
    assert world.query("select 1 from audit.decisions where symbol = :s", s=symbol) == []


def test_volatility_target_sizes_the_buy_and_records_the_size_and_its_inputs(world: World) -> None:
    symbol = world.symbol("VOL")
    world.features(symbol, T0, {**BULLISH, "realized_vol_20": 0.01})
    world.settings = world.settings.model_copy(
        update={"risk.sizing_mode": "vol_target", "risk.target_volatility": 0.05}
    )
    [decision] = world.decide([symbol], T0 + HOUR)
    # 1h bars: 8760 a year, 0.01 * sqrt(8760) = 0.935949 annualised; 100000 * 0.05 / 0.935949 = 5342.17 -> 53.4217 units
    [intent] = decision.intents
    assert intent.quantity == Decimal("53.4217")  # crypto: 1e-6 steps
    [check] = world.query(
        "select approved, numbers from audit.risk_checks where decision_id = :d and check_name = 'position_sizing'",
        d=decision.decision_id,
    )
    assert check.approved and check.numbers["source"] == "vol_target" and check.numbers["notional"] == "5342.17"
    assert check.numbers["annual_volatility"] == "0.935949" and check.numbers["equity"] == "100000.00"
    [row] = world.query("select inputs, config_version from audit.decisions where decision_id = :d",
                        d=decision.decision_id)  # fmt: skip
    assert row.inputs["sizing"]["notional"] == "5342.17" and row.config_version == config_version(world.settings)
    assert config_version(world.settings) != config_version(
        world.settings.model_copy(update={"risk.sizing_mode": "fixed"})
    )


def test_kelly_sizes_from_the_accounts_realised_trades_known_at_as_of(world: World) -> None:
    symbol, past = world.symbol("KELLY"), world.symbol("PAST")
    world.features(symbol, T0, BULLISH)
    as_of = T0 + HOUR
    # Realised buy decisions: 3 wins of +50%, 1 loss of -25% by as_of (p = 0.75, payoff 2: full Kelly 0.625); a later
    # big loss is not known yet and must not count.
    outcomes = [(0.5, as_of - 4 * HOUR), (0.5, as_of - 3 * HOUR), (0.5, as_of - 2 * HOUR), (-0.25, as_of - HOUR),
                (-0.5, as_of + HOUR)]  # fmt: skip
    with world.engine.begin() as conn:
        for n, (realised, realised_at) in enumerate(outcomes):
            decision_id = f"past-{world.tag}-{n}"
            conn.execute(
                text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                     score, config_version, inputs)
                        values (:d, :r, :a, :s, '1h', :t, 'buy', 1, 'test', '{}'::jsonb)"""),
                {"d": decision_id, "r": world.run_id, "a": world.account, "s": past, "t": realised_at - 4 * HOUR},
            )  # fmt: skip
            conn.execute(
                text("""insert into audit.opinion_outcomes (decision_id, agent, account, symbol, as_of, realised_at,
                            horizon_bars, action, confidence, entry_price, exit_price, realised_return, hit, score,
                            run_id)
                        values (:d, 'team', :a, :s, :t, :ra, 4, 'buy', 1, 100, :exit, :ret, :hit, :ret, :r)"""),
                {"d": decision_id, "a": world.account, "s": past, "t": realised_at - 4 * HOUR, "ra": realised_at,
                 "exit": 100 * (1 + realised), "ret": realised, "hit": realised > 0, "r": world.run_id},
            )  # fmt: skip
    world.settings = world.settings.model_copy(
        update={
            "risk.sizing_mode": "kelly",
            "risk.kelly_min_trades": 4,
            "risk.kelly_fraction": Decimal("0.25"),
            "risk.kelly_cap": Decimal("0.2"),
            "risk.max_order_notional": Decimal(20000),
        }
    )
    [decision] = world.decide([symbol], as_of)
    # a quarter of 0.625 = 0.15625 of 100000 equity = 15625 notional at 100: 156.25 units
    [intent] = decision.intents
    assert intent.quantity == Decimal("156.25")
    [check] = world.query(
        "select numbers from audit.risk_checks where decision_id = :d and check_name = 'position_sizing'",
        d=decision.decision_id,
    )
    assert (check.numbers["trades"], check.numbers["win_rate"], check.numbers["payoff"]) == (
        "4",
        "0.750000",
        "2.000000",
    )
    assert check.numbers["notional"] == "15625.00" and check.numbers["source"] == "kelly"
