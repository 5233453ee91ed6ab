"""Child orders through ``execute`` on the durable paper venue: an intent above the configured size goes out as TWAP
or iceberg children linked to their parent, each with its client id from (decision id, leg); a retry in any shape
adds nothing; slippage versus the arrival price is recorded per order; and how an order is recorded (its events when
the venue refuses or its answer is lost, the statements it costs)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, event, text

from alphaloom.domain import DecisionId, OrderIntent, Side, client_order_id_for
from alphaloom.errors import OrderRejectedError, UnknownOrderStateError
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.settings import Settings, SplitSettings
from execution.accounts.registry import ensure_account
from execution.algos.splitting import SplitPolicy, arrival_slippage, split_intents
from execution.brokers.base import OrderRequest
from execution.brokers.paper import PaperBroker, PostgresPaperVenue, paper_fill
from execution.submit import execute

T0 = datetime(2024, 7, 1, 10, tzinfo=UTC)
OFF = KillSwitchState(False, "", "")
D = Decimal
SAME = {("a", "X/USD"): D(1)}  # the pure plans' account "a" is in USD: 1 USD per USD


def _world(engine: Engine) -> tuple[str, str, OrderIntent]:
    tag = uuid.uuid4().hex[:8]
    account, run_id, symbol = f"kids-{tag}", f"run-kids-{tag}", f"K{tag}/USDT"
    decision_id = DecisionId(f"d-kids-{tag}")
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "USDT", "paper", D(100000), run_id)
        conn.execute(
            text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                 score, config_version, inputs)
                    values (:d, :r, :a, :s, '1h', :t, 'buy', 1, 'test', '{}'::jsonb)"""),
            {"d": decision_id, "r": run_id, "a": account, "s": symbol, "t": T0},
        )  # fmt: skip
        conn.execute(  # the last trade known at T0: the arrival price
            text("""insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id)
                    values ('demo', :s, '1h', :ts, 100, 100, 100, 100, 1000000, :r)"""),
            {"s": symbol, "ts": T0 - timedelta(hours=1), "r": run_id},
        )  # fmt: skip
    return account, run_id, OrderIntent(decision_id, account, symbol, Side.BUY, D(50), D(100))


def _broker(engine: Engine) -> PaperBroker:
    return PaperBroker(fee_bps=D(10), slippage_bps=D(5), kill_switch=lambda: OFF, venue=PostgresPaperVenue(engine))


def _run(engine: Engine, intent: OrderIntent, run_id: str, settings: Settings, broker: PaperBroker):
    with engine.begin() as conn:
        return execute(conn, [intent], run_id=run_id, broker=broker, settings=settings, event_time=T0)


def _orders(engine: Engine, account: str) -> list:
    with engine.connect() as conn:
        return conn.execute(
            text("""select client_order_id, leg, quantity, parent_client_order_id, arrival_price, status
                    from audit.orders where account = :a order by leg"""),
            {"a": account},
        ).all()  # fmt: skip


def test_split_plan_is_pure_and_keeps_the_quantity_precision() -> None:
    parent = OrderIntent(DecisionId("d"), "a", "X/USD", Side.BUY, D(50), D(100))
    plan = split_intents([parent], SplitPolicy(D(1000), "twap", 4), SAME)
    assert [(c.leg, c.quantity) for c in plan.intents] == [(1, 12), (2, 12), (3, 12), (4, 14)]
    assert set(plan.parents.values()) == {client_order_id_for(parent.decision_id, 0)}
    iceberg = split_intents([parent], SplitPolicy(D(1000), "iceberg", visible_notional=D(2000)), SAME)
    assert [c.quantity for c in iceberg.intents] == [20, 20, 10]  # at most 2000 / 100 = 20 shown each
    assert split_intents([parent], SplitPolicy(D(5000)), SAME).intents == [parent]  # not above the size: unchanged
    with pytest.raises(ValueError, match="split method must be one of"):
        SplitPolicy(D(1), "vwap")


def test_an_intent_above_the_size_goes_out_as_twap_children_linked_to_their_parent(engine: Engine) -> None:
    account, run_id, intent = _world(engine)
    settings = Settings(split=SplitSettings(above_notional=D(1000), method="twap", slices=4, twap_duration_minutes=0))
    broker = _broker(engine)
    result = _run(engine, intent, run_id, settings, broker)
    assert result.broker_submits == 4 and len(result.submitted) == 4
    parent_id = client_order_id_for(intent.decision_id, 0)
    orders = _orders(engine, account)
    assert [(o.client_order_id, o.leg, D(o.quantity)) for o in orders] == [
        (client_order_id_for(intent.decision_id, leg), leg, qty) for leg, qty in [(1, 12), (2, 12), (3, 12), (4, 14)]
    ]
    assert {o.parent_client_order_id for o in orders} == {parent_id} and {o.status for o in orders} == {"filled"}
    with engine.connect() as conn:
        held = conn.execute(
            text("select quantity from audit.positions where account = :a and symbol = :s"),
            {"a": account, "s": intent.symbol},
        ).scalar_one()
        final = conn.execute(
            text("""select details from audit.order_events where client_order_id = :c and to_status = 'filled'"""),
            {"c": orders[0].client_order_id},
        ).scalar_one()
        venue = conn.execute(
            text("select count(*) from paper_venue.orders where client_order_id like 'al-%' and account = :a"),
            {"a": account},
        ).scalar_one()
    assert D(held) == D(50) and venue == 4
    # paper fill at 100 * (1 + 5 bps) = 100.05 against the 100 arrival: 5 bps of slippage
    assert (final["arrival_price"], D(final["avg_fill_price"]), final["slippage_bps_vs_arrival"]) == (
        "100",
        D("100.05"),
        "5.0000",
    )


def test_a_retry_in_the_same_or_another_shape_sends_nothing_more(engine: Engine) -> None:
    account, run_id, intent = _world(engine)
    broker = _broker(engine)
    split = Settings(split=SplitSettings(above_notional=D(1000), slices=4, twap_duration_minutes=0))
    assert _run(engine, intent, run_id, split, broker).broker_submits == 4
    again = _run(engine, intent, run_id, split, broker)
    assert again.broker_submits == 0 and len(again.duplicates) == 4
    unsplit = _run(engine, intent, run_id, Settings(), broker)  # splitting turned off: the parent id is new
    finer = _run(
        engine,
        intent,
        run_id,
        Settings(split=SplitSettings(above_notional=D(1000), slices=5, twap_duration_minutes=0)),
        broker,
    )
    assert unsplit.broker_submits == 0 and finer.broker_submits == 0
    assert len(_orders(engine, account)) == 4


def test_an_unsplit_order_records_the_slippage_versus_arrival_and_is_never_split_later(engine: Engine) -> None:
    account, run_id, intent = _world(engine)
    broker = _broker(engine)
    assert _run(engine, intent, run_id, Settings(), broker).broker_submits == 1
    [order] = _orders(engine, account)
    assert order.leg == 0 and order.parent_client_order_id is None and D(order.arrival_price) == D(100)
    with engine.connect() as conn:
        final = conn.execute(
            text("select details from audit.order_events where client_order_id = :c and to_status = 'filled'"),
            {"c": order.client_order_id},
        ).scalar_one()
    assert final["slippage_bps_vs_arrival"] == "5.0000"
    later = _run(engine, intent, run_id, Settings(split=SplitSettings(above_notional=D(1000))), broker)
    assert later.broker_submits == 0 and len(_orders(engine, account)) == 1


class RefusingBroker:
    """A venue that refuses every order, or answers with an outcome it cannot know (network timeout)."""

    name, live = "refusing", False

    def __init__(self, error: Exception) -> None:
        self.error = error

    def submit(self, request):  # type: ignore[no-untyped-def]
        raise self.error

    def lookup(self, client_order_id):  # type: ignore[no-untyped-def]
        return None


@pytest.mark.parametrize(
    ("error", "status", "events"),
    [
        (OrderRejectedError("insufficient margin"), "rejected", ["new", "rejected"]),
        (UnknownOrderStateError("timeout after send"), "submitted", ["new", "submitted"]),
    ],
)
def test_a_refused_or_unknown_submit_is_recorded_with_its_events(engine: Engine, error, status, events) -> None:
    account, run_id, intent = _world(engine)
    result = _run(engine, intent, run_id, Settings(), RefusingBroker(error))  # type: ignore[arg-type]
    assert result.broker_submits == 1 and len(result.rejected) + len(result.unknown) == 1
    [order] = _orders(engine, account)
    with engine.connect() as conn:
        recorded = conn.execute(
            text("select to_status from audit.order_events where client_order_id = :c order by id"),
            {"c": order.client_order_id},
        ).scalars()
        assert (order.status, list(recorded)) == (status, events)


def test_a_filled_order_costs_three_statements_on_the_callers_connection(engine: Engine) -> None:
    """Round trips are the decision's latency: the account lock, one state read, one write of everything."""
    _, run_id, intent = _world(engine)
    statements: list[str] = []
    with engine.begin() as conn:

        def count(conn_, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            statements.append(statement.split()[0].lower())

        event.listen(conn, "before_cursor_execute", count)
        result = execute(conn, [intent], run_id=run_id, broker=_broker(engine), settings=Settings(), event_time=T0)
        event.remove(conn, "before_cursor_execute", count)
    assert len(result.submitted) == 1 and statements == ["select", "with", "with"]


def test_slippage_versus_arrival_is_volume_weighted() -> None:

    request = OrderRequest(client_order_id_for(DecisionId("d"), 0), "a", "S/USDT", Side.BUY, D(4), D(100), T0)
    fills = [
        paper_fill(request, fee_bps=D(0), slippage_bps=D(10), quantity=D(1)),  # 100.10
        paper_fill(request, fee_bps=D(0), slippage_bps=D(2), quantity=D(3)),  # 100.02
    ]
    # (1 * 100.10 + 3 * 100.02) / 4 = 100.04: 4 bps worse than the 100 arrival
    assert arrival_slippage(fills, D(100)) == {
        "arrival_price": "100",
        "avg_fill_price": "100.0400",
        "slippage_bps_vs_arrival": "4.0000",
    }
