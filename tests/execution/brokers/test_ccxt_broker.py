"""The ccxt broker against ccxt's real binance class fed recorded responses below it (no network): client order id,
precision and limits, lookup by client id after an unknown outcome (never a blind resend), status mapping, and
execution's exactly-once guarantee against this venue."""

from __future__ import annotations

import random
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from support.binance_broker import T0, binance_broker, creates
from support.ccxt_replay import BinanceSpotVenue

from alphaloom.domain import ClientOrderId, DecisionId, OrderIntent, OrderStatus, Side, client_order_id_for
from alphaloom.errors import KillSwitchEngagedError, OrderRejectedError, UnknownOrderStateError
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.settings import RiskSettings, Settings
from execution.accounts.registry import ensure_account
from execution.brokers.base import BrokerReport, CancellingBroker, OrderRequest
from execution.brokers.ccxt_broker import CcxtBroker
from execution.brokers.ccxt_mapping import check_market_limits, status_from_ccxt
from execution.submit import execute

S = OrderStatus


def request(coid: str, quantity: str, *, symbol: str = "BTC/USDT", price: str = "87500") -> OrderRequest:
    return OrderRequest(ClientOrderId(coid), "acct", symbol, Side.BUY, Decimal(quantity), Decimal(price), T0)


# --- pure mapping ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "filled", "amount", "ours"),
    [
        ("open", "0", "1", S.SUBMITTED),
        ("open", "0.4", "1", S.PARTIALLY_FILLED),
        ("closed", "1", "1", S.FILLED),
        ("closed", "0.4", "1", S.EXPIRED),
        ("canceled", "0.4", "1", S.CANCELLED),
        ("expired", "0", "1", S.EXPIRED),
        ("rejected", "0", "1", S.REJECTED),
    ],
)
def test_ccxt_statuses_map_onto_our_state_machine(status: str, filled: str, amount: str, ours: OrderStatus) -> None:
    assert status_from_ccxt(status, Decimal(filled), Decimal(amount)) is ours


def test_an_unknown_ccxt_status_is_not_guessed() -> None:
    with pytest.raises(UnknownOrderStateError, match="'weird'"):
        status_from_ccxt("weird", Decimal(0))


def test_market_limits_name_symbol_value_and_minimum() -> None:
    market = {"limits": {"amount": {"min": 0.001, "max": 100.0}, "cost": {"min": 5.0}}}
    check_market_limits("ETH/USDT", market, Decimal("0.002"), Decimal(3000))
    with pytest.raises(OrderRejectedError, match=r"ETH/USDT: amount 0.0005 is below the venue minimum amount 0.001"):
        check_market_limits("ETH/USDT", market, Decimal("0.0005"), Decimal(3000))
    with pytest.raises(OrderRejectedError, match=r"ETH/USDT: order cost 4.0000 .* below the venue minimum cost 5.0"):
        check_market_limits("ETH/USDT", market, Decimal("0.0010"), Decimal(4000))
    with pytest.raises(OrderRejectedError, match=r"above the venue maximum amount 100\.0"):
        check_market_limits("ETH/USDT", market, Decimal(101), Decimal(1))


# --- the broker on binance's real class -------------------------------------------------------------------------------


def test_create_order_sends_the_client_id_and_the_amount_through_market_precision() -> None:
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"})
    broker, replay = binance_broker(venue)
    report = broker.submit(request("al-precision", "0.0123456789"))
    (sent,) = creates(replay)
    assert sent["newClientOrderId"] == "al-precision"  # our deterministic id is the venue's client id
    assert sent["quantity"] == "0.01234"  # LOT_SIZE stepSize 0.00001, truncated
    assert (sent["type"], sent["side"], sent["symbol"]) == ("MARKET", "BUY", "BTCUSDT")
    assert report.status is S.FILLED and report.venue_order_id == "1001"
    (fill,) = report.fills
    assert (fill.quantity, fill.price) == (Decimal("0.01234"), Decimal("87512.0"))
    assert isinstance(fill.fee, Decimal) and fill.fee == Decimal("0.01234") * Decimal("87512") / 1000
    assert fill.fee_currency == "USDT" and fill.slippage == Decimal("0.01234") * 12


def test_timeout_after_the_venue_accepted_is_looked_up_and_never_resent() -> None:
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"})
    broker, replay = binance_broker(venue)
    venue.timeouts["al-lost-answer"] = "after_accept"
    report = broker.submit(request("al-lost-answer", "0.01"))
    assert len(creates(replay)) == 1 and venue.count("al-lost-answer") == 1  # no second create
    lookups = [q for m, p, q in replay.requests if (m, p) == ("GET", "/api/v3/order")]
    assert [q["origClientOrderId"] for q in lookups] == ["al-lost-answer"]
    assert report.status is S.FILLED and report.filled_quantity == Decimal("0.01")
    assert [p for _, p, _ in replay.requests][-1] == "/api/v3/myTrades"  # fills read from the venue's trades


def test_timeout_before_the_venue_saw_it_is_looked_up_then_sent_once_more() -> None:
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"})
    broker, replay = binance_broker(venue)
    venue.timeouts["al-lost-request"] = "before_accept"
    report = broker.submit(request("al-lost-request", "0.01"))
    sequence = [(m, p) for m, p, _ in replay.requests if p == "/api/v3/order"]
    assert sequence == [("POST", "/api/v3/order"), ("GET", "/api/v3/order"), ("POST", "/api/v3/order")]
    assert venue.count("al-lost-request") == 1 and report.status is S.FILLED


def test_lookup_failing_too_is_an_unknown_outcome_not_a_resend() -> None:
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"})
    broker, replay = binance_broker(venue)
    venue.timeouts["al-dark"] = "after_accept"
    routes = venue.routes()

    def down(q: dict[str, str]) -> tuple[int, object]:
        return 503, "Service Unavailable"

    replay.routes = {**routes, "GET /api/v3/order": down}
    with pytest.raises(UnknownOrderStateError, match="lookup failed too"):
        broker.submit(request("al-dark", "0.01"))
    assert len(creates(replay)) == 1 and venue.count("al-dark") == 1


def test_below_minimum_amount_or_cost_is_rejected_before_anything_is_sent() -> None:
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"})
    broker, replay = binance_broker(venue)
    with pytest.raises(OrderRejectedError, match=r"BTC/USDT: amount 0.000001 is below .*minimum amount 1e-05"):
        broker.submit(request("al-tiny", "0.000001"))
    with pytest.raises(OrderRejectedError, match=r"BTC/USDT: order cost .* below the venue minimum cost 5.0"):
        broker.submit(request("al-cheap", "0.00002"))  # 0.00002 * 87500 = 1.75 < NOTIONAL minNotional 5
    with pytest.raises(OrderRejectedError, match="no market 'DOGE/EUR'"):
        broker.submit(request("al-nomarket", "1", symbol="DOGE/EUR"))
    assert creates(replay) == []


def test_a_venue_refusal_is_a_rejection_and_the_kill_switch_sends_nothing() -> None:
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"})
    broker, replay = binance_broker(venue)
    routes = venue.routes()
    replay.routes = {**routes, "POST /api/v3/order": lambda q: (400, {"code": -2010, "msg": "Account has "
                                                                      "insufficient balance for requested action."})}  # fmt: skip
    with pytest.raises(OrderRejectedError, match="insufficient balance"):
        broker.submit(request("al-poor", "0.01"))
    engaged, replay2 = binance_broker(venue, switch=KillSwitchState(True, "drill", "test"))
    with pytest.raises(KillSwitchEngagedError, match="drill"):
        engaged.submit(request("al-blocked", "0.01"))
    assert creates(replay2) == []


def test_open_orders_cancel_and_lookup_without_memory_across_configured_symbols() -> None:
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00", "ETHUSDT": "2950.00"})
    broker, _ = binance_broker(venue, symbols=("BTC/USDT", "ETH/USDT"))
    assert isinstance(broker, CancellingBroker)
    venue.resting.add("al-rest")
    assert broker.submit(request("al-rest", "0.5", symbol="ETH/USDT", price="2950")).status is S.SUBMITTED
    fresh, _ = binance_broker(venue, symbols=("BTC/USDT", "ETH/USDT"))  # a restarted process: no memory
    assert [r.client_order_id for r in fresh.open_orders()] == ["al-rest"]
    found = fresh.lookup(ClientOrderId("al-rest"))
    assert found is not None and found.status is S.SUBMITTED
    cancelled = fresh.cancel(ClientOrderId("al-rest"), "ETH/USDT")
    assert cancelled is not None and cancelled.status is S.CANCELLED and fresh.open_orders() == []
    assert fresh.lookup(ClientOrderId("al-never")) is None


# --- execution against the binance class: exactly once -----------------------------------------------------------------


class Crash(Exception):
    """Stands for the process dying after the venue answered, before execution recorded anything."""


class CrashAfterSubmit:
    def __init__(self, inner: CcxtBroker, crash: set[ClientOrderId]) -> None:
        self.inner, self.crash, self.name, self.live = inner, crash, inner.name, True

    def submit(self, req: OrderRequest) -> BrokerReport:
        report = self.inner.submit(req)
        if req.client_order_id in self.crash:
            self.crash.discard(req.client_order_id)
            raise Crash(req.client_order_id)
        return report

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        return self.inner.lookup(client_order_id)


def _live_account(engine: Engine, n: int, tag: str) -> tuple[str, str, list[OrderIntent]]:
    account, run_id = f"live-{tag}", f"run-live-{tag}"
    intents = []
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "binance", "USDT", "live", Decimal(1_000_000), run_id)
        conn.execute(text("update audit.accounts set live_enabled = true where id = :a"), {"a": account})
        for i in range(n):
            decision_id = DecisionId(f"d-live-{tag}-{i}")
            conn.execute(
                text(
                    """insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                    score, config_version, inputs)
                       values (:d, :r, :a, 'BTC/USDT', '1h', :t, 'buy', 1.0, 'test', '{}'::jsonb)"""
                ),
                {"d": decision_id, "r": run_id, "a": account, "t": T0},
            )
            intents.append(OrderIntent(decision_id, account, "BTC/USDT", Side.BUY, Decimal("0.001") * (i % 4 + 1),
                                       Decimal("87500")))  # fmt: skip
    return account, run_id, intents


def test_execution_against_binance_loses_nothing_and_doubles_nothing(engine: Engine) -> None:
    """30 orders: a third time out after the venue accepted them, a third time out before, a third crash the process
    after the venue answered; then a restart with a fresh broker. Every order exists once at the venue and once in
    the audit, with one fill each."""
    tag = uuid.uuid4().hex[:8]
    account, run_id, intents = _live_account(engine, 30, tag)
    coids = [client_order_id_for(i.decision_id, 0) for i in intents]
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"})
    rng = random.Random(7)
    plan = {c: rng.choice(["after_accept", "before_accept", "crash"]) for c in coids}
    venue.timeouts.update({c: f for c, f in plan.items() if f != "crash"})
    inner, replay = binance_broker(venue)
    broker = CrashAfterSubmit(inner, {c for c, f in plan.items() if f == "crash"})
    settings = Settings(risk=RiskSettings(max_orders_per_run=1000))
    crashes = 0
    for intent in intents:
        try:
            with engine.begin() as conn:
                execute(conn, [intent], run_id=run_id, broker=broker, settings=settings, event_time=T0)
        except Crash:
            crashes += 1
    assert crashes == sum(1 for f in plan.values() if f == "crash") > 0
    restarted, replay_after = binance_broker(venue)  # forgets what it sent; finds orders by client id
    with engine.begin() as conn:
        result = execute(conn, intents, run_id=run_id, broker=restarted, settings=settings, event_time=T0)
    assert len(result.recovered) == crashes and creates(replay_after) == []
    assert len(creates(replay)) == 30 + sum(1 for f in plan.values() if f == "before_accept")
    with engine.connect() as conn:
        audit = dict(conn.execute(text("select client_order_id, count(*) from audit.orders where account = :a "
                                       "group by 1"), {"a": account}).all())  # fmt: skip
        fills = dict(conn.execute(text("select client_order_id, count(*) from audit.fills where account = :a "
                                       "group by 1"), {"a": account}).all())  # fmt: skip
        statuses = set(conn.execute(text("select status from audit.orders where account = :a"), {"a": account})
                       .scalars())  # fmt: skip
        held = conn.execute(text("select quantity from audit.positions where account = :a"), {"a": account}).scalar()
    lost = [c for c in coids if venue.count(c) == 0 or audit.get(c, 0) == 0]
    doubled = [c for c in coids if venue.count(c) > 1 or audit.get(c, 0) > 1 or fills.get(c, 0) > 1]
    assert (lost, doubled) == ([], [])
    assert statuses == {"filled"} and Decimal(held) == sum((i.quantity for i in intents), Decimal(0))


def test_three_sigkills_against_the_binance_class_lose_nothing_and_double_nothing(engine: Engine, tmp_path) -> None:
    """A worker process executing live intents through ccxt's binance class is SIGKILLed after journaling, after the
    venue accepted an order and before its transaction committed; the venue's book outlives it (a file). A final
    worker with no memory finds every order by client id: each exists once at the venue and once in the audit."""
    import signal

    from support.ccxt_replay import DurableBinanceSpotVenue
    from support.crash import run_worker, wait_for

    tag = uuid.uuid4().hex[:8]
    account, run_id, intents = _live_account(engine, 12, tag)
    state = tmp_path / "binance-book.json"
    base = {
        "account": account, "run_id": run_id, "event_time": T0.isoformat(), "binance_state": str(state),
        "intents": [{"decision_id": i.decision_id, "symbol": i.symbol, "side": i.side.value,
                     "quantity": str(i.quantity), "price": str(i.reference_price)} for i in intents],
    }  # fmt: skip
    points = sorted(random.Random(11).sample(range(len(intents)), 3))
    for round_, (stop_at, stage) in enumerate(
        zip(points, ["after_submit", "before_commit", "after_journal"], strict=True)
    ):
        signal_file = tmp_path / f"parked-{round_}"
        proc = run_worker({**base, "stop_at": stop_at, "stage": stage, "signal": str(signal_file)}, tmp_path,
                          f"kill-{round_}")  # fmt: skip
        wait_for(signal_file, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)  # waits for it and closes its pipes
        assert proc.returncode == -signal.SIGKILL
    final = run_worker({**base, "stop_at": -1, "stage": "none", "signal": ""}, tmp_path, "final")
    out, err = final.communicate(timeout=180)
    assert final.returncode == 0 and "done" in out, err

    venue = DurableBinanceSpotVenue(state, {})
    venue.load()
    coids = [client_order_id_for(i.decision_id, 0) for i in intents]
    with engine.connect() as conn:
        audit = dict(conn.execute(text("select client_order_id, count(*) from audit.orders where account = :a "
                                       "group by 1"), {"a": account}).all())  # fmt: skip
        fills = dict(conn.execute(text("select client_order_id, count(*) from audit.fills where account = :a "
                                       "group by 1"), {"a": account}).all())  # fmt: skip
        held = conn.execute(text("select quantity from audit.positions where account = :a"), {"a": account}).scalar()
    lost = [c for c in coids if venue.count(c) == 0 or audit.get(c, 0) == 0]
    doubled = [c for c in coids if venue.count(c) > 1 or audit.get(c, 0) > 1 or fills.get(c, 0) > 1]
    assert (lost, doubled) == ([], [])
    assert len(venue.orders) == 12 and Decimal(held) == sum((i.quantity for i in intents), Decimal(0))
