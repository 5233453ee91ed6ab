"""Protective exits between decisions: the bar-check path on the durable paper venue (a stop touched by a new bar
submits the exit once, point in time), and the pure trigger rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, text

from alphaloom.settings import RiskSettings, Settings
from execution.accounts.registry import ensure_account
from execution.brokers.factory import paper_broker
from execution.safety.protective import Trigger, arm_exit, check_exits, exit_trigger, levels

D = Decimal
T0 = datetime(2026, 3, 2, 0, tzinfo=UTC)


def test_exit_trigger_rules() -> None:
    bar = {"open_": D(100), "high": D(104), "low": D(96)}
    assert exit_trigger(**bar, stop=D(95), take_profit=D(110)) is None
    assert exit_trigger(**bar, stop=D(97), take_profit=D(110)) == Trigger("stop_loss", D(97), D(97))
    assert exit_trigger(open_=D(90), high=D(92), low=D(89), stop=D(95), take_profit=None) == Trigger(
        "stop_loss", D(95), D(90))  # gapped through the stop: the open is the reference  # fmt: skip
    assert exit_trigger(**bar, stop=None, take_profit=D(103)) == Trigger("take_profit", D(103), D(103))
    assert exit_trigger(**bar, stop=D(97), take_profit=D(103)).kind == "stop_loss"  # both: the cautious reading
    assert levels(D(200), D(5), D(10)) == (D("190.00"), D("220.00"))


def _bars(engine: Engine, exchange: str, symbol: str, run_id: str, rows: list[tuple[int, str, str, str, str]]) -> None:
    with engine.begin() as conn:
        for hour, o, h, low, c in rows:
            conn.execute(
                text("insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id) "
                     "values (:e, :s, '1h', :t, :o, :h, :l, :c, 1000000, :r)"),
                {"r": run_id, "e": exchange, "s": symbol, "t": T0 + timedelta(hours=hour), "o": o, "h": h, "l": low, "c": c},
            )  # fmt: skip


def test_a_stop_touched_by_a_new_bar_sells_the_position_once(engine: Engine) -> None:
    tag = uuid.uuid4().hex[:8]
    account, run_id, symbol, exchange = f"prot-{tag}", f"run-prot-{tag}", f"P{tag.upper()}/USDT", f"ex-{tag}"
    settings = Settings(exchange=exchange, timeframe="1h", risk=RiskSettings(max_orders_per_run=1000))
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "USDT", "paper", D(10_000), run_id)
        conn.execute(
            text("insert into audit.positions (account, symbol, quantity, avg_price, realized_pnl, run_id) "
                 "values (:a, :s, 3, 100, 0, :r)"), {"a": account, "s": symbol, "r": run_id})  # fmt: skip
    # bar 0 stays above the stop; bar 1 (known at 02:00) trades down through 95 and closes at 95.5
    _bars(engine, exchange, symbol, run_id, [(0, "100", "101", "97", "98"), (1, "98", "98.5", "94", "95.5")])
    broker = paper_broker(engine, settings)
    stop, take_profit = levels(D(100), D(5), D(10))
    with engine.begin() as conn:
        mode = arm_exit(conn, account=account, symbol=symbol, quantity=D(3), entry_price=D(100), stop_price=stop,
                        take_profit_price=take_profit, broker=broker)  # fmt: skip
        assert mode == "bar_check"
        quiet = check_exits(conn, broker=broker, settings=settings, run_id=run_id, as_of=T0 + timedelta(hours=1))
        early = check_exits(conn, broker=broker, settings=settings, run_id=run_id,
                            as_of=T0 + timedelta(hours=1, minutes=59))  # bar 1 not closed yet: not visible  # fmt: skip
    assert quiet.broker_submits == early.broker_submits == 0
    with engine.begin() as conn:
        fired = check_exits(conn, broker=broker, settings=settings, run_id=run_id, as_of=T0 + timedelta(hours=2))
        again = check_exits(conn, broker=broker, settings=settings, run_id=run_id, as_of=T0 + timedelta(hours=2))
    assert fired.broker_submits == 1 and again.broker_submits == 0
    (outcome,) = fired.submitted
    assert outcome.status.value == "filled" and outcome.fills[0].quantity == D(3)
    with engine.connect() as conn:
        ex = conn.execute(text("select status, triggered_by, exit_client_order_id from audit.protective_exits "
                               "where account = :a"), {"a": account}).one()  # fmt: skip
        order = conn.execute(text("select side, quantity, reference_price, decision_id from audit.orders "
                                  "where client_order_id = :c"), {"c": ex.exit_client_order_id}).one()  # fmt: skip
        decision = conn.execute(text("select action, config_version, inputs from audit.decisions "
                                     "where decision_id = :d"), {"d": order.decision_id}).one()  # fmt: skip
        held = conn.execute(text("select quantity from audit.positions where account = :a"), {"a": account}).scalar()
        venue_rows = conn.execute(text("select count(*) from paper_venue.orders where client_order_id = :c"),
                                  {"c": ex.exit_client_order_id}).scalar()  # fmt: skip
    assert ex.status == "triggered" and ex.triggered_by.startswith("stop_loss 95.00 by the bar at")
    assert (order.side, order.quantity, order.reference_price) == ("sell", D(3), D("95.00"))
    assert decision.action == "sell" and decision.config_version == "protective_exit"
    assert decision.inputs["trigger"] == "stop_loss" and held == 0 and venue_rows == 1
    # re-armed and checked again on the same bar: the same decision id, so the exit is not sent twice
    with engine.begin() as conn:
        arm_exit(conn, account=account, symbol=symbol, quantity=D(3), entry_price=D(100), stop_price=stop,
                 take_profit_price=None, broker=broker)  # fmt: skip
        rerun = check_exits(conn, broker=broker, settings=settings, run_id=run_id, as_of=T0 + timedelta(hours=2))
        status = conn.execute(text("select status, triggered_by from audit.protective_exits where account = :a"),
                              {"a": account}).one()  # fmt: skip
    assert rerun.broker_submits == 0 and status == ("cancelled", "position closed")


# --- venue-native stops on ccxt's binance class (recorded responses) ---------------------------------------------------


def _live_position(engine: Engine, tag: str) -> tuple[str, str, Settings]:
    account, run_id, exchange = f"native-{tag}", f"run-native-{tag}", f"exn-{tag}"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "binance", "USDT", "live", D(100_000), run_id)
        conn.execute(text("update audit.accounts set live_enabled = true where id = :a"), {"a": account})
        conn.execute(
            text("insert into audit.positions (account, symbol, quantity, avg_price, realized_pnl, run_id) "
                 "values (:a, 'BTC/USDT', 0.01, 100000, 0, :r)"), {"a": account, "r": run_id})  # fmt: skip
    return account, run_id, Settings(exchange=exchange, timeframe="1h", risk=RiskSettings(max_orders_per_run=1000))


def _held(engine: Engine, account: str) -> Decimal:
    with engine.connect() as conn:
        return conn.execute(text("select quantity from audit.positions where account = :a"), {"a": account}).scalar()


def test_a_venue_native_stop_is_placed_followed_and_booked_when_it_fills(engine: Engine) -> None:
    from support.binance_broker import binance_broker, creates
    from support.ccxt_replay import BinanceSpotVenue

    tag = uuid.uuid4().hex[:8]
    account, run_id, settings = _live_position(engine, tag)
    venue = BinanceSpotVenue({"BTCUSDT": "100000.00"})
    broker, replay = binance_broker(venue)
    _bars(engine, settings.exchange, "BTC/USDT", run_id, [(0, "100000", "101000", "99000", "100500")])
    with engine.begin() as conn:
        mode = arm_exit(conn, account=account, symbol="BTC/USDT", quantity=D("0.01"), entry_price=D(100000),
                        stop_price=D(95000), take_profit_price=D(110000), broker=broker, run_id=run_id,
                        event_time=T0)  # fmt: skip
        coid = conn.execute(text("select exit_client_order_id from audit.protective_exits where account = :a"),
                            {"a": account}).scalar()  # fmt: skip
        quiet = check_exits(conn, broker=broker, settings=settings, run_id=run_id, as_of=T0 + timedelta(hours=1))
    assert mode == "venue_native" and quiet.broker_submits == 0
    (placed,) = creates(replay)
    assert (placed["type"], placed["side"], placed["stopPrice"], placed["price"]) == (
        "STOP_LOSS_LIMIT", "SELL", "95000", "94050")  # fmt: skip
    assert placed["newClientOrderId"] == coid and _held(engine, account) == D("0.01")

    venue.trigger(coid, "94800.00")  # between decisions the market falls through the stop; the venue sells
    with engine.begin() as conn:
        check_exits(conn, broker=broker, settings=settings, run_id=run_id, as_of=T0 + timedelta(hours=2))
        ex = conn.execute(text("select status, triggered_by from audit.protective_exits where account = :a"),
                          {"a": account}).one()  # fmt: skip
        order = conn.execute(text("select order_type, status, limit_price from audit.orders where client_order_id = :c"),
                             {"c": coid}).one()  # fmt: skip
    assert ex.status == "triggered" and "filled at the venue" in ex.triggered_by
    assert tuple(order) == ("stop_loss_limit", "filled", D("94050.00")) and _held(engine, account) == 0
    assert len(creates(replay)) == 1  # nothing else was sent


def test_a_take_profit_on_a_bar_cancels_the_venue_stop_before_selling(engine: Engine) -> None:
    from support.binance_broker import binance_broker, creates
    from support.ccxt_replay import BinanceSpotVenue

    tag = uuid.uuid4().hex[:8]
    account, run_id, settings = _live_position(engine, tag)
    venue = BinanceSpotVenue({"BTCUSDT": "110500.00"})
    broker, replay = binance_broker(venue)
    _bars(engine, settings.exchange, "BTC/USDT", run_id, [(0, "108000", "111000", "107500", "110600")])
    with engine.begin() as conn:
        arm_exit(conn, account=account, symbol="BTC/USDT", quantity=D("0.01"), entry_price=D(100000),
                 stop_price=D(95000), take_profit_price=D(110000), broker=broker, run_id=run_id, event_time=T0)  # fmt: skip
        stop_id = conn.execute(text("select exit_client_order_id from audit.protective_exits where account = :a"),
                               {"a": account}).scalar()  # fmt: skip
        fired = check_exits(conn, broker=broker, settings=settings, run_id=run_id, as_of=T0 + timedelta(hours=1))
        statuses = dict(conn.execute(text("select client_order_id, status from audit.orders where account = :a"),
                                     {"a": account}).all())  # fmt: skip
    assert [o["status"] for o in venue.orders] == ["CANCELED", "FILLED"]
    assert [m for m, p, _ in replay.requests if p == "/api/v3/order"].count("DELETE") == 1
    assert statuses[stop_id] == "cancelled" and fired.broker_submits == 1 and len(creates(replay)) == 2
    assert _held(engine, account) == 0


def test_the_protect_flow_guards_every_account_on_a_new_bar(prefect_harness, engine: Engine, monkeypatch) -> None:
    from alphaloom.settings import get_settings
    from flows.protect import protect_positions

    tag = uuid.uuid4().hex[:8]
    account, run_id, symbol, exchange = f"flowp-{tag}", f"run-flowp-{tag}", f"F{tag.upper()}/USDT", f"exf-{tag}"
    monkeypatch.setenv("ALPHALOOM_EXCHANGE", exchange)
    monkeypatch.setenv("ALPHALOOM_TIMEFRAME", "1h")
    get_settings.cache_clear()
    try:
        with engine.begin() as conn:
            conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
            ensure_account(conn, account, "paper", "USDT", "paper", D(10_000), run_id)
            conn.execute(
                text("insert into audit.positions (account, symbol, quantity, avg_price, realized_pnl, run_id) "
                     "values (:a, :s, 2, 100, 0, :r)"), {"a": account, "s": symbol, "r": run_id})  # fmt: skip
        _bars(engine, exchange, symbol, run_id, [(0, "100", "111", "99", "110.5")])  # take-profit 110 touched
        with engine.begin() as conn:
            arm_exit(conn, account=account, symbol=symbol, quantity=D(2), entry_price=D(100), stop_price=D(95),
                     take_profit_price=D(110), broker=paper_broker(engine, get_settings()))  # fmt: skip
        totals = protect_positions(as_of=T0 + timedelta(hours=1), account=account)
    finally:
        get_settings.cache_clear()
    assert totals == {"accounts": 1, "exits_sent": 1, "unprotected": 0, "slices_sent": 0, "slices_held": 0}
    with engine.connect() as conn:
        status = conn.execute(text("select status, triggered_by from audit.protective_exits where account = :a"),
                              {"a": account}).one()  # fmt: skip
    assert status.status == "triggered" and status.triggered_by.startswith("take_profit 110")
