"""Alerts reach a local HTTP receiver (and never raise into the caller): direct, flow failure, kill switch."""

from __future__ import annotations

import pytest
from prefect import flow
from typer.testing import CliRunner

from alphaloom.ops.alerts import alert
from alphaloom.ops.drawdown_alerts import transition_alert_kind
from alphaloom.settings import get_settings
from flows._alerts import alert_on_failure


def test_an_alert_is_posted_as_json_with_its_reason_and_logged(receiver, caplog) -> None:
    assert alert("drawdown_halt", "drawdown 12% beyond the 10% limit", {"drawdown_pct": 12}) is True
    (payload,) = receiver.received
    assert payload["kind"] == "drawdown_halt" and payload["source"] == "alphaloom"
    assert payload["reason"] == "drawdown 12% beyond the 10% limit" and payload["details"] == {"drawdown_pct": 12}
    assert "ALERT drawdown_halt" in caplog.text
    assert receiver.url not in caplog.text  # the URL may carry a token


def test_a_failing_or_missing_receiver_never_raises_into_the_caller(receiver, monkeypatch) -> None:
    receiver.status = 500
    assert alert("fat_finger", "price 30% off the last trade") is False
    assert len(receiver.received) == 1
    monkeypatch.setenv("ALPHALOOM_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/nothing-listens-here")
    monkeypatch.setenv("ALPHALOOM_ALERT_TIMEOUT_SECONDS", "1")
    get_settings.cache_clear()
    assert alert("fat_finger", "price 30% off the last trade") is False


@flow(name="ops_alert_probe", on_failure=[alert_on_failure])
def _failing_flow(reason: str) -> None:
    raise RuntimeError(reason)


def test_a_failed_flow_run_alerts_with_the_flow_and_the_reason(receiver, prefect_harness) -> None:
    state = _failing_flow("exchange unreachable", return_state=True)
    assert state.is_failed()
    assert receiver.arrived.wait(10)
    (payload,) = [p for p in receiver.received if p["kind"] == "flow_failure"]
    assert payload["details"]["flow"] == "ops_alert_probe"
    assert payload["details"]["flow_run_id"] == str(state.state_details.flow_run_id)
    assert "exchange unreachable" in payload["reason"]


def test_engaging_the_kill_switch_from_the_cli_alerts(receiver, engine) -> None:
    from alphaloom.cli import app

    runner = CliRunner()
    try:
        assert runner.invoke(app, ["kill-switch", "on", "--reason", "ops drill"]).exit_code == 0
    finally:
        runner.invoke(app, ["kill-switch", "off"])
    kinds = [(p["kind"], p["reason"]) for p in receiver.received]
    assert kinds == [("kill_switch", "kill switch engaged: ops drill")]


def test_a_fat_finger_trip_and_an_account_halt_alert_with_their_reasons(receiver, engine) -> None:
    from decimal import Decimal

    from sqlalchemy import text

    from execution.accounts.registry import ensure_account
    from execution.safety.fatfinger import record_trip, set_halt

    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values ('alert-trip', 'test') on conflict do nothing"))
        ensure_account(conn, "alert-acct", "paper", "USDT", "paper", Decimal(1000), "alert-trip")
        record_trip(conn, run_id="alert-trip", account="alert-acct", guard="max_order_notional",
                    reason="notional 50000 exceeds 10000", numbers={"notional": "50000"}, symbol="BTC/USDT")  # fmt: skip
        set_halt(conn, "alert-acct", True, "daily loss 3.2% past the 3% limit", {"loss_pct": "3.2"})
    kinds = {item["kind"]: item for item in receiver.received}
    assert "max_order_notional" in kinds["fat_finger"]["reason"] and "BTC/USDT" in kinds["fat_finger"]["reason"]
    assert kinds["account_halt"]["details"]["loss_pct"] == "3.2"


@pytest.mark.parametrize(
    ("previous", "level", "kind"),
    [
        (None, "halt", "drawdown_halt"),
        ("normal", "halt", "drawdown_halt"),
        ("reduce", "halt", "drawdown_halt"),
        ("halt", "halt", None),
        (None, "reduce", "drawdown_reduce"),
        ("normal", "reduce", "drawdown_reduce"),
        ("reduce", "reduce", None),
        ("halt", "reduce", None),
        ("halt", "normal", None),
        (None, "normal", None),
    ],
)
def test_drawdown_alerts_fire_once_per_move_for_the_worse(previous, level, kind) -> None:
    assert transition_alert_kind(previous, level) == kind
