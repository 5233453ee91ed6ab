"""Iceberg children shown one at a time, on the durable paper venue: ``execute`` sends the first child only and records
the others in ``audit.scheduled_slices``, each gated on the child before it; the release pass sends the next one only
once the one before it has filled, never twice; the kill switch cancels the rest; a child the venue rejects (or one
that ends expired) cancels the rest of its parent with the reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, text

from alphaloom.domain import ClientOrderId, DecisionId, OrderIntent, Side, client_order_id_for
from alphaloom.errors import OrderRejectedError
from alphaloom.ops.kill_switch import kill_switch_state, set_kill_switch
from alphaloom.settings import Settings, SplitSettings
from execution.accounts.registry import ensure_account
from execution.algos.release import release_due_children
from execution.algos.schedule import ScheduledSlice, due_slices, stopped_parents
from execution.algos.splitting import SplitPolicy, split_intents
from execution.brokers.base import BrokerReport, OrderRequest
from execution.brokers.paper import PaperBroker, PostgresPaperVenue
from execution.killswitch import cancel_open_orders
from execution.submit import execute

T0 = datetime(2024, 8, 1, 10, tzinfo=UTC)
D = Decimal
SAME = {("a", "X/USD"): D(1)}  # the pure plans' account "a" is in USD: 1 USD per USD
HOUR = timedelta(hours=1)
# 50 at 100 is 5000; at most 2000 shown: children of 20, 20 and 10
SETTINGS = Settings(
    timeframe="1h", split=SplitSettings(above_notional=D(1000), method="iceberg", visible_notional=D(2000))
)


class Venue:
    """A real paper broker on the durable venue (kill switch read from the database), counting submits; the venue
    rejects the planned client ids (an exchange refusing the order)."""

    def __init__(self, engine: Engine, reject: set[str] | None = None, max_participation: Decimal | None = None):
        def switch():  # type: ignore[no-untyped-def]
            with engine.connect() as conn:
                return kill_switch_state(conn)

        self.inner = PaperBroker(fee_bps=D(10), slippage_bps=D(5), kill_switch=switch, venue=PostgresPaperVenue(engine),
                                 max_participation=max_participation)  # fmt: skip
        self.name, self.live, self.reject, self.submits = self.inner.name, False, set(reject or ()), 0

    def submit(self, request: OrderRequest) -> BrokerReport:
        self.submits += 1
        if request.client_order_id in self.reject:
            raise OrderRejectedError(f"venue rejects {request.client_order_id}: insufficient liquidity")
        return self.inner.submit(request)

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        return self.inner.lookup(client_order_id)


def _world(engine: Engine, volume: int = 1000000) -> tuple[str, str, OrderIntent]:
    tag = uuid.uuid4().hex[:8]
    account, run_id, symbol = f"ice-{tag}", f"run-ice-{tag}", f"I{tag}/USDT"
    decision_id = DecisionId(f"d-ice-{tag}")
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "USDT", "paper", D(100000), run_id)
        for ts in (T0 - HOUR, T0, T0 + HOUR):
            conn.execute(
                text("""insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id)
                        values (:e, :s, '1h', :ts, 100, 100, 100, 100, :v, :r)"""),
                {"e": SETTINGS.exchange, "s": symbol, "ts": ts, "v": volume, "r": run_id},
            )  # fmt: skip
        conn.execute(
            text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                 score, config_version, inputs)
                    values (:d, :r, :a, :s, '1h', :t, 'buy', 1, 'test', '{}'::jsonb)"""),
            {"d": decision_id, "r": run_id, "a": account, "s": symbol, "t": T0},
        )  # fmt: skip
    return account, run_id, OrderIntent(decision_id, account, symbol, Side.BUY, D(50), D(100))


def _execute(engine: Engine, intent: OrderIntent, run_id: str, broker: Venue):
    with engine.begin() as conn:
        return execute(conn, [intent], run_id=run_id, broker=broker, settings=SETTINGS, event_time=T0)  # type: ignore[arg-type]


def _release(engine: Engine, broker: Venue, run_id: str, account: str, at: datetime = T0 + HOUR):
    with engine.begin() as conn:
        return release_due_children(conn, broker, at, settings=SETTINGS, run_id=run_id, account=account)  # type: ignore[arg-type]


def _rows(engine: Engine, sql: str, **params: object) -> list:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def _orders(engine: Engine, account: str) -> list[tuple[int, str]]:
    rows = _rows(engine, "select leg, status from audit.orders where account = :a order by leg", a=account)
    return [(r.leg, r.status) for r in rows]


def _slices(engine: Engine, account: str) -> list:
    return _rows(engine, "select leg, status, reason from audit.scheduled_slices where account = :a order by leg",
                 a=account)  # fmt: skip


def test_the_plan_gates_each_iceberg_child_on_the_one_before_and_due_slices_waits_for_its_fill() -> None:
    parent = OrderIntent(DecisionId("d"), "a", "X/USD", Side.BUY, D(50), D(100))
    plan = split_intents([parent], SplitPolicy(D(1000), "iceberg", visible_notional=D(2000)), SAME)
    ids = [client_order_id_for(DecisionId("d"), leg) for leg in (1, 2, 3)]
    assert plan.after == {ids[1]: ids[0], ids[2]: ids[1]} and set(plan.offsets.values()) == {timedelta(0)}
    rows = [ScheduledSlice(c, client_order_id_for(DecisionId("d"), 0), i, None, T0, "scheduled", plan.after.get(c))
            for c, i in zip(ids, plan.intents, strict=True)]  # fmt: skip
    rows[0] = ScheduledSlice(ids[0], rows[0].parent_client_order_id, plan.intents[0], None, T0, "released")
    assert due_slices(rows, T0, {ids[0]: "submitted"}) == []  # still working: the next one waits
    assert [s.client_order_id for s in due_slices(rows, T0, {ids[0]: "filled"})] == [ids[1]]
    assert stopped_parents(rows, {ids[0]: "filled"}) == {}
    assert stopped_parents(rows, {ids[0]: "expired"}) == {rows[0].parent_client_order_id: f"iceberg child {ids[0]} "
                                                                                           "ended expired"}  # fmt: skip


def test_only_the_first_child_is_sent_and_each_release_sends_the_next_after_the_previous_filled(
    engine: Engine,
) -> None:
    account, run_id, intent = _world(engine)
    broker = Venue(engine)
    first = _execute(engine, intent, run_id, broker)
    ids = [client_order_id_for(intent.decision_id, leg) for leg in (1, 2, 3)]
    assert first.broker_submits == 1 and first.scheduled == ids[1:] and _orders(engine, account) == [(1, "filled")]
    assert [(s.leg, s.status) for s in _slices(engine, account)] == [(1, "released"), (2, "scheduled"),
                                                                     (3, "scheduled")]  # fmt: skip
    second = _release(engine, broker, run_id, account)
    assert second.due == [ids[1]] and broker.submits == 2  # the third waits for the second, sent in this pass
    assert _orders(engine, account) == [(1, "filled"), (2, "filled")]
    third = _release(engine, broker, run_id, account)
    assert third.due == [ids[2]] and broker.submits == 3
    assert _orders(engine, account) == [(1, "filled"), (2, "filled"), (3, "filled")]
    quantities = _rows(engine, "select quantity from audit.orders where account = :a order by leg", a=account)
    assert [D(q.quantity) for q in quantities] == [20, 20, 10]
    # released twice (and the decision retried): nothing is sent twice
    assert _release(engine, broker, run_id, account).due == [] and broker.submits == 3
    assert _execute(engine, intent, run_id, broker).broker_submits == 0 and broker.submits == 3
    counts = _rows(engine, "select client_order_id, count(*) as n from paper_venue.orders where account = :a "
                   "group by 1", a=account)  # fmt: skip
    assert {r.client_order_id: int(r.n) for r in counts} == dict.fromkeys(ids, 1)


def test_the_kill_switch_cancels_the_rest_of_the_iceberg(engine: Engine) -> None:
    account, run_id, intent = _world(engine)
    broker = Venue(engine)
    _execute(engine, intent, run_id, broker)
    with engine.begin() as conn:
        set_kill_switch(conn, True, "test: stop iceberg", "test")
        cancel_open_orders(conn, [], run_id=run_id, event_time=T0, reason="test: stop iceberg")
    try:
        assert [(s.leg, s.status) for s in _slices(engine, account)] == [(1, "released"), (2, "cancelled"),
                                                                         (3, "cancelled")]  # fmt: skip
        with engine.begin() as conn:
            set_kill_switch(conn, False, "test: resume", "test")
        assert _release(engine, broker, run_id, account).due == [] and broker.submits == 1
        assert _orders(engine, account) == [(1, "filled")]
    finally:
        with engine.begin() as conn:
            set_kill_switch(conn, False, "test: done", "test")


def test_a_rejected_child_cancels_the_rest_of_its_parent(engine: Engine) -> None:
    account, run_id, intent = _world(engine)
    second = client_order_id_for(intent.decision_id, 2)
    broker = Venue(engine, reject={second})
    _execute(engine, intent, run_id, broker)
    released = _release(engine, broker, run_id, account)
    assert released.due == [second] and _orders(engine, account) == [(1, "filled"), (2, "rejected")]
    assert _release(engine, broker, run_id, account).due == [] and broker.submits == 2
    slices = _slices(engine, account)
    assert [(s.leg, s.status) for s in slices] == [(1, "released"), (2, "released"), (3, "cancelled")]
    assert slices[2].reason == f"iceberg child {second} ended rejected"


def test_a_child_that_expires_part_filled_cancels_the_rest(engine: Engine) -> None:
    account, run_id, intent = _world(engine, volume=100)  # 10% of 100 a bar: the first child of 20 gets 10
    broker = Venue(engine, max_participation=D("0.1"))
    _execute(engine, intent, run_id, broker)
    assert _orders(engine, account) == [(1, "expired")]
    assert _release(engine, broker, run_id, account).due == [] and broker.submits == 1
    assert [(s.leg, s.status) for s in _slices(engine, account)] == [(1, "released"), (2, "cancelled"),
                                                                     (3, "cancelled")]  # fmt: skip


def test_a_later_decision_on_the_other_side_cancels_the_rest_of_the_iceberg(engine: Engine) -> None:
    account, run_id, intent = _world(engine)
    broker = Venue(engine)
    _execute(engine, intent, run_id, broker)  # 20 held
    sell_id = DecisionId(f"d-ice-sell-{uuid.uuid4().hex[:8]}")
    with engine.begin() as conn:
        conn.execute(
            text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                 score, config_version, inputs)
                    values (:d, :r, :a, :s, '1h', :t, 'sell', 1, 'test', '{}'::jsonb)"""),
            {"d": sell_id, "r": run_id, "a": account, "s": intent.symbol, "t": T0 + HOUR},
        )  # fmt: skip
        sell = OrderIntent(sell_id, account, intent.symbol, Side.SELL, D(5), D(100))  # small: not split
        result = execute(conn, [sell], run_id=run_id, broker=broker, settings=SETTINGS, event_time=T0 + HOUR)  # type: ignore[arg-type]
    assert result.broker_submits == 1 and result.superseded == 2
    assert _release(engine, broker, run_id, account).due == [] and broker.submits == 2
    slices = _slices(engine, account)
    assert [(s.leg, s.status) for s in slices] == [(1, "released"), (2, "cancelled"), (3, "cancelled")]
    assert slices[1].reason == f"superseded by decision {sell_id} (sell)"
