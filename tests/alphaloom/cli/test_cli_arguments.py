"""Operator mistakes are answered before anything starts: one line naming the input and the problem, exit code 2,
no Prefect run, no audit.runs row, no alert (issue 15). Also: every command works on a new ALPHALOOM_HOME (issue 12
item 16)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from alphaloom.cli import app
from alphaloom.settings import PROJECT_ROOT, get_settings

runner = CliRunner()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture()
def stored(engine: Engine, monkeypatch) -> str:
    """Two stored 1h series (BTC/USDT, ETH/USDT: 48 bars from 2026-01-01) on an exchange of this test's own."""
    exchange = f"cli-{uuid.uuid4().hex[:8]}"
    run_id = f"run-{exchange}"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        for symbol in ("BTC/USDT", "ETH/USDT"):
            for hour in range(48):
                conn.execute(
                    text("insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, "
                         "run_id) values (:e, :s, '1h', :t, 100, 101, 99, 100, 10, :r)"),
                    {"e": exchange, "s": symbol, "t": T0 + timedelta(hours=hour), "r": run_id},
                )  # fmt: skip
    monkeypatch.setenv("ALPHALOOM_EXCHANGE", exchange)
    get_settings.cache_clear()
    yield exchange
    get_settings.cache_clear()


def _runs(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("select count(*) from audit.runs")).scalar_one()


def _refused(engine: Engine, args: list[str], *expected: str) -> str:
    before = _runs(engine)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), lines
    for word in expected:
        assert word in lines[0], lines[0]
    assert _runs(engine) == before  # a mistake is not a run
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["decide", "--steps", "0"], ["--steps", "at least 1", "0"]),
        (["backtest", "--steps", "0"], ["--steps", "at least 1"]),
        (["backtest", "--strategy", "foo"], ["--strategy", "team", "sma_cross", "'foo'"]),
        (["backtest", "--audit", "some"], ["--audit", "full", "decisions", "none", "'some'"]),
        (["backtest", "--shards", "0"], ["--shards", "at least 1", "0"]),
        (["backtest", "--shards", "2", "--llm-live"], ["--shards", "cache-only LLM", "--llm-live"]),
        (["decide", "--symbols", "FOO/BAR"], ["FOO/BAR", "stored: BTC/USDT, ETH/USDT"]),
        (["decide", "--symbols", "btc/usdt"], ["btc/usdt", "did you mean BTC/USDT?"]),
        (["backtest", "--symbols", "BTC/USDT,FOO/BAR"], ["FOO/BAR", "stored: BTC/USDT, ETH/USDT"]),
        (["decide", "--symbols", "BTC/USDT", "--as-of", "2025-06-01T00:00:00"],
         ["--as-of 2025-06-01 00:00 UTC is before any data", "2026-01-01 01:00 UTC", "2026-01-03 00:00 UTC"]),
        (["backtest", "--symbols", "BTC/USDT", "--end", "2025-06-01T00:00:00"], ["--end", "before any data"]),
    ],
)  # fmt: skip
def test_bad_decision_arguments_are_refused_before_anything_starts(engine, stored, receiver, args, expected) -> None:
    _refused(engine, args, *expected)
    assert receiver.received == []  # an operator's typo is not an alert


def test_fx_rate_with_a_bad_time_is_refused(engine) -> None:
    _refused(engine, ["fx-rate", "USDT", "EUR", "0.9", "--as-of", "notadate"], "--as-of", "'notadate'")
    _refused(engine, ["fx-rate", "USDT", "EUR", "abc"], "RATE", "'abc'")


def test_keys_add_of_an_unknown_exchange_is_refused_before_prompting(engine) -> None:
    _refused(engine, ["keys", "add", "binanse"], "'binanse'", "not a ccxt exchange", "binance")


def test_restore_of_a_missing_file_is_refused(engine, tmp_path) -> None:
    _refused(engine, ["db", "restore", str(tmp_path / "missing.dump"), "--yes"], "missing.dump", "no such file")


def test_drift_for_an_unknown_account_is_refused(engine) -> None:
    _refused(engine, ["drift", "--account", "nosuch"], "--account", "'nosuch'")


def test_serve_on_a_port_that_cannot_be_is_refused_before_anything_starts(engine) -> None:
    _refused(engine, ["serve", "--port", "70000"], "--port", "1-65535", "70000")


def test_report_of_an_unknown_run_says_no_such_run(engine) -> None:
    _refused(engine, ["report", "no-such-run-id"], "no such run", "'no-such-run-id'")


def test_a_walk_forward_run_points_to_its_page(engine) -> None:
    run_id = f"wf-{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow, status) values (:r, 'walk_forward', 'completed')"),
                     {"r": run_id})  # fmt: skip
        conn.execute(
            text("insert into audit.walk_forward_runs (run_id, exchange, timeframe, symbols, objective, "
                 "in_sample_bars, out_sample_bars, grid, metrics, page) values (:r, 'demo', '1h', '{BTC/USDT}', "
                 "'sharpe', 10, 5, '{}', '{}', '/tmp/wf/page.html')"),
            {"r": run_id},
        )  # fmt: skip
    _refused(engine, ["report", run_id], "walk-forward run", "/tmp/wf/page.html")


def _cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ALPHALOOM_"))}
    env.update(PYTHONPATH=str(PROJECT_ROOT), ALPHALOOM_DATABASE_URL=os.environ["ALPHALOOM_DATABASE_URL"], **extra)
    return env


def test_a_bad_setting_names_the_variable(engine, tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alphaloom.cli", "runs"], capture_output=True, text=True, timeout=120,
        env=_cli_env(ALPHALOOM_HOME=str(tmp_path), ALPHALOOM_ORDER_NOTIONAL="lots"),
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "ALPHALOOM_ORDER_NOTIONAL='lots'" in lines[0], lines


def test_the_first_flow_command_on_a_new_home_works(engine, tmp_path) -> None:
    """Issue 12 item 16: ALPHALOOM_HOME pointing at a folder that does not exist yet."""
    home = tmp_path / "new" / "home"
    bars = tmp_path / "bars.csv"
    bars.write_text("ts,open,high,low,close,volume,exchange,symbol,timeframe\n"
                    "2024-01-01T00:00:00,1,2,0.5,1.5,10,newhome,NEW/USDT,1h\n")  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "alphaloom.cli", "ingest", "prices", str(bars), "--no-quality"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        # Prefect's temporary API (the embedded server has its own test): its start needs patience on a busy machine.
        env=_cli_env(ALPHALOOM_HOME=str(home), ALPHALOOM_EMBEDDED_PREFECT="false",
                     PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180"),
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "ingest_prices" in result.stdout
    assert (home / "prefect").is_dir()
