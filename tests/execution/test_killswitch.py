"""Kill switch turned on: open orders are cancelled at every broker (paper and ccxt's binance class on recorded
responses), each cancel an ``audit.order_events`` row; nothing is sent afterwards; the setting turns it off."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Engine, text
from support.binance_broker import binance_broker, creates
from support.ccxt_replay import BinanceSpotVenue
from typer.testing import CliRunner

from alphaloom.cli import app
from alphaloom.domain import ClientOrderId, DecisionId, OrderIntent, Side, client_order_id_for
from alphaloom.errors import VenueTemporaryError
from alphaloom.ops.kill_switch import set_kill_switch
from alphaloom.settings import RiskSettings, Settings, get_settings
from execution.accounts.registry import ensure_account
from execution.brokers.base import BrokerReport, OrderRequest
from execution.brokers.factory import paper_broker
from execution.killswitch import cancel_open_orders
from execution.submit import execute

T0 = datetime(2026, 1, 1, 1, tzinfo=UTC)
runner = CliRunner()


class LostOnTheWay:
    """The paper broker behind a link that drops the request before the venue sees it (outcome unknown)."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.name, self.live = inner, inner.name, False

    def submit(self, request: OrderRequest) -> BrokerReport:
        raise VenueTemporaryError("connection reset before the paper venue answered")

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        return self.inner.lookup(client_order_id)


def _account(engine: Engine, venue: str, mode: str, n: int, symbol: str = "BTC/USDT") -> tuple[str, list[OrderIntent]]:
    tag = uuid.uuid4().hex[:8]
    account, run_id = f"ks-{tag}", f"run-ks-{tag}"
    intents = []
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, venue, "USDT", mode, Decimal(1_000_000), run_id)
        conn.execute(text("update audit.accounts set live_enabled = :l where id = :a"),
                     {"a": account, "l": mode != "paper"})  # fmt: skip
        for i in range(n):
            decision_id = DecisionId(f"d-ks-{tag}-{i}")
            conn.execute(
                text(
                    """insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                    score, config_version, inputs)
                       values (:d, :r, :a, :s, '1h', :t, 'buy', 1.0, 'test', '{}'::jsonb)"""
                ),
                {"d": decision_id, "r": run_id, "a": account, "s": symbol, "t": T0},
            )
            intents.append(OrderIntent(decision_id, account, symbol, Side.BUY, Decimal("0.01"), Decimal("87500")))
    return run_id, intents


def _status(engine: Engine, coid: str) -> str:
    with engine.connect() as conn:
        return conn.execute(text("select status from audit.orders where client_order_id = :c"), {"c": coid}).scalar()


def _cancel_events(engine: Engine, coid: str) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            text("select from_status, to_status, details->>'reason' from audit.order_events "
                 "where client_order_id = :c and to_status = 'cancelled'"), {"c": coid})]  # fmt: skip


def test_turning_the_kill_switch_on_cancels_open_orders_at_every_broker(engine: Engine) -> None:
    settings = Settings(risk=RiskSettings(max_orders_per_run=1000))
    # binance: one of ours rests open at the venue, one foreign order (placed by hand) too
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"})
    live, replay = binance_broker(venue)
    run_id, (resting, filled) = _account(engine, "binance", "live", 2)
    resting_id, filled_id = (client_order_id_for(i.decision_id, 0) for i in (resting, filled))
    venue.resting.update({resting_id, "by-hand-1"})
    live.submit(OrderRequest(ClientOrderId("by-hand-1"), "x", "BTC/USDT", Side.BUY, Decimal("0.01"),
                             Decimal("87000"), T0))  # fmt: skip
    with engine.begin() as conn:
        execute(conn, [resting, filled], run_id=run_id, broker=live, settings=settings, event_time=T0)
    # paper: an order whose submit was lost on the way (recorded as submitted, outcome unknown)
    paper = paper_broker(engine, settings)
    paper_run, (lost,) = _account(engine, "paper", "paper", 1)
    lost_id = client_order_id_for(lost.decision_id, 0)
    with engine.begin() as conn:
        result = execute(conn, [lost], run_id=paper_run, broker=LostOnTheWay(paper), settings=settings, event_time=T0)
    assert result.unknown == [lost_id]
    assert (_status(engine, resting_id), _status(engine, filled_id), _status(engine, lost_id)) == (
        "submitted", "filled", "submitted")  # fmt: skip

    with engine.begin() as conn:
        set_kill_switch(conn, True, "drill", "test")
        summary = cancel_open_orders(conn, [paper, live], run_id=run_id, event_time=T0, reason="drill")
    assert set(summary.cancelled) >= {resting_id, lost_id} and summary.foreign == ["by-hand-1"]
    assert filled_id not in summary.cancelled and summary.errors == {}
    assert [o["status"] for o in venue.orders if o["clientOrderId"] in (resting_id, "by-hand-1")] == ["CANCELED"] * 2
    assert _cancel_events(engine, resting_id) == [("submitted", "cancelled", "kill switch: drill")]
    assert _cancel_events(engine, lost_id) == [("submitted", "cancelled", "kill switch: drill")]
    assert _status(engine, filled_id) == "filled" and _status(engine, resting_id) == "cancelled"

    # and nothing leaves afterwards: a new intent is blocked before any broker call
    more_run, (later,) = _account(engine, "binance", "live", 1)
    before = len(creates(replay))
    try:
        with engine.begin() as conn:
            blocked = execute(conn, [later], run_id=more_run, broker=live, settings=settings, event_time=T0)
    finally:
        with engine.begin() as conn:
            set_kill_switch(conn, False, "drill over", "test")
    assert blocked.kill_switch_blocked == 1 and len(creates(replay)) == before


def _lost_paper_order(engine: Engine) -> str:
    settings = Settings(risk=RiskSettings(max_orders_per_run=1000))
    run_id, (lost,) = _account(engine, "paper", "paper", 1)
    with engine.begin() as conn:
        execute(conn, [lost], run_id=run_id, broker=LostOnTheWay(paper_broker(engine, settings)), settings=settings,
                event_time=T0)  # fmt: skip
    return client_order_id_for(lost.decision_id, 0)


def test_cli_kill_switch_on_cancels_unless_the_setting_is_off(engine: Engine, monkeypatch) -> None:
    kept = _lost_paper_order(engine)
    monkeypatch.setenv("ALPHALOOM_KILL_SWITCH_CANCELS_OPEN_ORDERS", "false")
    get_settings.cache_clear()
    try:
        off = runner.invoke(app, ["kill-switch", "on", "--reason", "no-cancel drill"])
        assert off.exit_code == 0 and "cancelled" not in off.output
        assert _status(engine, kept) == "submitted"
        monkeypatch.delenv("ALPHALOOM_KILL_SWITCH_CANCELS_OPEN_ORDERS")
        get_settings.cache_clear()
        on = runner.invoke(app, ["kill-switch", "on", "--reason", "cancel drill"])
    finally:
        runner.invoke(app, ["kill-switch", "off"])
        get_settings.cache_clear()
    assert on.exit_code == 0, on.output
    assert "open orders cancelled:" in on.output and _status(engine, kept) == "cancelled"
    assert _cancel_events(engine, kept) == [("submitted", "cancelled", "kill switch: cancel drill")]


def test_a_venue_whose_credentials_no_longer_decrypt_does_not_stop_the_others_from_cancelling(
    engine: Engine, monkeypatch
) -> None:
    from cryptography.fernet import Fernet

    from alphaloom.ops.secrets import Credentials, delete_credentials, store_credentials

    kept = _lost_paper_order(engine)
    _, (intent,) = _account(engine, "binance", "live", 1)
    broken = intent.account
    monkeypatch.setenv("ALPHALOOM_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    with engine.begin() as conn:
        store_credentials(conn, get_settings(), Credentials("binance", broken, "planted-key", "planted-secret"))
    monkeypatch.setenv("ALPHALOOM_SECRET_KEY", Fernet.generate_key().decode())  # the key was rotated since
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["kill-switch", "on", "--reason", "rotated key drill"])
    finally:
        runner.invoke(app, ["kill-switch", "off"])
        with engine.begin() as conn:
            delete_credentials(conn, "binance", broken)
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "kill switch ON" in result.output
    assert _status(engine, kept) == "cancelled", "the paper venue's open order is still cancelled"
    assert f"could not cancel at {broken}@binance" in result.output and "cannot be decrypted" in result.output
    assert "planted" not in result.output
