"""Execution through the Alpaca broker (the real alpaca-py client, a local stand-in of Alpaca's API): exactly once
across timeouts, duplicates and crashes (SIGKILLed workers included), and the generic ports reaching it: the factory
builds it for an account whose venue is alpaca, a live run reconciles with it first, the kill switch cancels its open
orders, a shadow account sends through it."""

from __future__ import annotations

import random
import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, text
from support.alpaca_standin import KEY, SECRET, AlpacaStandIn, Outcome, broker_on, standin_settings

from alphaloom.domain import ClientOrderId, DecisionId, OrderIntent, Side, client_order_id_for
from alphaloom.ops.secrets import Credentials, delete_credentials, store_credentials
from alphaloom.settings import OpsSettings, RiskSettings, Settings
from execution.accounts.registry import ensure_account
from execution.brokers.alpaca_broker import AlpacaBroker
from execution.brokers.base import BrokerReport, OrderRequest
from execution.submit import execute

T0 = datetime(2026, 1, 6, 15, tzinfo=UTC)


@pytest.fixture
def standin() -> Iterator[AlpacaStandIn]:
    server = AlpacaStandIn().start()
    yield server
    server.stop()


class Crash(Exception):
    pass


class CrashAfterSubmit:
    """The process dies right after the venue answered, before anything is committed."""

    def __init__(self, inner: AlpacaBroker, crash_on: set[ClientOrderId]) -> None:
        self.inner, self.crash_on, self.name, self.live = inner, crash_on, inner.name, inner.live

    def submit(self, request: OrderRequest) -> BrokerReport:
        report = self.inner.submit(request)
        if request.client_order_id in self.crash_on:
            self.crash_on.discard(request.client_order_id)
            raise Crash
        return report

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        return self.inner.lookup(client_order_id)


def _account(engine: Engine, n: int, tag: str, *, mode: str = "live") -> tuple[str, str, list[OrderIntent]]:
    account, run_id = f"alpaca-{tag}", f"run-alpaca-{tag}"
    intents = []
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "alpaca", "USD", mode, Decimal(100_000), run_id)
        conn.execute(text("update audit.accounts set live_enabled = true where id = :a"), {"a": account})
        for i in range(n):
            decision_id = DecisionId(f"d-alpaca-{tag}-{i}")
            conn.execute(
                text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                     score, config_version, inputs)
                        values (:d, :r, :a, 'AAPL', '1h', :t, 'buy', 1.0, 'test', '{}'::jsonb)"""),
                {"d": decision_id, "r": run_id, "a": account, "t": T0},
            )  # fmt: skip
            intents.append(OrderIntent(decision_id, account, "AAPL", Side.BUY, Decimal("0.5") * (i % 3 + 1),
                                       Decimal("187.20")))  # fmt: skip
    return account, run_id, intents


def _audit(engine: Engine, account: str) -> tuple[dict[str, int], dict[str, int], Decimal]:
    with engine.connect() as conn:
        orders = dict(conn.execute(text("select client_order_id, count(*) from audit.orders where account = :a "
                                        "group by 1"), {"a": account}).all())  # fmt: skip
        fills = dict(conn.execute(text("select client_order_id, count(*) from audit.fills where account = :a "
                                       "group by 1"), {"a": account}).all())  # fmt: skip
        held = conn.execute(text("select quantity from audit.positions where account = :a"), {"a": account}).scalar()
    return orders, fills, Decimal(held or 0)


def _at_venue(standin: AlpacaStandIn, coid: str) -> int:
    return sum(1 for o in standin.orders.values() if o["client_order_id"] == coid)


def test_execution_through_alpaca_loses_nothing_and_doubles_nothing(engine: Engine, standin: AlpacaStandIn) -> None:
    """24 orders: some time out after Alpaca accepted them, some fail before (503), some crash the process after
    Alpaca answered; then a restart with a fresh broker. Every order exists once at Alpaca and once in the audit."""
    tag = uuid.uuid4().hex[:8]
    account, run_id, intents = _account(engine, 24, tag)
    coids = [client_order_id_for(i.decision_id, 0) for i in intents]
    rng = random.Random(5)
    plan = {c: rng.choice(["drop", "busy", "crash", "fill"]) for c in coids}
    broker = CrashAfterSubmit(broker_on(standin), {c for c, f in plan.items() if f == "crash"})
    settings = Settings(risk=RiskSettings(max_orders_per_run=1000))
    crashes = 0
    for intent, coid in zip(intents, coids, strict=True):
        standin.script[:] = [Outcome(plan[coid])] if plan[coid] in ("drop", "busy") else []
        try:
            with engine.begin() as conn:
                execute(conn, [intent], run_id=run_id, broker=broker, settings=settings, event_time=T0)
        except Crash:
            crashes += 1
    assert crashes == sum(1 for f in plan.values() if f == "crash") > 0
    creates_before = len(standin.creates())
    with engine.begin() as conn:  # a restart: a broker that remembers nothing finds orders by client id
        result = execute(conn, intents, run_id=run_id, broker=broker_on(standin), settings=settings, event_time=T0)
    assert len(result.recovered) == crashes and len(standin.creates()) == creates_before
    assert creates_before == 24 + sum(1 for f in plan.values() if f == "busy")
    orders, fills, held = _audit(engine, account)
    lost = [c for c in coids if _at_venue(standin, c) == 0 or orders.get(c, 0) == 0]
    doubled = [c for c in coids if _at_venue(standin, c) > 1 or orders.get(c, 0) > 1 or fills.get(c, 0) > 1]
    assert (lost, doubled) == ([], [])
    assert held == sum((i.quantity for i in intents), Decimal(0)) == standin.positions["AAPL"]


def test_three_sigkills_against_alpaca_lose_nothing_and_double_nothing(engine: Engine, standin: AlpacaStandIn,
                                                                        tmp_path) -> None:  # fmt: skip
    """A worker process sending through alpaca-py to the stand-in (which outlives it) is SIGKILLed after journaling,
    after Alpaca accepted an order, and before its transaction committed. A final worker with no memory finds every
    order by client id: each exists once at Alpaca and once in the audit."""
    from support.crash import run_worker, wait_for

    tag = uuid.uuid4().hex[:8]
    account, run_id, intents = _account(engine, 9, tag)
    base = {
        "account": account, "run_id": run_id, "event_time": T0.isoformat(), "alpaca_url": standin.url,
        "alpaca_now": standin.now.isoformat(),
        "intents": [{"decision_id": i.decision_id, "symbol": i.symbol, "side": i.side.value,
                     "quantity": str(i.quantity), "price": str(i.reference_price)} for i in intents],
    }  # fmt: skip
    points = sorted(random.Random(3).sample(range(len(intents)), 3))
    for round_, (stop_at, stage) in enumerate(zip(points, ["after_submit", "before_commit", "after_journal"],
                                                  strict=True)):  # fmt: skip
        signal_file = tmp_path / f"parked-{round_}"
        proc = run_worker({**base, "stop_at": stop_at, "stage": stage, "signal": str(signal_file)}, tmp_path,
                          f"kill-{round_}")  # fmt: skip
        wait_for(signal_file, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
    final = run_worker({**base, "stop_at": -1, "stage": "none", "signal": ""}, tmp_path, "final")
    out, err = final.communicate(timeout=180)
    assert final.returncode == 0 and "done" in out, err
    coids = [client_order_id_for(i.decision_id, 0) for i in intents]
    orders, fills, held = _audit(engine, account)
    lost = [c for c in coids if _at_venue(standin, c) == 0 or orders.get(c, 0) == 0]
    doubled = [c for c in coids if _at_venue(standin, c) > 1 or orders.get(c, 0) > 1 or fills.get(c, 0) > 1]
    assert (lost, doubled) == ([], [])
    assert len(standin.orders) == 9 and held == sum((i.quantity for i in intents), Decimal(0))


@contextmanager
def stored_keys(engine: Engine, settings: Settings, account: str) -> Iterator[None]:
    """Alpaca keys stored for ``account`` while the block runs: removed after, so no later test's broker factory
    meets keys encrypted with this test's throwaway key."""
    with engine.begin() as conn:
        store_credentials(conn, settings, Credentials("alpaca", account, KEY, SECRET))
    try:
        yield
    finally:
        with engine.begin() as conn:
            delete_credentials(conn, "alpaca", account)


def _settings(standin: AlpacaStandIn) -> Settings:
    return Settings(alpaca=standin_settings(standin), ops=OpsSettings(secret_key=Fernet.generate_key().decode()),
                    risk=RiskSettings(max_orders_per_run=1000))  # fmt: skip


def test_the_factory_builds_the_alpaca_broker_and_a_live_run_reconciles_with_it_first(
    engine: Engine, standin: AlpacaStandIn
) -> None:
    from execution.brokers.factory import broker_for_account

    tag = uuid.uuid4().hex[:8]
    account, run_id, _ = _account(engine, 0, tag)
    settings = _settings(standin)
    assert broker_for_account(engine, settings, account) is None  # no keys stored yet
    with stored_keys(engine, settings, account):
        _reconciles_first(engine, settings, standin, account, run_id)


def _reconciles_first(engine: Engine, settings: Settings, standin: AlpacaStandIn, account: str, run_id: str) -> None:
    from execution.accounts.session import open_session
    from execution.brokers.factory import broker_for_account

    broker = broker_for_account(engine, settings, account)
    assert isinstance(broker, AlpacaBroker) and broker.account == account
    session = open_session(engine, settings, account, run_id=run_id, event_time=T0)
    assert session.may_trade, session.refusal
    assert ("GET", "/v2/account") in [(m, p) for m, p, _, _ in standin.requests]
    standin.positions["AAPL"] = Decimal(3)  # bought by hand at Alpaca: the next run refuses to trade
    refused = open_session(engine, settings, account, run_id=run_id, event_time=T0)
    assert not refused.may_trade and "AAPL" in refused.refusal and "differs from alpaca" in refused.refusal


def test_the_kill_switch_cancels_open_alpaca_orders(engine: Engine, standin: AlpacaStandIn) -> None:
    from execution.killswitch import cancel_open_orders_now

    tag = uuid.uuid4().hex[:8]
    account, run_id, intents = _account(engine, 2, tag)
    settings = _settings(standin)
    standin.script += [Outcome("accept"), Outcome("partial")]
    with engine.begin() as conn:
        execute(conn, intents, run_id=run_id, broker=broker_on(standin), settings=settings, event_time=T0)
    with stored_keys(engine, settings, account):
        summary = cancel_open_orders_now(engine, settings, "drill")
    coids = sorted(client_order_id_for(i.decision_id, 0) for i in intents)
    assert sorted(summary.cancelled) == coids and not summary.errors.get("alpaca")
    assert {o["status"] for o in standin.orders.values()} == {"canceled"}
    with engine.connect() as conn:
        statuses = set(conn.execute(text("select status from audit.orders where account = :a"), {"a": account})
                       .scalars())  # fmt: skip
    assert statuses == {"cancelled"}


def test_a_shadow_account_sends_to_alpaca_and_books_alpacas_fills(engine: Engine, standin: AlpacaStandIn) -> None:
    from execution.brokers.factory import shadow_broker
    from execution.brokers.shadow import record_drift

    tag = uuid.uuid4().hex[:8]
    account, run_id, intents = _account(engine, 3, tag, mode="shadow")
    shadow = shadow_broker(engine, Settings(), broker_on(standin))
    with engine.begin() as conn:
        result = execute(conn, intents, run_id=run_id, broker=shadow, settings=Settings(), event_time=T0,
                         last_prices={"AAPL": Decimal("187.20")})  # fmt: skip
        drifts = record_drift(conn, shadow.take_observations())
        venues = set(conn.execute(text("select venue from audit.orders where account = :a"), {"a": account}).scalars())
        prices = set(conn.execute(text("select price from audit.fills where account = :a"), {"a": account}).scalars())
    assert len(result.submitted) == 3 and len(standin.creates()) == 3 and venues == {"alpaca"}
    assert prices == {Decimal("187.25")} and len(drifts) == 3  # the audit books Alpaca's fills, paper only shadows


def test_regulatory_fees_are_booked_once_and_reconciliation_stays_clean(engine: Engine, standin: AlpacaStandIn) -> None:
    """Alpaca's TAF and REG fees (``FEE`` activities, taken from the cash beside the commission-free fills) are booked
    in USD at the start of reconciliation, once each: the balances agree, and a rerun (a fresh broker) books nothing
    again."""
    from execution.accounts.reconcile import reconcile_account

    tag = uuid.uuid4().hex[:8]
    account, run_id, intents = _account(engine, 1, tag)
    with engine.begin() as conn:
        execute(
            conn,
            intents,
            run_id=run_id,
            broker=broker_on(standin),
            settings=Settings(risk=RiskSettings(max_orders_per_run=1000)),
            event_time=T0,
        )
    standin.charge_fee("AAPL", "0.02", "TAF fee")
    standin.charge_fee("AAPL", "0.01", "REG fee")
    with engine.begin() as conn:
        assert reconcile_account(conn, broker_on(standin), account, run_id=run_id, event_time=T0) == []
    with engine.begin() as conn:  # a restart: nothing new at the venue
        assert reconcile_account(conn, broker_on(standin), account, run_id=run_id, event_time=T0) == []
    standin.charge_fee("AAPL", "0.03", "TAF fee")
    with engine.begin() as conn:
        assert reconcile_account(conn, broker_on(standin), account, run_id=run_id, event_time=T0) == []
    with engine.connect() as conn:
        usd = conn.execute(text("select amount from audit.balances where account = :a and currency = 'USD'"),
                           {"a": account}).scalar_one()  # fmt: skip
        booked = conn.execute(text("select kind, fee, currency from audit.venue_charges where account = :a "
                                   "order by charge_id"), {"a": account}).all()  # fmt: skip
    assert Decimal(usd) == standin.cash
    assert [(k, Decimal(f), c) for k, f, c in booked] == [
        ("regulatory_fee", Decimal("0.02"), "USD"),
        ("regulatory_fee", Decimal("0.01"), "USD"),
        ("regulatory_fee", Decimal("0.03"), "USD"),
    ]
