"""The CLI as an operator uses it, in-process through Typer's runner, against the session database."""

from __future__ import annotations

from typer.testing import CliRunner

from alphaloom.cli import app

runner = CliRunner()


def test_kill_switch_round_trip_is_stored(engine) -> None:
    assert "ON" in runner.invoke(app, ["kill-switch", "on", "--reason", "drill"]).output
    status = runner.invoke(app, ["kill-switch", "status"])
    assert status.exit_code == 0 and "ON (drill" in status.output
    assert "off" in runner.invoke(app, ["kill-switch", "off"]).output
    bad = runner.invoke(app, ["kill-switch", "maybe"])
    assert bad.exit_code != 0


def test_db_url_hides_the_password_and_runs_lists_runs(engine, database_url) -> None:
    result = runner.invoke(app, ["db", "url"])
    assert result.exit_code == 0 and database_url.database in result.output
    runs = runner.invoke(app, ["runs", "--limit", "3"])
    assert runs.exit_code == 0 and "audit.runs" in runs.output


def test_pnl_for_an_unknown_account_says_so(engine) -> None:
    result = runner.invoke(app, ["pnl", "--account", "nobody"])
    assert result.exit_code == 1 and "does not exist" in result.output
