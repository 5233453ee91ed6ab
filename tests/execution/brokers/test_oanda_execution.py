"""OANDA behind the generic ports, against the real PostgreSQL and a local v20 stand-in: execution loses and doubles
nothing through lost answers, crashes and SIGKILLs; the broker factory builds it from stored keys for an account at
venue ``oanda``; reconciliation at session start, the kill switch's cancels and shadow mode work unchanged."""

from __future__ import annotations

import random
import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from support.crash import run_worker, wait_for
from support.oanda_standin import ACCOUNT_ID, TOKEN, OandaStandIn

from alphaloom.domain import AccountId, ClientOrderId, DecisionId, OrderIntent, Side, client_order_id_for
from alphaloom.fx import store_rate
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.ops.secrets import Credentials, store_credentials
from alphaloom.records.orders import fees_by_currency
from alphaloom.settings import RiskSettings, Settings
from alphaloom.venues.oanda_client import OandaClient, OandaConfig
from execution.accounts.reconcile import reconcile_account
from execution.accounts.registry import ensure_account
from execution.accounts.session import open_session
from execution.brokers.base import BrokerReport, OrderRequest
from execution.brokers.factory import all_brokers, broker_for_account
from execution.brokers.oanda_broker import OandaBroker
from execution.brokers.shadow import ShadowBroker
from execution.killswitch import cancel_open_orders_now
from execution.submit import execute

T0 = datetime(2024, 5, 1, 9, tzinfo=UTC)
OFF = KillSwitchState(False, "", "")
SETTINGS = Settings(risk=RiskSettings(max_orders_per_run=1000))


class Crash(Exception):
    """Stands for the process dying after OANDA answered, before execution recorded the answer."""


class CrashAfterSubmit:
    def __init__(self, inner: OandaBroker, crash_for: set[ClientOrderId]) -> None:
        self.inner, self.crash_for, self.name, self.live = inner, crash_for, inner.name, True

    def submit(self, request: OrderRequest) -> BrokerReport:
        report = self.inner.submit(request)
        if request.client_order_id in self.crash_for:
            self.crash_for.discard(request.client_order_id)
            raise Crash(request.client_order_id)
        return report

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        return self.inner.lookup(client_order_id)


@pytest.fixture
def venue() -> Iterator[OandaStandIn]:
    standin = OandaStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def clients() -> Iterator[list[OandaClient]]:
    made: list[OandaClient] = []
    yield made
    for client in made:
        client.close()


def oanda(venue: OandaStandIn, clients: list[OandaClient]) -> OandaBroker:
    client = OandaClient(OandaConfig(venue.url, TOKEN, ACCOUNT_ID), timeout=5)
    clients.append(client)
    return OandaBroker(client, kill_switch=lambda: OFF, settle_seconds=0, sleep=lambda s: None)


def live_account(engine: Engine, n: int, tag: str, mode: str = "live") -> tuple[str, str, list[OrderIntent]]:
    account, run_id = f"fx-{tag}", f"run-fx-{tag}"
    intents = []
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "oanda", "USD", mode, Decimal(100_000), run_id)
        conn.execute(text("update audit.accounts set live_enabled = true where id = :a"), {"a": account})
        for i in range(n):
            decision_id = DecisionId(f"d-fx-{tag}-{i}")
            conn.execute(
                text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                     score, config_version, inputs)
                        values (:d, :r, :a, 'EUR/USD', '1h', :t, 'buy', 1.0, 'test', '{}'::jsonb)"""),
                {"d": decision_id, "r": run_id, "a": account, "t": T0},
            )  # fmt: skip
            intents.append(OrderIntent(decision_id, account, "EUR/USD", Side.BUY, Decimal(100 * (i % 4 + 1)),
                                       Decimal("1.0841")))  # fmt: skip
    return account, run_id, intents


def audit_counts(engine: Engine, account: str) -> tuple[dict[str, int], dict[str, int], Decimal]:
    with engine.connect() as conn:
        audit = dict(conn.execute(text("select client_order_id, count(*) from audit.orders where account = :a "
                                       "group by 1"), {"a": account}).all())  # fmt: skip
        fills = dict(conn.execute(text("select client_order_id, count(*) from audit.fills where account = :a "
                                       "group by 1"), {"a": account}).all())  # fmt: skip
        held = conn.execute(text("select coalesce(sum(quantity), 0) from audit.positions where account = :a"),
                            {"a": account}).scalar_one()  # fmt: skip
    return audit, fills, Decimal(held)


def assert_exactly_once(engine: Engine, venue: OandaStandIn, account: str, intents: list[OrderIntent]) -> None:
    coids = [client_order_id_for(i.decision_id, 0) for i in intents]
    audit, fills, held = audit_counts(engine, account)
    lost = [c for c in coids if venue.count(c) == 0 or audit.get(c, 0) == 0]
    doubled = [c for c in coids if venue.count(c) > 1 or audit.get(c, 0) > 1 or fills.get(c, 0) != 1]
    assert (lost, doubled) == ([], [])
    assert held == sum((i.quantity for i in intents), Decimal(0))
    assert venue.positions["EUR_USD"][0] == held


def test_execution_through_oanda_loses_nothing_and_doubles_nothing(
    engine: Engine, venue: OandaStandIn, clients: list[OandaClient]
) -> None:
    """30 orders: a third lose OANDA's answer after it accepted them, a third before, a third crash the process after
    the answer; then a restart with a fresh broker. Every order exists once at OANDA and once in the audit."""
    tag = uuid.uuid4().hex[:8]
    account, run_id, intents = live_account(engine, 30, tag)
    coids = [client_order_id_for(i.decision_id, 0) for i in intents]
    rng = random.Random(20)
    plan = {c: rng.choice(["drop_after_accept", "drop_before_accept", "crash"]) for c in coids}
    venue.behaviour.update({c: f for c, f in plan.items() if f != "crash"})
    # a dropped-before answer is followed by a lookup (not found) and one resend, which goes through
    broker = CrashAfterSubmit(oanda(venue, clients), {c for c, f in plan.items() if f == "crash"})
    crashes = 0
    for intent in intents:
        try:
            with engine.begin() as conn:
                execute(conn, [intent], run_id=run_id, broker=broker, settings=SETTINGS, event_time=T0)
        except Crash:
            crashes += 1
    assert crashes == sum(1 for f in plan.values() if f == "crash") > 0
    restarted = oanda(venue, clients)  # forgets what it sent; finds orders by client id
    creates_before = sum(1 for r in venue.requests if r[0] == "POST")
    with engine.begin() as conn:
        result = execute(conn, intents, run_id=run_id, broker=restarted, settings=SETTINGS, event_time=T0)
    assert len(result.recovered) == crashes and sum(1 for r in venue.requests if r[0] == "POST") == creates_before
    assert sum(venue.creates(c) for c in coids) == 30 + sum(1 for f in plan.values() if f == "drop_before_accept")
    assert_exactly_once(engine, venue, account, intents)


def test_three_sigkills_against_oanda_lose_nothing_and_double_nothing(
    engine: Engine, venue: OandaStandIn, tmp_path: Path
) -> None:
    """A worker process sending through the OANDA broker is SIGKILLed after journaling, after OANDA accepted an order
    and before its transaction committed; OANDA (the stand-in) outlives it. A final worker with no memory finds every
    order by client id."""
    tag = uuid.uuid4().hex[:8]
    account, run_id, intents = live_account(engine, 12, tag)
    base = {
        "account": account, "run_id": run_id, "event_time": T0.isoformat(), "oanda_url": venue.url,
        "intents": [{"decision_id": i.decision_id, "symbol": i.symbol, "side": i.side.value,
                     "quantity": str(i.quantity), "price": str(i.reference_price)} for i in intents],
    }  # fmt: skip
    points = sorted(random.Random(13).sample(range(len(intents)), 3))
    for round_, (stop_at, stage) in enumerate(
        zip(points, ["after_submit", "before_commit", "after_journal"], strict=True)
    ):
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
    assert_exactly_once(engine, venue, account, intents)
    assert len(venue.orders) == 12


def store_oanda_keys(engine: Engine, account: str, url: str) -> None:
    with engine.begin() as conn:
        store_credentials(conn, SETTINGS, Credentials("oanda", account, TOKEN, ACCOUNT_ID, url))


def test_the_factory_builds_oanda_from_stored_keys_and_the_session_reconciles_first(
    engine: Engine, venue: OandaStandIn
) -> None:
    tag = uuid.uuid4().hex[:8]
    account, run_id, intents = live_account(engine, 2, tag)
    assert broker_for_account(engine, SETTINGS, account) is None  # no keys stored yet
    store_oanda_keys(engine, account, venue.url)
    broker = broker_for_account(engine, SETTINGS, account)
    assert isinstance(broker, OandaBroker) and broker.account == account
    with engine.begin() as conn:
        execute(conn, intents, run_id=run_id, broker=broker, settings=SETTINGS, event_time=T0)
    broker.client.close()
    session = open_session(engine, SETTINGS, account, run_id=run_id, event_time=T0)
    assert session.may_trade and session.differences == ()
    with engine.connect() as conn:
        kinds = conn.execute(text("select kind from audit.reconciliations where account = :a"), {"a": account})
        assert list(kinds.scalars()) == ["ok"]
    venue.balance -= Decimal(25)  # OANDA booked something we did not: the next session names the difference
    refused = open_session(engine, SETTINGS, account, run_id=run_id, event_time=T0)
    assert not refused.may_trade and [(d.kind, d.item, d.difference) for d in refused.differences] == [
        ("balance", "USD", Decimal(-25))
    ]


def test_turning_the_kill_switch_on_cancels_open_oanda_orders(engine: Engine, venue: OandaStandIn) -> None:
    tag = uuid.uuid4().hex[:8]
    account, run_id, [intent] = live_account(engine, 1, tag)
    store_oanda_keys(engine, account, venue.url)
    coid = client_order_id_for(intent.decision_id, 0)
    venue.behaviour[coid] = "pending"  # a market order OANDA holds (as a limit order would be)
    venue.orders.clear()
    broker = broker_for_account(engine, SETTINGS, account)
    assert isinstance(broker, OandaBroker)
    with engine.begin() as conn:
        execute(conn, [intent], run_id=run_id, broker=broker, settings=SETTINGS, event_time=T0)
    broker.client.close()
    assert [o["state"] for o in venue.orders.values()] == ["PENDING"]
    assert any(isinstance(b, OandaBroker) for b in all_brokers(engine, SETTINGS))
    summary = cancel_open_orders_now(engine, SETTINGS, "drill")
    assert [o["state"] for o in venue.orders.values()] == ["CANCELLED"]
    assert coid in summary.cancelled
    with engine.connect() as conn:
        status = conn.execute(text("select status from audit.orders where client_order_id = :c"), {"c": coid})
        assert status.scalar_one() == "cancelled"


def test_a_shadow_account_at_oanda_sends_through_oanda_beside_the_paper_shadow(
    engine: Engine, venue: OandaStandIn
) -> None:
    tag = uuid.uuid4().hex[:8]
    account, run_id, intents = live_account(engine, 1, tag, mode="shadow")
    store_oanda_keys(engine, account, venue.url)
    session = open_session(engine, SETTINGS, account, run_id=run_id, event_time=T0)
    assert session.may_trade and isinstance(session.broker, ShadowBroker)
    with engine.begin() as conn:
        result = execute(conn, intents, run_id=run_id, broker=session.broker, settings=SETTINGS, event_time=T0)
    assert len(result.submitted) == 1 and venue.count(client_order_id_for(intents[0].decision_id, 0)) == 1
    assert session.broker.take_observations()  # the paper shadow saw the same request


def test_a_usd_account_trading_usd_jpy_books_fees_in_usd_and_reconciles_clean(
    engine: Engine, venue: OandaStandIn, clients: list[OandaClient]
) -> None:
    """The quote currency (JPY) is not the account's: the notional is judged in USD through the stored rate
    (alphaloom.fx), the fill's commission is booked in USD, and the venue's balance and position agree with ours."""
    tag = uuid.uuid4().hex[:8]
    account, run_id, _ = live_account(engine, 0, tag)
    decision_id = DecisionId(f"d-jpy-{tag}")
    with engine.begin() as conn:
        store_rate(conn, "USD", "JPY", Decimal("155.13"), T0 - timedelta(hours=1))
        conn.execute(
            text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                 score, config_version, inputs)
                    values (:d, :r, :a, 'USD/JPY', '1h', :t, 'buy', 1.0, 'test', '{}'::jsonb)"""),
            {"d": decision_id, "r": run_id, "a": account, "t": T0},
        )  # fmt: skip
    venue.commission = "0.0500"
    broker = oanda(venue, clients)
    intent = OrderIntent(decision_id, account, "USD/JPY", Side.BUY, Decimal(1000), Decimal("155.13"))
    with engine.begin() as conn:
        result = execute(conn, [intent], run_id=run_id, broker=broker, settings=SETTINGS, event_time=T0)
    [outcome] = result.submitted
    [fill] = outcome.fills
    assert (fill.price, fill.fee, fill.fee_currency) == (Decimal("155.135"), Decimal("0.0500"), "USD")
    with engine.begin() as conn:
        differences = reconcile_account(conn, broker, account, run_id=run_id, event_time=T0)
        jpy = conn.execute(text("select amount from audit.balances where account = :a and currency = 'JPY'"),
                           {"a": account}).scalar_one()  # fmt: skip
    assert differences == [] and Decimal(jpy) == Decimal("-155135.000")


def test_a_usd_fee_on_usd_jpy_is_paid_from_usd_cash_and_the_position_equals_oanda_units(
    engine: Engine, venue: OandaStandIn, clients: list[OandaClient]
) -> None:
    """Forex fees are charged to the account's cash, never to the position: a USD commission on USD/JPY (base
    currency = fee currency) leaves our position at OANDA's units exactly and takes the fee from the USD balance."""
    tag = uuid.uuid4().hex[:8]
    account, run_id, _ = live_account(engine, 0, tag)
    decision_id = DecisionId(f"d-jpyfee-{tag}")
    with engine.begin() as conn:
        store_rate(conn, "USD", "JPY", Decimal("155.13"), T0 - timedelta(hours=1))
        conn.execute(
            text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                 score, config_version, inputs)
                    values (:d, :r, :a, 'USD/JPY', '1h', :t, 'buy', 1.0, 'test', '{}'::jsonb)"""),
            {"d": decision_id, "r": run_id, "a": account, "t": T0},
        )  # fmt: skip
    venue.commission = "0.0500"
    broker = oanda(venue, clients)
    intent = OrderIntent(decision_id, account, "USD/JPY", Side.BUY, Decimal(1000), Decimal("155.13"))
    with engine.begin() as conn:
        execute(conn, [intent], run_id=run_id, broker=broker, settings=SETTINGS, event_time=T0)
    with engine.connect() as conn:
        held = conn.execute(text("select quantity from audit.positions where account = :a and symbol = 'USD/JPY'"),
                            {"a": account}).scalar_one()  # fmt: skip
        usd = conn.execute(text("select amount from audit.balances where account = :a and currency = 'USD'"),
                           {"a": account}).scalar_one()  # fmt: skip
    assert Decimal(held) == venue.positions["USD_JPY"][0] == Decimal(1000)
    assert Decimal(usd) == Decimal(100_000) - Decimal("0.0500") == venue.balance


def test_daily_financing_is_booked_once_and_reconciliation_stays_clean(
    engine: Engine, venue: OandaStandIn, clients: list[OandaClient]
) -> None:
    """OANDA's daily financing (swap) on a held position is booked as a fee in the account's currency at the start
    of reconciliation: the balances agree, and a second run (a fresh broker: a restart) books nothing again."""
    tag = uuid.uuid4().hex[:8]
    account, run_id, intents = live_account(engine, 1, tag)
    with engine.begin() as conn:
        execute(conn, intents, run_id=run_id, broker=oanda(venue, clients), settings=SETTINGS, event_time=T0)
    venue.charge_financing("-1.2500")  # paid over the rollover
    venue.charge_financing("0.3000")  # received the next day
    with engine.begin() as conn:
        assert reconcile_account(conn, oanda(venue, clients), account, run_id=run_id, event_time=T0) == []
    with engine.begin() as conn:  # a restart: a new broker, nothing new at the venue
        assert reconcile_account(conn, oanda(venue, clients), account, run_id=run_id, event_time=T0) == []
    venue.charge_financing("-0.5000")
    with engine.begin() as conn:
        assert reconcile_account(conn, oanda(venue, clients), account, run_id=run_id, event_time=T0) == []
    with engine.connect() as conn:
        usd = conn.execute(text("select amount from audit.balances where account = :a and currency = 'USD'"),
                           {"a": account}).scalar_one()  # fmt: skip
        booked = conn.execute(text("select kind, fee, currency from audit.venue_charges where account = :a "
                                   "order by charge_id"), {"a": account}).all()  # fmt: skip
    assert venue.balance == Decimal(100_000) - Decimal("1.45")
    with engine.connect() as conn:  # the account's fees paid count the financing
        assert [(c, Decimal(f)) for c, f in fees_by_currency(conn, AccountId(account))] == [("USD", Decimal("1.45"))]
    assert Decimal(usd) == Decimal(100_000) - Decimal(100) * Decimal("1.08420") - Decimal("1.45")  # notional, swap
    assert [(k, Decimal(f), c) for k, f, c in booked] == [
        ("financing", Decimal("1.25"), "USD"),
        ("financing", Decimal("-0.30"), "USD"),
        ("financing", Decimal("0.50"), "USD"),
    ]
