"""`alphaloom decide`, `decisions` and `explain DECISION_ID` tell the operator what happened and why (issue 15):
a row per symbol and step with the action, score, votes and the order or the reason none was; dry runs marked."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from alphaloom.cli import app
from alphaloom.ingest.sampledata import SampleData, generate
from alphaloom.settings import get_settings
from flows.build_features import build_features
from flows.ingest_news import ingest_news
from flows.ingest_prices import ingest_prices

EXCHANGE = "clix"
runner = CliRunner()


@pytest.fixture(scope="module")
def data(engine, prefect_harness, tmp_path_factory) -> Iterator[SampleData]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHALOOM_EXCHANGE", EXCHANGE)
        mp.setenv("ALPHALOOM_ACCOUNT", f"cli-{uuid.uuid4().hex[:6]}")
        get_settings.cache_clear()
        sample = generate(Path(tmp_path_factory.mktemp("clid")), seed=11, days=45, exchange=EXCHANGE)
        for state in (
            ingest_prices([str(p) for p in sample.price_files], quality=False, return_state=True),
            ingest_news([str(p) for p in sample.news_files], quality=False, return_state=True),
            build_features(return_state=True),
        ):
            assert state.is_completed(), state
        yield sample
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch) -> None:
    """One table row per line, so a row can be read whole (a terminal would wrap it)."""
    from alphaloom.cli._app import console

    monkeypatch.setattr(console, "width", 400)


def _run_id(output: str) -> str:
    match = re.search(r"decide run ([0-9a-f-]{36})", output)
    assert match, output
    return match.group(1)


def test_dry_run_prints_a_row_per_symbol_and_step_and_records_nothing(engine, data) -> None:
    result = runner.invoke(app, ["decide", "--symbols", "BTC/USDT,ETH/USDT", "--as-of", data.end.isoformat(),
                                 "--steps", "3", "--dry-run"])  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.output
    assert "(DRY RUN)" in out and "DRY RUN (nothing recorded, nothing sent): 3 step(s), 6 decision(s)" in out
    rows = [line for line in out.splitlines() if "BTC/USDT" in line or "ETH/USDT" in line]
    assert len(rows) == 6, out
    for row in rows:
        assert re.search(r"\b(buy|sell|hold)\b", row) and re.search(r"[+-]\d\.\d{3}", row), row
        assert "technical" in row and "news" in row and "llm skipped" in row, row
        assert (
            ("hold: score" in row and "below the consensus threshold" in row)
            or "would send" in row
            or ("already long" in row or "no position to sell" in row or "denied" in row)
        ), row
    run_id = _run_id(out)
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from audit.decisions where run_id = :r"), {"r": run_id}).scalar() == 0
    runs = runner.invoke(app, ["runs", "--limit", "30"])
    assert any(run_id in line and "decide (dry run)" in line for line in runs.output.splitlines()), runs.output


def test_kill_switch_denial_is_shown_in_decide_decisions_and_explain(engine, data) -> None:
    assert runner.invoke(app, ["kill-switch", "on", "--reason", "cli drill"]).exit_code == 0
    try:
        result = runner.invoke(app, ["decide", "--as-of", data.end.isoformat(), "--steps", "96"])
    finally:
        runner.invoke(app, ["kill-switch", "off"])
    assert result.exit_code == 0, result.output
    assert "risk check kill_switch denied" in result.output, result.output
    run_id = _run_id(result.output)

    listed = runner.invoke(app, ["decisions", "--run", run_id, "--limit", "500"])
    assert listed.exit_code == 0 and "risk check kill_switch denied" in listed.output, listed.output
    with engine.connect() as conn:
        decision_id = conn.execute(
            text("select decision_id from audit.risk_checks where run_id = :r and check_name = 'kill_switch' "
                 "and not approved limit 1"),
            {"r": run_id},
        ).scalar_one()  # fmt: skip
    explained = runner.invoke(app, ["explain", decision_id])
    assert explained.exit_code == 0, explained.output
    assert decision_id in explained.output and "agent opinions" in explained.output
    assert "denied kill_switch" in explained.output and "no order" in explained.output

    one = runner.invoke(
        app, ["decisions", "--symbol", "SOL/USDT", "--since", (data.end - timedelta(hours=2)).isoformat()]
    )
    assert one.exit_code == 0 and "SOL/USDT" in one.output and "BTC/USDT" not in one.output, one.output


def test_deciding_long_after_the_data_warns_that_it_is_stale(engine, data) -> None:
    later = data.end + timedelta(days=36)
    result = runner.invoke(app, ["decide", "--symbols", "BTC/USDT", "--as-of", later.isoformat(), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "warning: BTC/USDT: the newest feature row was 36.0 days old" in result.output, result.output
    assert "data is stale" in result.output


def test_report_of_a_decide_run_long_after_the_data_lists_positions_and_fills(engine, data, monkeypatch) -> None:
    """Issue 15: `report` of a decide run at a time without recent data crashed with ZeroDivisionError; a run whose
    positions are still open listed no trade at all."""
    monkeypatch.setenv("ALPHALOOM_ACCOUNT", f"cli-rep-{uuid.uuid4().hex[:6]}")  # a fresh account: new decisions
    get_settings.cache_clear()
    bought = runner.invoke(app, ["decide", "--as-of", data.end.isoformat(), "--steps", "96"])
    assert bought.exit_code == 0, bought.output
    with engine.connect() as conn:
        filled = conn.execute(text("select count(*) from audit.fills f join audit.orders o using (client_order_id) "
                                   "where o.run_id = :r"), {"r": _run_id(bought.output)}).scalar_one()  # fmt: skip
    late = runner.invoke(app, ["decide", "--as-of", (data.end + timedelta(days=36)).isoformat()])
    assert late.exit_code == 0, late.output
    for run_id in (_run_id(late.output), _run_id(bought.output)):
        result = runner.invoke(app, ["report", run_id])
        assert result.exit_code == 0, result.output
        page = Path(re.search(r"report: (\S+)", result.output).group(1)).read_text()
        assert "Open positions (" in page and "Closed trades (" in page
    assert f"Fills ({filled})" in page and filled > 0
    assert "Open positions (0)" not in page or "Closed trades (0)" not in page
    get_settings.cache_clear()
