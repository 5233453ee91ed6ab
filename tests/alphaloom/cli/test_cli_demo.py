"""`alphaloom demo` says one line per stage with its summary, keeps dbt's per-node log in a file whose path it
prints, and shows results as tables (issue 15: ~180 of its 258 lines were dbt's log with raw colour codes)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alphaloom.cli import app
from alphaloom.settings import get_settings


@pytest.mark.dbt  # `alphaloom demo` builds the features with dbt
def test_demo_prints_a_line_per_stage_and_keeps_dbts_log_in_a_file(engine, prefect_harness, tmp_path, monkeypatch,
                                                                    capfd) -> None:  # fmt: skip
    monkeypatch.setenv("ALPHALOOM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ALPHALOOM_EXCHANGE", f"demo-{uuid.uuid4().hex[:6]}")
    monkeypatch.setenv("ALPHALOOM_ACCOUNT", f"demo-{uuid.uuid4().hex[:6]}")
    monkeypatch.setenv("ALPHALOOM_DATA_DAYS", "20")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["demo", "--steps", "2"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    out = result.output + capfd.readouterr().out  # dbt writes to the process's stdout directly
    for stage in ("data", "ingest_prices", "ingest_news", "build_features", "decide"):
        assert len(re.findall(rf"^done {stage}\b", out, re.M)) == 1, out
    assert re.search(r"^done ingest_prices +6 files, [\d,]+ bars: [\d,]+ inserted", out, re.M), out
    assert re.search(r"^done build_features +\d+ models built, \d+ tests passed; dbt log: (\S+)", out, re.M), out
    log = Path(re.search(r"dbt log: (\S+)", out).group(1))
    assert log.is_file() and "PASS" in log.read_text() and "\x1b[" not in log.read_text()
    assert "\x1b[" not in out and " START " not in out and "PASS=" not in out  # no dbt per-node lines
    assert re.search(r"^done decide +2 steps, 12 decisions", out, re.M), out
    assert "positions of" in out and "audit.runs" in out  # results as tables
    assert "{'" not in out  # no Python dicts
