"""TWAP schedules through Alpaca and OANDA as ordinary brokers (the real alpaca-py client and the v20 client against
their stand-ins on 127.0.0.1, real PostgreSQL): a parent above the split notional goes out as 4 slices over 4 hours,
each journalled under its own client order id before it is sent and filled once at the venue. A slice whose answer is
lost is looked up by client id before any resend; one refused before the venue booked it is sent again only once the
venue says it never saw it; one whose process died after the venue answered is found there by the next pass. 0 lost,
0 doubled. Routed through the smart router, each slice is planned on the quotes of its own release time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, text
from support.alpaca_standin import AlpacaStandIn, Outcome, broker_on
from support.eurusd_venue import eur_usd_broker, eur_usd_venue
from support.oanda_standin import ACCOUNT_ID, TOKEN, OandaStandIn

from alphaloom.domain import AccountId, ClientOrderId, DecisionId, OrderIntent, Side, client_order_id_for
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.settings import RiskSettings, Settings, SplitSettings
from alphaloom.venues.oanda_client import OandaClient, OandaConfig
from execution.accounts.registry import ensure_account
from execution.algos.release import release_due_children
from execution.algos.routing import RoutingBroker
from execution.brokers.base import Broker, BrokerReport, OrderRequest
from execution.brokers.oanda_broker import OandaBroker
from execution.submit import execute

D = Decimal
HOUR = timedelta(hours=1)
OFF = KillSwitchState(False, "", "")
SETTINGS = Settings(timeframe="1h", split=SplitSettings(above_notional=D(1000), slices=4, twap_duration_minutes=240),
                    risk=RiskSettings(max_order_notional=D(100_000), max_position_notional=D(100_000),
                                      max_orders_per_run=1000))  # fmt: skip


class Crash(Exception):
    """The process dies after the venue answered, before the caller's transaction commits."""


class CrashAfterSubmit:
    """A venue broker whose process dies once, right after the venue answered for ``crash_on``."""

    def __init__(self, inner: Broker, crash_on: ClientOrderId) -> None:
        self.inner, self.crash_on, self.name, self.live = inner, crash_on, inner.name, inner.live

    def submit(self, request: OrderRequest) -> BrokerReport:
        report = self.inner.submit(request)
        if request.client_order_id == self.crash_on:
            self.crash_on = ClientOrderId("")
            raise Crash(request.client_order_id)
        return report

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        return self.inner.lookup(client_order_id)


def _account(engine: Engine, venue: str, symbol: str, at: datetime) -> tuple[AccountId, str, DecisionId]:
    tag = uuid.uuid4().hex[:8]
    account, run_id, decision_id = AccountId(f"qtwap-{tag}"), f"run-qtwap-{tag}", DecisionId(f"d-qtwap-{tag}")
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, venue, "USD", "live", D(1_000_000), run_id)
        conn.execute(text("update audit.accounts set live_enabled = true where id = :a"), {"a": account})
        conn.execute(
            text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                 score, config_version, inputs)
                    values (:d, :r, :a, :s, '1h', :t, 'buy', 1.0, 'test', '{}'::jsonb)"""),
            {"d": decision_id, "r": run_id, "a": account, "s": symbol, "t": at},
        )  # fmt: skip
    return account, run_id, decision_id


def _run_schedule(
    engine: Engine, broker: Any, intent: OrderIntent, run_id: str, t0: datetime, prices: dict[str, Decimal]
) -> int:
    """The decision at ``t0``, then a release pass every hour (a pass that crashes is run again); how many crashed."""
    crashes = 0
    with engine.begin() as conn:
        first = execute(conn, [intent], run_id=run_id, broker=broker, settings=SETTINGS, event_time=t0,
                        last_prices=prices)  # fmt: skip
    assert first.broker_submits == 1 and len(first.scheduled) == 3
    for hour in (1, 2, 3):
        while True:
            try:
                with engine.begin() as conn:
                    release_due_children(conn, broker, t0 + hour * HOUR, settings=SETTINGS, run_id=run_id,
                                         account=intent.account, last_prices=prices)  # fmt: skip
                break
            except Crash:
                crashes += 1
    return crashes


def _audit(engine: Engine, account: str) -> dict[str, dict[str, Any]]:
    """Per client order id: audit orders, fills, journalled attempts, the order's status and its slice's status."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("""select s.client_order_id, s.status as slice,
                           (select count(*) from audit.orders o where o.client_order_id = s.client_order_id) as orders,
                           (select count(*) from audit.fills f where f.client_order_id = s.client_order_id) as fills,
                           (select count(*) from audit.submit_attempts a
                             where a.client_order_id = s.client_order_id) as journalled,
                           (select status from audit.orders o where o.client_order_id = s.client_order_id) as status
                    from audit.scheduled_slices s where s.account = :a order by s.leg"""),
            {"a": account},
        ).mappings()  # fmt: skip
        return {r["client_order_id"]: dict(r) for r in rows}


def _exactly_once(audit: dict[str, dict[str, Any]], at_venue: dict[str, int]) -> None:
    lost = [c for c, r in audit.items() if at_venue[c] == 0 or r["orders"] == 0]
    doubled = [c for c, r in audit.items() if at_venue[c] > 1 or r["orders"] > 1 or r["fills"] > 1]
    assert (lost, doubled) == ([], [])
    assert {(r["slice"], r["status"], r["journalled"]) for r in audit.values()} == {("released", "filled", 1)}


@pytest.fixture
def stocks() -> Iterator[AlpacaStandIn]:
    standin = AlpacaStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def fx_venue() -> Iterator[OandaStandIn]:
    standin = OandaStandIn().start()
    yield standin
    standin.stop()


def test_twap_slices_through_alpaca_fill_once_each_through_a_lost_answer_a_503_and_a_crash(
    engine: Engine, stocks: AlpacaStandIn
) -> None:
    t0 = stocks.now
    account, run_id, decision_id = _account(engine, "alpaca", "AAPL", t0)
    intent = OrderIntent(decision_id, account, "AAPL", Side.BUY, D(20), D("187.20"))  # 3,744 USD: 4 slices of 5
    coids = [client_order_id_for(decision_id, leg) for leg in (1, 2, 3, 4)]
    broker = CrashAfterSubmit(broker_on(stocks), coids[3])
    # slice 2: Alpaca books and fills it, the answer never arrives; slice 3: a 503, nothing booked
    stocks.script[:] = [Outcome("fill"), Outcome("drop"), Outcome("busy")]
    crashes = _run_schedule(engine, broker, intent, run_id, t0, {"AAPL": D("187.20")})
    assert crashes == 1
    at_venue = {c: sum(1 for o in stocks.orders.values() if o["client_order_id"] == c) for c in coids}
    _exactly_once(_audit(engine, account), at_venue)
    creates = [body["client_order_id"] for body in stocks.creates()]
    # the lost answer was looked up, not resent; the 503 was resent once Alpaca said it had no such id; the crashed
    # slice was found by the next pass
    assert creates == [coids[0], coids[1], coids[2], coids[2], coids[3]]
    lookups = [q["client_order_id"][0] for m, p, q, _ in stocks.requests if p == "/v2/orders:by_client_order_id"]
    assert lookups.count(coids[1]) == 1 and lookups.count(coids[2]) == 1 and coids[3] in lookups
    assert [body["qty"] for body in stocks.creates()] == [5.0] * 5 and stocks.positions["AAPL"] == D(20)


def _oanda(standin: OandaStandIn) -> OandaBroker:
    client = OandaClient(OandaConfig(standin.url, TOKEN, ACCOUNT_ID), timeout=5)
    return OandaBroker(client, kill_switch=lambda: OFF, settle_seconds=0, sleep=lambda s: None)


def test_twap_slices_through_oanda_fill_once_each_through_lost_answers_and_a_crash(
    engine: Engine, fx_venue: OandaStandIn
) -> None:
    t0 = fx_venue.clock
    account, run_id, decision_id = _account(engine, "oanda", "EUR/USD", t0)
    intent = OrderIntent(decision_id, account, "EUR/USD", Side.BUY, D(4000), D("1.0841"))  # 4,336 USD: 4 slices
    coids = [client_order_id_for(decision_id, leg) for leg in (1, 2, 3, 4)]
    fx_venue.behaviour.update({coids[1]: "drop_after_accept", coids[2]: "drop_before_accept"})
    crashes = _run_schedule(engine, CrashAfterSubmit(_oanda(fx_venue), coids[3]), intent, run_id, t0,
                            {"EUR/USD": D("1.0841")})  # fmt: skip
    assert crashes == 1
    _exactly_once(_audit(engine, account), {c: fx_venue.count(c) for c in coids})
    assert [fx_venue.creates(c) for c in coids] == [1, 1, 2, 1]  # only the one OANDA never booked went again
    assert fx_venue.positions["EUR_USD"][0] == D(4000)


def test_twap_slices_routed_across_oanda_and_a_ccxt_venue_are_each_planned_on_their_own_quotes(
    engine: Engine, fx_venue: OandaStandIn
) -> None:
    """The first slice goes to OANDA (cheaper all in); an hour later OANDA's ask has risen above the ccxt venue's
    all-in price, so the second slice goes there; each routed leg once, at the venue its plan names."""
    t0 = fx_venue.clock
    account, run_id, decision_id = _account(engine, "oanda", "EUR/USD", t0)
    binance = eur_usd_venue()
    bn, _ = eur_usd_broker(binance)
    router = RoutingBroker({"binance": bn, "oanda": _oanda(fx_venue)}, fee_bps={"binance": D(10)},
                           clock=lambda: fx_venue.clock)  # fmt: skip
    intent = OrderIntent(decision_id, account, "EUR/USD", Side.BUY, D(4000), D("1.0841"))
    prices = {"EUR/USD": D("1.0841")}
    with engine.begin() as conn:
        execute(conn, [intent], run_id=run_id, broker=router, settings=SETTINGS, event_time=t0, last_prices=prices)
    fx_venue.prices["EUR_USD"] = ("1.08600", "1.08610")  # above 1.08508, the ccxt venue's ask after its fee
    fx_venue.clock = t0 + HOUR
    with engine.begin() as conn:
        release_due_children(conn, router, t0 + HOUR, settings=SETTINGS, run_id=run_id, account=account,
                             last_prices=prices)  # fmt: skip
    with engine.connect() as conn:
        legs = conn.execute(text("select r.client_order_id, r.venue, r.parent_client_order_id, o.status from "
                                 "audit.route_legs r join audit.orders o using (client_order_id) "
                                 "where r.account = :a order by r.leg"), {"a": account}).all()  # fmt: skip
    slice1, slice2 = client_order_id_for(decision_id, 1), client_order_id_for(decision_id, 2)
    leg1, leg2 = client_order_id_for(decision_id, 1001), client_order_id_for(decision_id, 2001)
    assert [tuple(r) for r in legs] == [(leg1, "oanda", slice1, "filled"), (leg2, "binance", slice2, "filled")]
    assert (fx_venue.count(leg1), binance.count(leg1), fx_venue.count(leg2), binance.count(leg2)) == (1, 0, 0, 1)


def test_an_iceberg_through_alpaca_shows_one_child_at_a_time_each_filled_once(
    engine: Engine, stocks: AlpacaStandIn
) -> None:
    """Iceberg children of at most 1,000 USD (5 shares at 187.20): the decision sends the first; each release pass
    sends the next once Alpaca reports the one before filled. A child whose answer is lost is looked up, not resent."""
    iceberg = Settings(timeframe="1h", risk=SETTINGS.risk,
                       split=SplitSettings(above_notional=D(1000), method="iceberg", visible_notional=D(1000)))  # fmt: skip
    t0 = stocks.now
    account, run_id, decision_id = _account(engine, "alpaca", "AAPL", t0)
    intent = OrderIntent(decision_id, account, "AAPL", Side.BUY, D(12), D("187.20"))  # children of 5, 5, 2
    coids = [client_order_id_for(decision_id, leg) for leg in (1, 2, 3)]
    prices = {"AAPL": D("187.20")}
    stocks.script[:] = [Outcome("fill"), Outcome("drop")]
    with engine.begin() as conn:
        first = execute(conn, [intent], run_id=run_id, broker=broker_on(stocks), settings=iceberg, event_time=t0,
                        last_prices=prices)  # fmt: skip
    assert first.broker_submits == 1 and len(first.scheduled) == 2
    sent = []
    for _ in range(3):  # a pass per child; the last finds nothing due
        with engine.begin() as conn:
            sent.append(release_due_children(conn, broker_on(stocks), t0, settings=iceberg, run_id=run_id,
                                             account=account, last_prices=prices).broker_submits)  # fmt: skip
    assert sent == [1, 1, 0]
    at_venue = {c: sum(1 for o in stocks.orders.values() if o["client_order_id"] == c) for c in coids}
    _exactly_once(_audit(engine, account), at_venue)
    assert [(b["client_order_id"], b["qty"]) for b in stocks.creates()] == [
        (coids[0], 5.0), (coids[1], 5.0), (coids[2], 2.0)]  # fmt: skip
