"""Orders that must never be lost, doubled or mislabelled (issue 12, items 4-8), against ccxt's real binance class fed
recorded responses (``ccxt_replay``): a duplicate-client-id answer is looked up, never booked rejected; a resend after
a timeout needs the venue to confirm absence in its history too, after a settle delay; reconciliation looks up every
journaled attempt that has no order; the kill switch never marks an order cancelled that the venue did not confirm;
TWAP slices pass the portfolio gate at release and never go to a venue whose account failed reconciliation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import ccxt
import pytest
from sqlalchemy import Engine, text
from support.ccxt_replay import BinanceSpotVenue, VenueReplay, mount

from alphaloom.domain import ClientOrderId, DecisionId, OrderIntent, OrderStatus, Side, client_order_id_for
from alphaloom.errors import UnknownOrderStateError
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.settings import RoutingSettings, Settings, SplitSettings
from alphaloom.venues.ccxt_exchange import make_exchange
from execution.accounts.registry import ensure_account
from execution.brokers.base import OrderRequest
from execution.brokers.ccxt_broker import CcxtBroker
from execution.submit import execute

T0 = datetime(2026, 1, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
OFF = KillSwitchState(False, "", "")
S = OrderStatus


def binance(venue: BinanceSpotVenue, *, account: str | None = None) -> tuple[CcxtBroker, VenueReplay]:
    exchange = make_exchange(
        "binance",
        {"enableRateLimit": False, "apiKey": "test-key", "secret": "test-secret",
         "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}},
    )  # fmt: skip
    replay = mount(exchange, venue.routes())
    broker = CcxtBroker(
        exchange, kill_switch=lambda: OFF, symbols=("BTC/USDT",), account=account, clock=lambda: T0
    )  # the stand-in venue's clock
    broker.settle_seconds = 0
    return broker, replay


def request(coid: str, quantity: str = "0.01") -> OrderRequest:
    return OrderRequest(ClientOrderId(coid), "acct", "BTC/USDT", Side.BUY, Decimal(quantity), Decimal("87500"), T0)


def creates(replay: VenueReplay) -> int:
    return sum(1 for method, path, _ in replay.requests if (method, path) == ("POST", "/api/v3/order"))


def open_only_lookup(venue: BinanceSpotVenue, replay: VenueReplay) -> None:
    """A venue whose lookup by client id sees open orders only (many venues): a filled order is 'not found'."""

    def query(q: dict[str, str]) -> tuple[int, object]:
        found = venue._find(q)
        if found is None or found["status"] not in ("NEW", "PARTIALLY_FILLED"):
            return 400, {"code": -2013, "msg": "Order does not exist."}
        return venue.query(q)

    replay.routes = {**replay.routes, "GET /api/v3/order": query}


def _live_account(engine: Engine, tag: str, n: int = 1) -> tuple[str, str, list[OrderIntent]]:
    account, run_id = f"safe-{tag}", f"run-safe-{tag}"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "binance", "USDT", "live", Decimal(10000), run_id)
        conn.execute(text("update audit.accounts set live_enabled = true where id = :a"), {"a": account})
    intents = [OrderIntent(DecisionId(f"d-safe-{tag}-{i}"), account, "BTC/USDT", Side.BUY, Decimal("0.01"),
                           Decimal("87500")) for i in range(n)]  # fmt: skip
    return account, run_id, intents


def _decide(conn, intent: OrderIntent, run_id: str, as_of: datetime = T0) -> None:  # type: ignore[no-untyped-def]
    conn.execute(
        text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action, score,
                                             config_version, inputs)
                values (:d, :r, :a, :s, '1h', :t, 'buy', 1.0, 'test', '{}'::jsonb)"""),
        {"d": intent.decision_id, "r": run_id, "a": intent.account, "s": intent.symbol, "t": as_of},
    )  # fmt: skip


def _order(engine: Engine, coid: str):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(
            text("select status, filled_quantity, venue_order_id from audit.orders where client_order_id = :c"),
            {"c": coid},
        ).first()


# --- item 4: a duplicate-client-id answer ---------------------------------------------------------------------------


def test_ccxt_duplicate_order_id_and_binance_duplicate_answer_are_recognised() -> None:
    from alphaloom.venues.ccxt_errors import is_duplicate_id

    assert is_duplicate_id(ccxt.DuplicateOrderId('binance {"code":-1,"msg":"dup"}'))
    assert is_duplicate_id(ccxt.InvalidOrder('binance {"code":-2010,"msg":"Duplicate order sent."}'))
    assert not is_duplicate_id(ccxt.InvalidOrder('binance {"code":-2010,"msg":"Account has insufficient balance"}'))


def test_a_duplicate_client_id_answer_is_looked_up_not_booked_rejected(engine: Engine) -> None:
    """An earlier process sent the order (it rests at the venue) and recorded nothing; the same decision executed
    again gets binance's -2010 "Duplicate order sent." (ccxt: InvalidOrder, like DuplicateOrderId). The order is the
    venue's open order, booked submitted with its venue id, never rejected and never sent twice."""
    tag = uuid.uuid4().hex[:8]
    _, run_id, (intent,) = _live_account(engine, tag)
    coid = client_order_id_for(intent.decision_id, 0)
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"})
    venue.resting.add(coid)
    earlier, _ = binance(venue)
    earlier.submit(request(coid))  # the venue has it open; nothing of ours recorded it
    broker, replay = binance(venue)
    with engine.begin() as conn:
        _decide(conn, intent, run_id)
        result = execute(conn, [intent], run_id=run_id, broker=broker, settings=Settings(), event_time=T0)
    assert result.rejected == [] and venue.count(coid) == 1 and creates(replay) == 1
    row = _order(engine, coid)
    assert row.status == "submitted" and row.venue_order_id == str(venue.orders[0]["orderId"])


def test_a_duplicate_answer_for_an_order_the_lookup_cannot_find_is_unknown_not_rejected() -> None:
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"})
    broker, replay = binance(venue)
    replay.routes = {**replay.routes, "POST /api/v3/order": lambda q: (400, {"code": -2010,
                                                                               "msg": "Duplicate order sent."})}  # fmt: skip
    with pytest.raises(UnknownOrderStateError, match="duplicate client id"):
        broker.submit(request("al-dup-ghost"))


# --- item 5: resend only on confirmed absence ---------------------------------------------------------------------


def test_a_timeout_is_followed_by_the_settle_delay_then_a_lookup_of_closed_orders_never_a_double_send() -> None:
    """The venue accepted and filled the order, the answer was lost; its client-id lookup sees open orders only.
    One 'not found' must not allow a resend: the broker waits the settle delay, finds the order among the closed
    orders and returns it filled."""
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"})
    broker, replay = binance(venue)
    broker.lookup_sees_closed = False
    waits: list[float] = []
    broker.settle_seconds, broker.sleep = 1.5, waits.append
    open_only_lookup(venue, replay)
    venue.timeouts["al-filled-unseen"] = "after_accept"
    report = broker.submit(request("al-filled-unseen"))
    assert venue.count("al-filled-unseen") == 1 and creates(replay) == 1
    assert report.status is S.FILLED and report.filled_quantity == Decimal("0.01")
    assert waits == [1.5]


def test_a_trade_no_listed_order_explains_leaves_the_outcome_unknown() -> None:
    """Its history lags: closed orders do not list the order yet, but our trades show a fill of an order nobody
    lists. Absence is not confirmed: unknown outcome (reconciliation settles it), never a second create."""
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"})
    broker, replay = binance(venue)
    broker.lookup_sees_closed = False
    open_only_lookup(venue, replay)
    replay.routes = {**replay.routes, "/api/v3/allOrders": lambda q: (200, [])}
    venue.timeouts["al-lagging"] = "after_accept"
    with pytest.raises(UnknownOrderStateError, match="cannot confirm that al-lagging is absent"):
        broker.submit(request("al-lagging"))
    assert venue.count("al-lagging") == 1 and creates(replay) == 1


def test_confirmed_absence_in_the_history_allows_one_resend() -> None:
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"})
    broker, replay = binance(venue)
    broker.lookup_sees_closed = False
    open_only_lookup(venue, replay)
    venue.timeouts["al-never-arrived"] = "before_accept"
    report = broker.submit(request("al-never-arrived"))
    assert report.status is S.FILLED and venue.count("al-never-arrived") == 1 and creates(replay) == 2
    paths = [p for _, p, _ in replay.requests]
    assert "/api/v3/allOrders" in paths and "/api/v3/myTrades" in paths


def test_a_venue_without_order_history_never_resends_after_a_timeout() -> None:
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"})
    broker, replay = binance(venue)
    broker.lookup_sees_closed = False
    open_only_lookup(venue, replay)
    broker.exchange.has["fetchClosedOrders"] = False
    venue.timeouts["al-no-history"] = "before_accept"
    with pytest.raises(UnknownOrderStateError, match="lists no closed orders"):
        broker.submit(request("al-no-history"))
    assert creates(replay) == 1


def test_the_settle_delay_is_a_setting_passed_to_live_brokers(engine: Engine, tmp_path) -> None:
    from alphaloom.ops.secrets import Credentials, store_credentials
    from execution.brokers.factory import ccxt_broker, use_exchange_maker

    assert RoutingSettings.model_fields["resend_settle_seconds"].default > 0  # a real delay by default; tests set 0
    tag = uuid.uuid4().hex[:8]
    account, _, _ = _live_account(engine, tag)
    settings = Settings(home=tmp_path, routing=RoutingSettings(resend_settle_seconds=0.25))
    with engine.begin() as conn:
        store_credentials(conn, settings, Credentials("binance", account, "k", "s"))
    with use_exchange_maker(lambda name, config: make_exchange(name, {**config, "enableRateLimit": False})):
        broker = ccxt_broker(engine, settings, account, "binance")
    assert broker is not None and broker.settle_seconds == 0.25


# --- item 7: the kill switch never hides a live order -------------------------------------------------------------


def hide(venue: BinanceSpotVenue, replay: VenueReplay, hidden: set[str]) -> None:
    """The venue lists ``hidden`` client ids late: its lookups, cancels and lists do not show them yet."""
    routes = venue.routes()

    def late(handler, missing):  # type: ignore[no-untyped-def]
        def run(q: dict[str, str]) -> tuple[int, object]:
            if q.get("origClientOrderId") in hidden:
                return missing
            status, body = handler(q)
            if isinstance(body, list):
                body = [o for o in body if o.get("clientOrderId") not in hidden]
            return status, body

        return run

    replay.routes = {
        **routes,
        "GET /api/v3/order": late(venue.query, (400, {"code": -2013, "msg": "Order does not exist."})),
        "DELETE /api/v3/order": late(venue.cancel, (400, {"code": -2011, "msg": "Unknown order sent."})),
        "/api/v3/openOrders": late(venue.open_orders, (200, [])),
        "/api/v3/allOrders": late(venue.all_orders, (200, [])),
    }


def test_the_kill_switch_keeps_an_order_the_venue_lists_late_open_until_the_venue_confirms(engine: Engine) -> None:
    """A submit timed out and even its lookup failed: the order is recorded submitted (outcome unknown). The kill
    switch's cancel finds nothing at the venue (it lists the order late). The order must stay open in our books, so
    that reconciliation later finds it: resting there, it is cancelled through the venue while the switch is on;
    filled there, the fill is booked."""
    from alphaloom.ops.kill_switch import set_kill_switch
    from execution.accounts.reconcile import reconcile_account
    from execution.killswitch import cancel_open_orders

    tag = uuid.uuid4().hex[:8]
    account, run_id, intents = _live_account(engine, tag, 2)
    resting, filled = (client_order_id_for(i.decision_id, 0) for i in intents)
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"}, balances={"USDT": "10000"})
    venue.resting.add(resting)
    broker, replay = binance(venue, account=account)
    venue.timeouts.update({resting: "after_accept", filled: "after_accept"})
    hide(venue, replay, {resting, filled})
    replay.routes["GET /api/v3/order"] = lambda q: (503, "Service Unavailable")  # the lookup after the timeout fails
    with engine.begin() as conn:
        for intent in intents:
            _decide(conn, intent, run_id)
        result = execute(conn, intents, run_id=run_id, broker=broker, settings=Settings(), event_time=T0)
    assert sorted(result.unknown) == sorted([resting, filled]) and venue.count(resting) == venue.count(filled) == 1
    hide(venue, replay, {resting, filled})
    try:
        with engine.begin() as conn:
            set_kill_switch(conn, True, "drill", "test")
            summary = cancel_open_orders(conn, [broker], run_id=run_id, event_time=T0, reason="drill")
        assert summary.cancelled == [] and sorted(summary.unconfirmed) == sorted([resting, filled])
        assert _order(engine, resting).status == _order(engine, filled).status == "submitted"

        hide(venue, replay, set())  # the venue lists them now
        with engine.begin() as conn:
            reconcile_account(conn, broker, account, run_id=run_id, event_time=T0)
    finally:
        with engine.begin() as conn:
            set_kill_switch(conn, False, "drill over", "test")
    assert _order(engine, resting).status == "cancelled" and venue.orders[0]["status"] == "CANCELED"
    assert (_order(engine, filled).status, _order(engine, filled).filled_quantity) == ("filled", Decimal("0.01"))


# --- item 6: reconciliation looks up every journaled attempt --------------------------------------------------------


class Crash(Exception):
    """The process dying: nothing catches it, the decision's transaction rolls back."""


class CrashAt:
    """Delegates to a real ccxt broker; dies right after the venue answered, or right before the send."""

    def __init__(self, inner: CcxtBroker, stage: str) -> None:
        self.inner, self.stage, self.name, self.live = inner, stage, inner.name, True

    def submit(self, req: OrderRequest):  # type: ignore[no-untyped-def]
        if self.stage == "before_send":
            raise Crash(req.client_order_id)
        self.inner.submit(req)
        raise Crash(req.client_order_id)

    def lookup(self, client_order_id: ClientOrderId):  # type: ignore[no-untyped-def]
        return self.inner.lookup(client_order_id)


def _crash_deciding(engine: Engine, broker: CrashAt, intent: OrderIntent, run_id: str) -> None:
    with pytest.raises(Crash), engine.begin() as conn:
        _decide(conn, intent, run_id)  # the decision and its order share one transaction
        execute(conn, [intent], run_id=run_id, broker=broker, settings=Settings(), event_time=T0)


def _later_run(engine: Engine, tag: str) -> str:
    run_id = f"run-later-{tag}"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
    return run_id


def test_reconciliation_books_a_journaled_order_whose_decision_never_committed(engine: Engine) -> None:
    """The venue filled the order, then the process died before the decision's transaction committed: no decision,
    no order, only the journal. A later run at another as_of never recomputes that decision; its reconciliation must
    still look the journaled attempt up and book the venue's order, so our books agree with the venue."""
    from execution.accounts.reconcile import reconcile_account, unexplained

    tag = uuid.uuid4().hex[:8]
    account, run_id, (intent,) = _live_account(engine, tag)
    coid = client_order_id_for(intent.decision_id, 0)
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"})
    broker, _ = binance(venue, account=account)
    _crash_deciding(engine, CrashAt(broker, "after_send"), intent, run_id)
    with engine.connect() as conn:
        decided = conn.execute(text("select count(*) from audit.decisions where decision_id = :d"),
                               {"d": intent.decision_id}).scalar()  # fmt: skip
    assert decided == 0 and _order(engine, coid) is None and venue.count(coid) == 1
    cost = Decimal("0.01") * Decimal("87512")
    venue.balances = {"USDT": str(Decimal(10000) - cost - cost / 1000), "BTC": "0.01"}

    fresh, replay = binance(venue, account=account)  # a new process: no memory of what was sent
    later = _later_run(engine, tag)
    with engine.begin() as conn:
        differences = reconcile_account(conn, fresh, account, run_id=later, event_time=T0.replace(hour=5))
    row = _order(engine, coid)
    assert (row.status, row.filled_quantity) == ("filled", Decimal("0.01")) and creates(replay) == 0
    assert unexplained(differences) == []
    with engine.connect() as conn:
        held = conn.execute(text("select quantity from audit.positions where account = :a"), {"a": account}).scalar()
        resolution = conn.execute(text("select resolution from audit.submit_attempts where client_order_id = :c"),
                                  {"c": coid}).scalar()  # fmt: skip
    assert Decimal(held) == Decimal("0.01") and resolution == "booked"


def test_reconciliation_settles_a_journaled_attempt_the_venue_never_saw(engine: Engine) -> None:
    from execution.accounts.reconcile import reconcile_account, unexplained

    tag = uuid.uuid4().hex[:8]
    account, run_id, (intent,) = _live_account(engine, tag)
    coid = client_order_id_for(intent.decision_id, 0)
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"})
    broker, _ = binance(venue, account=account)
    _crash_deciding(engine, CrashAt(broker, "before_send"), intent, run_id)
    later = _later_run(engine, tag)
    with engine.begin() as conn:
        differences = reconcile_account(conn, broker, account, run_id=later, event_time=T0)
    assert unexplained(differences) == [] and _order(engine, coid) is None and venue.count(coid) == 0
    with engine.connect() as conn:
        resolution = conn.execute(text("select resolution from audit.submit_attempts where client_order_id = :c"),
                                  {"c": coid}).scalar()  # fmt: skip
    assert resolution == "absent"
    # the same decision recomputed later is sent, and the process dies again before committing: the attempt is open
    # again, so the next reconciliation books it
    _crash_deciding(engine, CrashAt(broker, "after_send"), intent, run_id)
    with engine.begin() as conn:
        reconcile_account(conn, broker, account, run_id=later, event_time=T0)
    assert _order(engine, coid).status == "filled" and venue.count(coid) == 1


# --- item 8: released slices pass the portfolio gate and a clean reconciliation -------------------------------------


def test_a_twap_slice_released_on_a_new_bar_passes_the_portfolio_gate(engine: Engine, prefect_harness, monkeypatch):  # type: ignore[no-untyped-def]
    """A buy's TWAP schedule is recorded and its first slice sent; then the account falls into a halting drawdown.
    The slices released by the protect flow on the next bars must meet the drawdown halt as a fresh buy would:
    refused, recorded, nothing sent."""
    from support import twap_world as twap

    from alphaloom.settings import get_settings
    from flows.protect import protect_positions

    account, run_id, intent = twap.world(engine)
    venue = twap.Venue(engine)
    twap.execute_intent(engine, intent, run_id, venue)
    assert twap.legs_sent(engine, account) == [1]
    with engine.begin() as conn:  # equity peaked at 10x what the account holds now: a halting drawdown
        conn.execute(text("insert into audit.equity_marks (account, as_of, equity) values (:a, :t, 1000000)"),
                     {"a": account, "t": twap.T0 - twap.HOUR})  # fmt: skip
    monkeypatch.setenv("ALPHALOOM_EXCHANGE", twap.SETTINGS.exchange)
    monkeypatch.setenv("ALPHALOOM_TIMEFRAME", "1h")
    get_settings.cache_clear()
    try:
        totals = protect_positions(as_of=twap.T0 + 2 * twap.HOUR, account=account)
    finally:
        get_settings.cache_clear()
    assert totals["slices_sent"] == 0 and twap.legs_sent(engine, account) == [1] and venue.submits == 1
    with engine.connect() as conn:
        statuses = conn.execute(text("select status, reason from audit.scheduled_slices where account = :a "
                                     "order by client_order_id"), {"a": account}).all()  # fmt: skip
        trips = conn.execute(text("select guard from audit.guard_trips where account = :a"), {"a": account}).scalars()
        trips = set(trips)
    assert "drawdown" in trips
    assert any(s.status == "refused" and "drawdown" in s.reason for s in statuses)


def test_a_twap_slice_released_by_a_backtest_step_passes_the_portfolio_gate(engine: Engine) -> None:
    """The backtest's step releases due slices as the protect flow does, so they meet the same gate: after the first
    slice, the account falls into a halting drawdown; the next replay step refuses the due slices, sends nothing."""
    from support import twap_world as twap

    from agents.sentiment import LexiconScorer
    from agents.team import StrategyParams, Team
    from flows.backtest import Replay, replay_step

    account, run_id, intent = twap.world(engine)
    venue = twap.Venue(engine)
    twap.execute_intent(engine, intent, run_id, venue)
    assert twap.legs_sent(engine, account) == [1]
    with engine.begin() as conn:  # equity peaked at 10x what the account holds now: a halting drawdown
        conn.execute(text("insert into audit.equity_marks (account, as_of, equity) values (:a, :t, 1000000)"),
                     {"a": account, "t": twap.T0 - twap.HOUR})  # fmt: skip
    replay = Replay(account, [], run_id, twap.SETTINGS, Team(LexiconScorer(), None), StrategyParams(), "close",
                    twap.T0 + 4 * twap.HOUR, {})  # fmt: skip
    replay_step.fn(replay, twap.T0 + 2 * twap.HOUR)
    assert twap.legs_sent(engine, account) == [1]
    with engine.connect() as conn:
        statuses = conn.execute(text("select status, reason from audit.scheduled_slices where account = :a "
                                     "order by client_order_id"), {"a": account}).all()  # fmt: skip
        trips = set(
            conn.execute(text("select guard from audit.guard_trips where account = :a"), {"a": account}).scalars()
        )
    assert "drawdown" in trips
    assert any(s.status == "refused" and "drawdown" in s.reason for s in statuses)


def test_no_slice_goes_to_a_venue_whose_account_failed_reconciliation(  # type: ignore[no-untyped-def]
    engine: Engine, prefect_harness, receiver, monkeypatch
) -> None:
    """A live account's TWAP buy sent its first slice; before the next one is due, the venue's balances no longer
    match our books. The protect flow's release on the next bar reconciles first and sends nothing to that venue;
    once the venue agrees with our books, the slice goes."""
    from cryptography.fernet import Fernet

    from alphaloom.ops.secrets import Credentials, store_credentials
    from alphaloom.settings import get_settings
    from execution.brokers.factory import use_exchange_maker
    from flows.protect import protect_positions

    tag = uuid.uuid4().hex[:8]
    monkeypatch.setenv("ALPHALOOM_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("ALPHALOOM_EXCHANGE", f"test-sweep-{tag}")
    monkeypatch.setenv("ALPHALOOM_TIMEFRAME", "1h")
    monkeypatch.setenv("ALPHALOOM_SYMBOLS", "BTC/USDT")
    get_settings.cache_clear()
    account, run_id, _ = _live_account(engine, tag)
    intent = OrderIntent(DecisionId(f"d-sweep-{tag}"), account, "BTC/USDT", Side.BUY, Decimal("0.02"), Decimal(87500))
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"})
    broker, _ = binance(venue, account=account)
    twap = Settings(
        timeframe="1h", split=SplitSettings(above_notional=Decimal(1000), slices=2, twap_duration_minutes=120)
    )
    with engine.begin() as conn:
        store_credentials(conn, get_settings(), Credentials("binance", account, "test-key", "test-secret"))
        _decide(conn, intent, run_id)
        first = execute(conn, [intent], run_id=run_id, broker=broker, settings=twap, event_time=T0)
    assert len(first.submitted) == 1 and len(first.scheduled) == 1 and len(venue.orders) == 1

    def stand_in(exchange_id: str, config: object) -> object:
        exchange = make_exchange(exchange_id, {**dict(config), "enableRateLimit": False,  # type: ignore[call-overload]
                                               "options": {"fetchMarkets": {"types": ["spot"]},
                                                           "fetchCurrencies": False, "fetchMargins": False}})  # fmt: skip
        mount(exchange, venue.routes())
        return exchange

    cost = Decimal("0.01") * Decimal("87512")
    try:
        venue.balances = {"USDT": "10000"}  # the venue no longer agrees with our books
        with use_exchange_maker(stand_in):  # type: ignore[arg-type]
            held = protect_positions(as_of=T0 + HOUR, account=account)
        assert len(venue.orders) == 1 and held["slices_sent"] == 0  # nothing went to that venue
        assert held["slices_held"] == 1
        venue.balances = {"USDT": str(Decimal(10000) - cost - cost / 1000), "BTC": "0.01"}
        with use_exchange_maker(stand_in):  # type: ignore[arg-type]
            sent = protect_positions(as_of=T0 + HOUR, account=account)
        assert sent["slices_sent"] == 1 and len(venue.orders) == 2
    finally:
        with engine.begin() as conn:
            conn.execute(text("delete from secrets.credentials where account = :a"), {"a": account})
        get_settings.cache_clear()
