"""Execution: the order state machine, paper fills, the ledger (pure, hand-worked Decimal numbers), and ``execute``
against PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Connection, Engine, text

from alphaloom.domain import ClientOrderId, DecisionId, OrderIntent, OrderStatus, Side, client_order_id_for
from alphaloom.errors import InvalidOrderTransitionError, KillSwitchEngagedError
from alphaloom.ops.kill_switch import KillSwitchState, kill_switch_state, set_kill_switch
from alphaloom.settings import PaperSettings, Settings
from execution.accounts.holdings import Holding, apply_fill, cash_change
from execution.accounts.registry import AccountMode, cash_balance, ensure_account
from execution.algos.schedule import SliceStatus
from execution.brokers.base import Broker, BrokerReport, OrderRequest, OrderType
from execution.brokers.paper import PaperBroker, paper_fill
from execution.orders.outcomes import Disposition, ExecutionResult, OrderOutcome, Outcome, Refusal
from execution.orders.state import TERMINAL, path_to, transition
from execution.orders.store import EventRow, check_moves
from execution.submit import execute

S = OrderStatus
T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
OFF = KillSwitchState(False, "never engaged", "")


# --- state machine ---------------------------------------------------------------------------------------------------


def test_order_lifecycle_follows_the_transition_table() -> None:
    status = S.NEW
    for target in (S.SUBMITTED, S.PARTIALLY_FILLED, S.PARTIALLY_FILLED, S.FILLED):
        status = transition(status, target)
    assert status is S.FILLED
    assert frozenset({S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED}) == TERMINAL


@pytest.mark.parametrize(
    ("current", "target"),
    [(S.FILLED, S.SUBMITTED), (S.NEW, S.FILLED), (S.CANCELLED, S.FILLED), (S.PARTIALLY_FILLED, S.SUBMITTED)],
)
def test_invalid_transitions_raise_a_clear_error(current: OrderStatus, target: OrderStatus) -> None:
    with pytest.raises(InvalidOrderTransitionError, match=f"from '{current.value}' to '{target.value}'"):
        transition(current, target)


def test_path_to_a_venue_reported_status_passes_through_submitted() -> None:
    assert path_to(S.NEW, S.FILLED) == [S.SUBMITTED, S.FILLED]
    assert path_to(S.SUBMITTED, S.FILLED) == [S.FILLED]
    assert path_to(S.FILLED, S.FILLED) == []
    with pytest.raises(InvalidOrderTransitionError):
        path_to(S.REJECTED, S.FILLED)


def test_the_order_writer_checks_every_status_change_against_the_transition_table() -> None:
    check_moves([EventRow(S.NEW, S.SUBMITTED, {}), EventRow(S.SUBMITTED, S.FILLED, {})], S.FILLED, start=S.NEW)
    check_moves([], S.PARTIALLY_FILLED)  # fills booked without a status change
    with pytest.raises(InvalidOrderTransitionError, match="from 'filled' to 'submitted'"):
        check_moves([EventRow(S.FILLED, S.SUBMITTED, {})], S.SUBMITTED)
    with pytest.raises(InvalidOrderTransitionError, match="from 'submitted' to 'filled'"):  # a gap in the chain
        check_moves([EventRow(S.NEW, S.SUBMITTED, {}), EventRow(S.PARTIALLY_FILLED, S.FILLED, {})], S.FILLED)
    with pytest.raises(InvalidOrderTransitionError, match="from 'submitted' to 'filled'"):  # status not where it ends
        check_moves([EventRow(S.NEW, S.SUBMITTED, {})], S.FILLED)
    with pytest.raises(InvalidOrderTransitionError, match="from 'new' to 'filled'"):  # an inserted order starts new
        check_moves([EventRow(S.SUBMITTED, S.FILLED, {})], S.FILLED, start=S.NEW)


def test_the_result_files_each_typed_outcome_and_counts_the_broker_calls() -> None:
    coid = ClientOrderId("c")
    result = ExecutionResult()
    for disposition in Disposition:
        order = (
            None
            if disposition in (Disposition.BLOCKED, Disposition.REFUSED, Disposition.SCHEDULED, Disposition.UNKNOWN)
            else OrderOutcome(coid, S.NEW, reason=disposition.value)
        )
        refusal = (
            Refusal(OrderIntent(DecisionId("d"), "a", "BTC/USDT", Side.BUY, Decimal(1), Decimal(1)), ())
            if disposition is Disposition.REFUSED
            else None
        )
        result.add(Outcome(disposition, coid, order, refusal))  # fmt: skip
    assert result.broker_submits == 3 and result.kill_switch_blocked == 1
    assert [o.reason for o in result.submitted] == ["submitted"] and [o.reason for o in result.rejected] == ["rejected"]
    assert [o.reason for o in result.duplicates] == ["slice_skipped", "duplicate", "other_shape"]
    assert result.unknown == result.blocked == result.scheduled == [coid] and len(result.refused) == 1
    assert {d for d in Disposition if d.order_exists} == {Disposition.SUBMITTED, Disposition.REJECTED,
        Disposition.UNKNOWN, Disposition.RECOVERED, Disposition.DUPLICATE, Disposition.OTHER_SHAPE}  # fmt: skip


def test_the_enums_store_the_same_text() -> None:
    assert [str(t) for t in OrderType] == ["market", "limit", "stop_loss_limit"]
    assert [str(s) for s in SliceStatus] == ["scheduled", "released", "refused", "cancelled"]
    assert [str(m) for m in AccountMode] == ["paper", "live", "shadow"]
    assert json.dumps({"t": OrderType.STOP_LOSS_LIMIT}) == '{"t": "stop_loss_limit"}'


# --- paper fills and the ledger --------------------------------------------------------------------------------------


def _request(side: Side, quantity: str, price: str, coid: str = "al-test") -> OrderRequest:
    return OrderRequest(ClientOrderId(coid), "acct", "BTC/USDT", side, Decimal(quantity), Decimal(price), T0)


def test_paper_buy_pays_up_by_slippage_and_pays_fee_on_notional() -> None:
    fill = paper_fill(_request(Side.BUY, "2", "100.00"), fee_bps=Decimal(10), slippage_bps=Decimal(5))
    assert fill.price == Decimal("100.05")  # 100 * (1 + 5/10000)
    assert fill.fee == Decimal("0.2001")  # 200.10 * 10/10000
    assert fill.slippage == Decimal("0.10")  # 0.05 * 2
    assert (fill.fee_currency, fill.ts, fill.quantity) == ("USDT", T0, Decimal(2))


def test_paper_sell_receives_less_by_slippage() -> None:
    fill = paper_fill(_request(Side.SELL, "2", "110"), fee_bps=Decimal(10), slippage_bps=Decimal(5))
    assert fill.price == Decimal("109.945")  # 110 * (1 - 5/10000)
    assert fill.fee == Decimal("0.21989")  # 219.89 * 10/10000
    assert fill.slippage == Decimal("0.110")


def test_paper_broker_fills_fully_is_looked_up_and_refuses_under_the_kill_switch() -> None:
    state = {"engaged": False}

    def switch() -> KillSwitchState:
        return KillSwitchState(state["engaged"], "drill", "test")

    broker = PaperBroker(fee_bps=Decimal(10), slippage_bps=Decimal(5), kill_switch=switch)
    assert isinstance(broker, Broker)
    report = broker.submit(_request(Side.BUY, "2", "100"))
    assert report.status is S.FILLED and report.filled_quantity == Decimal(2)
    assert broker.lookup(ClientOrderId("al-test")) == report
    assert broker.lookup(ClientOrderId("al-unknown")) is None
    state["engaged"] = True
    with pytest.raises(KillSwitchEngagedError):
        broker.submit(_request(Side.BUY, "1", "100", coid="al-other"))


def test_ledger_round_trip_cash_change_equals_realized_pnl() -> None:
    held = apply_fill(
        Holding.flat(), side=Side.BUY, quantity=Decimal(2), price=Decimal("100.05"), fee=Decimal("0.2001")
    )
    assert held == Holding(Decimal(2), Decimal("100.15005"), Decimal(0))  # (200.10 + 0.2001) / 2
    closed = apply_fill(held, side=Side.SELL, quantity=Decimal(2), price=Decimal("109.945"), fee=Decimal("0.21989"))
    assert closed == Holding(Decimal(0), Decimal(0), Decimal("19.37001"))  # 219.89 - 0.21989 - 200.3001
    cash = cash_change(
        side=Side.BUY, quantity=Decimal(2), price=Decimal("100.05"), fee=Decimal("0.2001")
    ) + cash_change(side=Side.SELL, quantity=Decimal(2), price=Decimal("109.945"), fee=Decimal("0.21989"))
    assert cash == closed.realized_pnl
    with pytest.raises(ValueError, match="shorting"):
        apply_fill(closed, side=Side.SELL, quantity=Decimal(1), price=Decimal(1), fee=Decimal(0))


# --- execute against PostgreSQL --------------------------------------------------------------------------------------


class CountingBroker:
    """A real ``Broker`` that delegates to a ``PaperBroker`` and counts what was asked of it."""

    def __init__(self, inner: Broker) -> None:
        self.inner = inner
        self.name = inner.name
        self.live = False
        self.submits = 0
        self.lookups = 0

    def submit(self, request: OrderRequest) -> BrokerReport:
        self.submits += 1
        return self.inner.submit(request)

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        self.lookups += 1
        return self.inner.lookup(client_order_id)


@pytest.fixture()
def settings() -> Settings:
    return Settings(starting_cash=Decimal(100000), paper=PaperSettings(fee_bps=Decimal(10), slippage_bps=Decimal(5)))


@pytest.fixture()
def broker(engine: Engine, settings: Settings) -> CountingBroker:
    def switch() -> KillSwitchState:
        with engine.connect() as conn:
            return kill_switch_state(conn)

    return CountingBroker(
        PaperBroker(fee_bps=settings.paper.fee_bps, slippage_bps=settings.paper.slippage_bps, kill_switch=switch)
    )


@pytest.fixture()
def account(engine: Engine, settings: Settings) -> Iterator[tuple[str, str, str]]:
    """(account, run_id, symbol), unique per test."""
    tag = uuid.uuid4().hex[:10]
    run_id, account_id, symbol = f"run-{tag}", f"acct-{tag}", f"X{tag}/USDT"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        assert ensure_account(conn, account_id, "paper", "USDT", "paper", settings.starting_cash, run_id)
        assert not ensure_account(conn, account_id, "paper", "USDT", "paper", Decimal(1), run_id)  # left as is
    yield account_id, run_id, symbol


def _decision(conn: Connection, run_id: str, account: str, symbol: str, side: Side) -> DecisionId:
    decision_id = DecisionId(f"d-{uuid.uuid4().hex}")
    conn.execute(
        text(
            """insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action, score,
                                            config_version, inputs)
               values (:d, :r, :a, :s, '1h', :t, :act, 1.0, 'test', '{}'::jsonb)"""
        ),
        {"d": decision_id, "r": run_id, "a": account, "s": symbol, "t": T0, "act": side.value},
    )
    return decision_id


def _intent(conn: Connection, run_id: str, account: str, symbol: str, side: Side, qty: str, price: str) -> OrderIntent:
    return OrderIntent(
        _decision(conn, run_id, account, symbol, side), account, symbol, side, Decimal(qty), Decimal(price)
    )


def _position(conn: Connection, account: str, symbol: str) -> tuple[Decimal, Decimal, Decimal]:
    row = conn.execute(
        text("select quantity, avg_price, realized_pnl from audit.positions where account = :a and symbol = :s"),
        {"a": account, "s": symbol},
    ).one()
    return Decimal(row.quantity), Decimal(row.avg_price), Decimal(row.realized_pnl)


def test_buy_then_sell_books_fills_positions_and_cash_with_fees(engine, settings, broker, account) -> None:
    account_id, run_id, symbol = account
    with engine.begin() as conn:
        buy = _intent(conn, run_id, account_id, symbol, Side.BUY, "2", "100.00")
        result = execute(conn, [buy], run_id=run_id, broker=broker, settings=settings, event_time=T0)
    assert broker.submits == 1 and len(result.submitted) == 1
    [outcome] = result.submitted
    assert outcome.client_order_id == client_order_id_for(buy.decision_id, 0) and outcome.status is S.FILLED
    with engine.begin() as conn:
        assert _position(conn, account_id, symbol) == (Decimal(2), Decimal("100.15005"), Decimal(0))
        assert cash_balance(conn, account_id, "USDT") == Decimal("99799.6999")  # 100000 - 200.10 - 0.2001
        events = conn.execute(
            text(
                "select from_status, to_status, event_ts from audit.order_events where client_order_id = :c order by id"
            ),
            {"c": outcome.client_order_id},
        ).all()
        assert [(e.from_status, e.to_status) for e in events] == [
            (None, "new"),
            ("new", "submitted"),
            ("submitted", "filled"),
        ]
        assert {e.event_ts for e in events} == {T0}
        order = conn.execute(
            text("select status, filled_quantity, venue from audit.orders where client_order_id = :c"),
            {"c": outcome.client_order_id},
        ).one()
        assert (order.status, Decimal(order.filled_quantity), order.venue) == ("filled", Decimal(2), "paper")
        fill = conn.execute(
            text("select price, fee, slippage, fee_currency from audit.fills where client_order_id = :c"),
            {"c": outcome.client_order_id},
        ).one()
        assert (Decimal(fill.price), Decimal(fill.fee), Decimal(fill.slippage), fill.fee_currency) == (
            Decimal("100.05"),
            Decimal("0.2001"),
            Decimal("0.10"),
            "USDT",
        )
        lineage = conn.execute(
            text("select child_table, parent_table from audit.lineage where run_id = :r order by id"), {"r": run_id}
        ).all()
        assert [tuple(r) for r in lineage] == [("audit.orders", "audit.decisions"), ("audit.fills", "audit.orders")]

        sell = _intent(conn, run_id, account_id, symbol, Side.SELL, "2", "110")
        result = execute(conn, [sell], run_id=run_id, broker=broker, settings=settings, event_time=T0)
    assert broker.submits == 2 and result.submitted[0].status is S.FILLED
    with engine.begin() as conn:
        assert _position(conn, account_id, symbol) == (Decimal(0), Decimal(0), Decimal("19.37001"))
        # 99799.6999 + 219.89 - 0.21989 = 100019.37001: the cash gain is exactly the realized P&L
        assert cash_balance(conn, account_id, "USDT") == Decimal("100019.37001")


def test_executing_the_same_intent_twice_submits_once(engine, settings, broker, account) -> None:
    account_id, run_id, symbol = account
    with engine.begin() as conn:
        buy = _intent(conn, run_id, account_id, symbol, Side.BUY, "1", "100")
        first = execute(conn, [buy], run_id=run_id, broker=broker, settings=settings, event_time=T0)
    with engine.begin() as conn:
        second = execute(conn, [buy, buy], run_id=run_id, broker=broker, settings=settings, event_time=T0)
        orders = conn.execute(
            text("select count(*) from audit.orders where decision_id = :d"), {"d": buy.decision_id}
        ).scalar()
        assert _position(conn, account_id, symbol)[0] == Decimal(1)
    assert broker.submits == 1 and first.broker_submits == 1 and second.broker_submits == 0
    assert [d.status for d in second.duplicates] == [S.FILLED, S.FILLED] and orders == 1
    assert broker.lookups == 0  # a filled order needs no reconciliation


def test_an_order_left_submitted_is_reconciled_by_lookup_not_resent(engine, settings, broker, account) -> None:
    account_id, run_id, symbol = account
    with engine.begin() as conn:
        buy = _intent(conn, run_id, account_id, symbol, Side.BUY, "1", "100")
        coid = client_order_id_for(buy.decision_id, 0)
        # Simulate a crash after the venue filled it but before we recorded the outcome.
        broker.inner.submit(OrderRequest(coid, account_id, symbol, Side.BUY, Decimal(1), Decimal(100), T0))
        conn.execute(
            text(
                """insert into audit.orders (client_order_id, decision_id, leg, run_id, account, venue, symbol, side,
                                             quantity, reference_price, status)
                   values (:c, :d, 0, :r, :a, 'paper', :s, 'buy', 1, 100, 'submitted')"""
            ),
            {"c": coid, "d": buy.decision_id, "r": run_id, "a": account_id, "s": symbol},
        )
        result = execute(conn, [buy], run_id=run_id, broker=broker, settings=settings, event_time=T0)
        assert _position(conn, account_id, symbol)[0] == Decimal(1)
    assert broker.submits == 0 and broker.lookups == 1
    assert [(d.client_order_id, d.status) for d in result.duplicates] == [(coid, S.FILLED)]


def test_kill_switch_sends_nothing(engine, settings, broker, account) -> None:
    account_id, run_id, symbol = account
    with engine.begin() as conn:
        buy = _intent(conn, run_id, account_id, symbol, Side.BUY, "1", "100")
        set_kill_switch(conn, True, "test drill", "test_execution")
    try:
        with engine.begin() as conn:
            result = execute(conn, [buy], run_id=run_id, broker=broker, settings=settings, event_time=T0)
            orders = conn.execute(text("select count(*) from audit.orders where account = :a"), {"a": account_id})
            guard = conn.execute(
                text("select approved, reason from audit.risk_checks where decision_id = :d"), {"d": buy.decision_id}
            ).one()
            assert orders.scalar() == 0 and not guard.approved and "test drill" in guard.reason
    finally:
        with engine.begin() as conn:
            set_kill_switch(conn, False, "drill over", "test_execution")
    assert result.kill_switch_blocked == 1 and broker.submits == 0


def test_hard_limit_breach_at_execution_makes_no_order_and_records_the_refusal(
    engine, settings, broker, account
) -> None:
    account_id, run_id, symbol = account
    with engine.begin() as conn:
        too_big = _intent(conn, run_id, account_id, symbol, Side.BUY, "250", "100")  # 25000 > 10000 and 20000
        short = _intent(conn, run_id, account_id, symbol, Side.SELL, "1", "100")  # flat: would go short
        result = execute(conn, [too_big, short], run_id=run_id, broker=broker, settings=settings, event_time=T0)
        checks = conn.execute(
            text(
                "select decision_id, check_name, approved, numbers from audit.risk_checks "
                "where account = :a order by id"
            ),
            {"a": account_id},
        ).all()
        orders = conn.execute(text("select count(*) from audit.orders where account = :a"), {"a": account_id}).scalar()
    assert broker.submits == 0 and orders == 0
    assert [[b.limit for b in r.breaches] for r in result.refused] == [
        ["max_order_notional", "max_position_notional"],
        ["long_only"],
    ]
    assert [(c.check_name, c.approved) for c in checks] == [("execution_guard", False), ("execution_guard", False)]
    assert checks[0].numbers["breaches"]["max_order_notional"] == {"notional": "25000", "limit": "10000"}
