"""TWAP slices spread over time, on the durable paper venue: the first slice goes out at once, the others are recorded
in ``audit.scheduled_slices`` and released by ``execution.algos.release`` when due (not before), each exactly once, also
across a crash between journal and record; the kill switch cancels what is still scheduled; a later decision on the
other side supersedes the rest; slippage is measured per slice against the parent's arrival price."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from support.twap_world import (
    HOUR,
    SETTINGS,
    T0,
    SimulatedCrash,
    Venue,
    execute_intent,
    legs_sent,
    query_rows,
    record_decision,
    world,
)

from alphaloom.domain import ClientOrderId, DecisionId, OrderIntent, Side, client_order_id_for
from alphaloom.ops.kill_switch import set_kill_switch
from alphaloom.settings import LlmSettings, Settings, SplitSettings
from execution.algos.release import release_due_children
from execution.algos.schedule import ScheduledSlice, due_slices
from execution.algos.splitting import SplitPolicy, split_intents
from execution.killswitch import cancel_open_orders
from execution.submit import execute

D = Decimal
SAME = {("a", "X/USD"): D(1)}  # the pure plans' account "a" is in USD: 1 USD per USD


def _release(engine: Engine, broker: Venue, at: datetime, run_id: str, account: str):
    """The pass for one account (the test database holds other tests' schedules too)."""
    with engine.begin() as conn:
        return release_due_children(conn, broker, at, settings=SETTINGS, run_id=run_id, account=account)  # type: ignore[arg-type]


def _venue_counts(engine: Engine, account: str) -> dict[str, int]:
    rows = query_rows(engine, "select client_order_id, count(*) as n from paper_venue.orders where account = :a group by 1",
                 a=account)  # fmt: skip
    return {r.client_order_id: int(r.n) for r in rows}


def test_the_split_plan_spreads_a_twap_over_its_duration_and_due_slices_is_pure() -> None:
    parent = OrderIntent(DecisionId("d"), "a", "X/USD", Side.BUY, D(50), D(100))
    plan = split_intents([parent], SplitPolicy(D(1000), "twap", 4, duration=timedelta(minutes=60)), SAME)
    offsets = [plan.offsets[client_order_id_for(c.decision_id, c.leg)] for c in plan.intents]
    assert offsets == [timedelta(minutes=m) for m in (0, 15, 30, 45)]
    assert split_intents([parent], SplitPolicy(D(1000), "twap", 4), SAME).offsets == {}  # no duration: all at once
    slices = [
        ScheduledSlice(ClientOrderId(f"c{n}"), ClientOrderId("p"), parent, D(100), T0 + timedelta(minutes=15 * n), s)
        for n, s in enumerate(["released", "scheduled", "scheduled", "cancelled"])
    ]
    assert [s.client_order_id for s in due_slices(slices, T0 + timedelta(minutes=30))] == ["c1", "c2"]
    assert due_slices(slices, T0 + timedelta(minutes=14)) == []
    with pytest.raises(ValueError, match="twap duration must not be negative"):
        SplitPolicy(D(1000), "twap", 4, duration=timedelta(minutes=-1))


def test_slices_are_released_at_their_due_times_and_not_before(engine: Engine) -> None:
    account, run_id, intent = world(engine)
    broker = Venue(engine)
    first = execute_intent(engine, intent, run_id, broker)
    assert first.broker_submits == 1 and len(first.scheduled) == 3 and legs_sent(engine, account) == [1]
    schedule = query_rows(engine, "select leg, due_at, status, arrival_price from audit.scheduled_slices "
                     "where account = :a order by leg", a=account)  # fmt: skip
    assert [(r.leg, r.due_at, r.status) for r in schedule] == [
        (1, T0, "released"), (2, T0 + HOUR, "scheduled"), (3, T0 + 2 * HOUR, "scheduled"),
        (4, T0 + 3 * HOUR, "scheduled"),
    ]  # fmt: skip
    assert {D(r.arrival_price) for r in schedule} == {D(100)}  # the last close known at T0

    assert _release(engine, broker, T0 + HOUR - timedelta(seconds=1), run_id, account).broker_submits == 0
    assert legs_sent(engine, account) == [1]
    at_1h = _release(engine, broker, T0 + HOUR, run_id, account)
    assert at_1h.broker_submits == 1 and legs_sent(engine, account) == [1, 2]
    at_3h = _release(engine, broker, T0 + 3 * HOUR, run_id, account)  # late: both overdue slices go
    assert at_3h.broker_submits == 2 and legs_sent(engine, account) == [1, 2, 3, 4]

    orders = query_rows(engine, "select client_order_id, leg, quantity, reference_price, parent_client_order_id, "
                   "arrival_price, status from audit.orders where account = :a order by leg", a=account)  # fmt: skip
    parent_id = client_order_id_for(intent.decision_id, 0)
    assert {o.parent_client_order_id for o in orders} == {parent_id} and {o.status for o in orders} == {"filled"}
    assert [D(o.quantity) for o in orders] == [12, 12, 12, 14]
    # each slice is priced at the bar close known when it is released, measured against the parent's arrival (100)
    assert [D(o.reference_price) for o in orders] == [100, 102, 101, 101]
    assert {D(o.arrival_price) for o in orders} == {D(100)}
    final = query_rows(engine, "select details from audit.order_events where client_order_id = :c and to_status = 'filled'",
                  c=orders[1].client_order_id)[0].details  # fmt: skip
    # 102 * (1 + 5 bps) = 102.051 against 100: 205.1 bps
    assert (final["arrival_price"], final["slippage_bps_vs_arrival"]) == ("100", "205.1000")
    held = query_rows(engine, "select quantity from audit.positions where account = :a", a=account)[0].quantity
    assert D(held) == D(50)
    assert set(_venue_counts(engine, account).values()) == {1} and len(_venue_counts(engine, account)) == 4


def test_running_the_release_or_the_decision_again_sends_nothing_twice(engine: Engine) -> None:
    account, run_id, intent = world(engine)
    broker = Venue(engine)
    execute_intent(engine, intent, run_id, broker)
    again = execute_intent(engine, intent, run_id, broker)  # the same decision retried: its schedule is found
    assert again.broker_submits == 0 and len(again.duplicates) == 1 and len(again.scheduled) == 3
    assert _release(engine, broker, T0 + HOUR, run_id, account).broker_submits == 1
    assert _release(engine, broker, T0 + HOUR, run_id, account).broker_submits == 0
    assert execute_intent(engine, intent, run_id, broker, T0 + HOUR).broker_submits == 0
    finer = Settings(timeframe="1h", split=SplitSettings(above_notional=D(1000), slices=5, twap_duration_minutes=240))
    with engine.begin() as conn:  # retried in another shape: the recorded schedule stands
        other = execute(conn, [intent], run_id=run_id, broker=broker, settings=finer, event_time=T0 + 4 * HOUR)  # type: ignore[arg-type]
    assert other.broker_submits == 0
    assert _release(engine, broker, T0 + 4 * HOUR, run_id, account).broker_submits == 2
    assert _release(engine, broker, T0 + 4 * HOUR, run_id, account).broker_submits == 0
    assert legs_sent(engine, account) == [1, 2, 3, 4] and set(_venue_counts(engine, account).values()) == {1}


@pytest.mark.parametrize(("fault", "recovered", "resent"), [("after_submit", 1, 0), ("before_submit", 0, 1)])
def test_a_crash_between_journal_and_record_of_a_slice_then_a_rerun_loses_and_doubles_nothing(
    engine: Engine, fault: str, recovered: int, resent: int
) -> None:
    account, run_id, intent = world(engine)
    execute_intent(engine, intent, run_id, Venue(engine))
    slice_2 = client_order_id_for(intent.decision_id, 2)
    with pytest.raises(SimulatedCrash):
        _release(engine, Venue(engine, {slice_2: fault}), T0 + HOUR, run_id, account)
    status = query_rows(engine, "select status from audit.scheduled_slices where client_order_id = :c", c=slice_2)
    assert status[0].status == "scheduled" and legs_sent(engine, account) == [1]  # rolled back, journal kept
    restarted = Venue(engine)
    rerun = _release(engine, restarted, T0 + HOUR, run_id, account)
    assert len(rerun.results[account].recovered) == recovered and restarted.submits == resent
    assert _release(engine, restarted, T0 + HOUR, run_id, account).broker_submits == 0
    assert legs_sent(engine, account) == [1, 2]
    assert _venue_counts(engine, account) == {client_order_id_for(intent.decision_id, 1): 1, slice_2: 1}
    fills = query_rows(engine, "select client_order_id from audit.fills where account = :a", a=account)
    assert sorted(f.client_order_id for f in fills) == sorted([client_order_id_for(intent.decision_id, 1), slice_2])


def test_a_crash_after_the_first_slice_was_sent_loses_neither_it_nor_the_schedule(engine: Engine) -> None:
    account, run_id, intent = world(engine)
    slice_1 = client_order_id_for(intent.decision_id, 1)
    with pytest.raises(SimulatedCrash):  # the schedule rolls back with it; the journal stays
        execute_intent(engine, intent, run_id, Venue(engine, {slice_1: "after_submit"}))
    assert query_rows(engine, "select 1 from audit.scheduled_slices where account = :a", a=account) == []
    restarted = Venue(engine)
    rerun = execute_intent(engine, intent, run_id, restarted)
    assert len(rerun.recovered) == 1 and restarted.submits == 0 and len(rerun.scheduled) == 3
    assert _release(engine, restarted, T0 + 3 * HOUR, run_id, account).broker_submits == 3
    assert legs_sent(engine, account) == [1, 2, 3, 4] and set(_venue_counts(engine, account).values()) == {1}


def test_the_kill_switch_cancels_the_scheduled_slices_and_nothing_more_is_sent(engine: Engine) -> None:
    account, run_id, intent = world(engine)
    broker = Venue(engine)
    execute_intent(engine, intent, run_id, broker)
    with engine.begin() as conn:
        set_kill_switch(conn, True, "test: stop", "test")
        # no broker: the paper venue's open orders are other tests' business; the slices were never sent anywhere
        summary = cancel_open_orders(conn, [], run_id=run_id, event_time=T0, reason="test: stop")
    try:
        assert len(summary.slices_cancelled) >= 3
        statuses = query_rows(engine, "select leg, status, reason from audit.scheduled_slices where account = :a "
                         "order by leg", a=account)  # fmt: skip
        assert [(s.leg, s.status) for s in statuses] == [(1, "released"), (2, "cancelled"), (3, "cancelled"),
                                                         (4, "cancelled")]  # fmt: skip
        assert statuses[1].reason == "kill switch: test: stop"
        with engine.begin() as conn:
            set_kill_switch(conn, False, "test: resume", "test")
        later = _release(
            engine, broker, T0 + 4 * HOUR, run_id, account
        )  # even once it is off again: they are cancelled
        assert later.due == [] and broker.submits == 1 and legs_sent(engine, account) == [1]
    finally:
        with engine.begin() as conn:
            set_kill_switch(conn, False, "test: done", "test")


def test_a_slice_meeting_the_kill_switch_is_not_sent_and_stops_its_parent(engine: Engine) -> None:
    account, run_id, intent = world(engine)
    broker = Venue(engine)
    execute_intent(engine, intent, run_id, broker)
    with engine.begin() as conn:  # engaged without cancelling (kill_switch_cancels_open_orders off)
        set_kill_switch(conn, True, "test: no cancel", "test")
    try:
        blocked = _release(engine, broker, T0 + HOUR, run_id, account)
        assert blocked.broker_submits == 0 and blocked.results[account].kill_switch_blocked == 1
    finally:
        with engine.begin() as conn:
            set_kill_switch(conn, False, "test: done", "test")
    assert _release(engine, broker, T0 + 4 * HOUR, run_id, account).due == [] and broker.submits == 1
    statuses = query_rows(
        engine, "select status from audit.scheduled_slices where account = :a order by leg", a=account
    )
    assert [s.status for s in statuses] == ["released", "cancelled", "cancelled", "cancelled"]


def test_a_later_decision_on_the_other_side_cancels_the_remaining_slices(engine: Engine) -> None:
    account, run_id, intent = world(engine)
    broker = Venue(engine)
    execute_intent(engine, intent, run_id, broker)
    assert _release(engine, broker, T0 + HOUR, run_id, account).broker_submits == 1  # 24 held
    sell_id = record_decision(engine, account, run_id, intent.symbol, uuid.uuid4().hex[:8], "sell")
    sell = OrderIntent(sell_id, account, intent.symbol, Side.SELL, D(5), D(102))  # small: not split
    result = execute_intent(engine, sell, run_id, broker, T0 + HOUR + timedelta(minutes=30))
    assert result.broker_submits == 1 and result.superseded == 2
    assert _release(engine, broker, T0 + 4 * HOUR, run_id, account).due == []
    statuses = query_rows(engine, "select status, reason from audit.scheduled_slices where account = :a order by leg",
                     a=account)  # fmt: skip
    assert [s.status for s in statuses] == ["released", "released", "cancelled", "cancelled"]
    assert statuses[2].reason == f"superseded by decision {sell_id} (sell)"
    held = query_rows(engine, "select quantity from audit.positions where account = :a", a=account)[0].quantity
    assert D(held) == D(19)


def _bullish_bars(engine: Engine, tag: str, exchange: str, symbol: str) -> None:
    """Four bullish bars closing at T0 .. T0+3h (close 100, 101, 102, 103), each with its features row known then."""
    from support.features import FEATURES_DDL

    from agents.team import FEATURE_COLUMNS

    bullish = {"ema_10": 105.0, "ema_50": 100.0, "macd_hist": 0.5, "rsi_14": 60.0}
    with engine.begin() as conn:
        conn.execute(text(FEATURES_DDL))
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": f"run-{tag}"})
        for k in range(4):  # the bar closing at T0 + k hours, known then
            ts, close = T0 - HOUR + k * HOUR, 100 + k
            conn.execute(
                text("""insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume,
                                            run_id)
                        values (:e, :s, '1h', :ts, :c, :c, :c, :c, 1000000000, :r)"""),
                {"e": exchange, "s": symbol, "ts": ts, "c": close, "r": f"run-{tag}"},
            )  # fmt: skip
            row = {c: {**bullish, "close": float(close)}.get(c) for c in FEATURE_COLUMNS}
            conn.execute(
                text(f"""insert into marts.features (exchange, symbol, timeframe, ts, known_at,
                             {", ".join(FEATURE_COLUMNS)}, dbt_invocation_id)
                         values (:e, :s, '1h', :ts, :k, {", ".join(":" + c for c in FEATURE_COLUMNS)}, 'inv')"""),
                {"e": exchange, "s": symbol, "ts": ts, "k": ts + HOUR, **row},
            )  # fmt: skip


def _slices_one_per_step(engine: Engine, account: str) -> None:
    """Legs 1-4 created at T0, T0+1h, T0+2h, T0+3h, each priced at the close known then, all measured against 100."""
    orders = query_rows(engine, """select o.leg, o.reference_price, o.arrival_price, o.status, e.event_ts
                              from audit.orders o join audit.order_events e
                                on e.client_order_id = o.client_order_id and e.event = 'created'
                              where o.account = :a order by o.leg""", a=account)  # fmt: skip
    assert [(o.leg, o.event_ts, D(o.reference_price)) for o in orders] == [
        (leg, T0 + (leg - 1) * HOUR, D(100 + leg - 1)) for leg in (1, 2, 3, 4)
    ]
    assert {o.status for o in orders} == {"filled"} and {D(o.arrival_price) for o in orders} == {D(100)}
    slices = query_rows(engine, "select status from audit.scheduled_slices where account = :a", a=account)
    assert [s.status for s in slices] == ["released"] * 4


def test_a_decision_flow_run_releases_the_remaining_slices_on_later_steps(
    engine: Engine, prefect_harness, receiver, monkeypatch
) -> None:
    from alphaloom.settings import get_settings
    from flows.decide import decide_flow

    tag = uuid.uuid4().hex[:8]
    account, exchange, symbol = f"twap-flow-{tag}", f"test-twap-{tag}", f"F{tag}/USDT"
    for name, value in {"ACCOUNT": account, "EXCHANGE": exchange, "TIMEFRAME": "1h", "SYMBOLS": symbol,
                        "ORDER_NOTIONAL": "5000", "SPLIT_ABOVE_NOTIONAL": "1000", "SPLIT_SLICES": "4",
                        "TWAP_DURATION_MINUTES": "180"}.items():  # fmt: skip
        monkeypatch.setenv(f"ALPHALOOM_{name}", value)
    monkeypatch.delenv("ALPHALOOM_LLM_BASE_URL", raising=False)
    get_settings.cache_clear()
    _bullish_bars(engine, tag, exchange, symbol)
    try:
        state = decide_flow(symbols=[symbol], as_of=T0 + 3 * HOUR, steps=4, return_state=True)
        assert state.is_completed(), state
        totals = state.result()
    finally:
        get_settings.cache_clear()
    # one buy decision (the later steps hold the position): its first slice at once, one more slice at each step
    assert (totals["submitted"], totals["released"]) == (1, 3)
    _slices_one_per_step(engine, account)


def test_the_backtest_step_releases_the_slices_due_at_the_bars_prices(engine: Engine) -> None:
    from agents.sentiment import LexiconScorer
    from agents.team import StrategyParams, Team
    from flows.backtest import Replay, replay_step
    from flows.decide import _ensure_paper_account

    tag = uuid.uuid4().hex[:8]
    account, exchange, symbol = f"twap-bt-{tag}", f"test-twap-bt-{tag}", f"B{tag}/USDT"
    settings = Settings(
        exchange=exchange,
        timeframe="1h",
        symbols=[symbol],
        order_notional=D(5000),
        llm=LlmSettings(base_url=None),
        split=SplitSettings(above_notional=D(1000), slices=4, twap_duration_minutes=180),
    )
    _bullish_bars(engine, tag, exchange, symbol)
    _ensure_paper_account(settings, account, f"run-{tag}")
    replay = Replay(account, [symbol], f"run-{tag}", settings, Team(LexiconScorer(), None), StrategyParams(), "close",
                    T0 + 3 * HOUR, {})  # fmt: skip
    counts = [replay_step.fn(replay, T0 + k * HOUR) for k in range(4)]
    assert [c["intents"] for c in counts] == [1, 0, 0, 0]  # one buy; its slices come out one a step
    _slices_one_per_step(engine, account)


def test_the_protect_flow_on_a_new_bar_releases_the_slices_due(engine: Engine, prefect_harness, monkeypatch) -> None:
    from alphaloom.settings import get_settings
    from flows.protect import protect_positions

    account, run_id, intent = world(engine)
    execute_intent(engine, intent, run_id, Venue(engine))
    monkeypatch.setenv("ALPHALOOM_EXCHANGE", SETTINGS.exchange)
    monkeypatch.setenv("ALPHALOOM_TIMEFRAME", "1h")
    get_settings.cache_clear()
    try:
        early = protect_positions(as_of=T0 + HOUR - timedelta(minutes=1), account=account)
        on_time = protect_positions(as_of=T0 + 2 * HOUR, account=account)
    finally:
        get_settings.cache_clear()
    assert (early["slices_sent"], on_time["slices_sent"]) == (0, 2)
    assert legs_sent(engine, account) == [1, 2, 3]
