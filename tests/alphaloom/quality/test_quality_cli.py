"""`alphaloom quality` prints the latest checkpoint summaries and the Data Docs path; ingest settings parse."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from alphaloom.cli import app
from alphaloom.ingest.prices import COLUMNS, PriceBatch
from alphaloom.quality.quality_gate import QualityGate
from alphaloom.records.runs import start_run
from alphaloom.settings import Settings, get_settings

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ALPHALOOM_HOME", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_quality_command_shows_latest_results_and_docs_path(engine, home: Path) -> None:
    # A throwaway home holding one real GX result, so the offline page has something to list.
    rows = [("x", "BTC/USDT", "1h", "2026-01-01T00:00:00Z", "1", "1", "1", "1", "-1")]  # negative volume
    QualityGate(home).check_prices(
        PriceBatch("cli-offline.csv", pa.table({c: [r[i] for r in rows] for i, c in enumerate(COLUMNS)}))
    )
    run_id = start_run(engine, "test_quality_cli", {})
    batch = f"cli-batch-{uuid.uuid4().hex[:8]}"
    failed = '[{"expectation": "expect_column_values_to_be_between", "label": "volume >= 0", "row_level": true, "unexpected_count": 2}]'
    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into raw.quality_results (run_id, suite, batch, success, evaluated, unexpected, failed)"
                " values (:r, 'alphaloom_prices', :b, false, 10, 2, cast(:f as jsonb))"
            ),
            {"r": run_id, "b": batch, "f": failed},
        )
    result = runner.invoke(app, ["quality", "--limit", "5"])
    assert result.exit_code == 0, result.output
    assert batch in result.output and "volume >= 0 (2)" in result.output and "NO" in result.output
    assert "Data Docs:" in result.output and "gx/uncommitted/data_docs/local_site/index.html" in result.output
    assert "needs internet" in result.output
    offline = home / "gx" / "index.html"
    assert f"Data Docs (offline, no scripts): {offline}" in result.output
    page = offline.read_text().replace("<wbr>", "")  # line-break chances only
    assert "cli-offline.csv" in page and "volume &gt;= 0" in page and "<script" not in page


def test_ingest_settings_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("ALPHALOOM_CCXT_SOURCES", "binance:BTC/USDT:1h, kraken:BTC/USD:1h")
    monkeypatch.setenv("ALPHALOOM_FEEDS", "https://a.example/feed.rss,https://b.example/atom")
    monkeypatch.setenv("ALPHALOOM_SYMBOL_ALIASES", '{"BTC/USDT": ["bitcoin", "btc"]}')
    settings = Settings()
    assert settings.ingest.ccxt_sources == ["binance:BTC/USDT:1h", "kraken:BTC/USD:1h"]
    assert settings.ingest.feeds == ["https://a.example/feed.rss", "https://b.example/atom"]
    assert settings.ingest.alias_map == {"bitcoin": "BTC/USDT", "btc": "BTC/USDT"}
    assert settings.ingest.redis_url is None or settings.ingest.redis_url.startswith("redis")
