"""`alphaloom quality` prints the latest checkpoint summaries and the Data Docs path; ingest settings parse."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from typer.testing import CliRunner

from alphaloom.audit import start_run
from alphaloom.cli import app
from alphaloom.settings import Settings

runner = CliRunner()


def test_quality_command_shows_latest_results_and_docs_path(engine) -> None:
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


def test_ingest_settings_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("ALPHALOOM_CCXT_SOURCES", "binance:BTC/USDT:1h, kraken:BTC/USD:1h")
    monkeypatch.setenv("ALPHALOOM_FEEDS", "https://a.example/feed.rss,https://b.example/atom")
    monkeypatch.setenv("ALPHALOOM_SYMBOL_ALIASES", '{"BTC/USDT": ["bitcoin", "btc"]}')
    settings = Settings()
    assert settings.ccxt_sources == ["binance:BTC/USDT:1h", "kraken:BTC/USD:1h"]
    assert settings.feeds == ["https://a.example/feed.rss", "https://b.example/atom"]
    assert settings.alias_map == {"bitcoin": "BTC/USDT", "btc": "BTC/USDT"}
    assert settings.redis_url is None or settings.redis_url.startswith("redis")
