"""The step-path backtest replays the live decision code on history: deterministic, reported, point in time.

Named to run after the news and pipeline modules: generated stories share their ids across modules.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from alphaloom.sampledata import SampleData, generate
from alphaloom.settings import get_settings
from flows.backtest import backtest_flow
from flows.build_features import build_features
from flows.ingest_news import ingest_news
from flows.ingest_prices import ingest_prices

EXCHANGE = "btx"
STEPS = 96


@pytest.fixture(scope="module")
def data(engine, prefect_harness, tmp_path_factory) -> Iterator[SampleData]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHALOOM_EXCHANGE", EXCHANGE)
        mp.setenv("ALPHALOOM_HOME", str(tmp_path_factory.mktemp("bthome")))
        get_settings.cache_clear()
        sample = generate(Path(tmp_path_factory.mktemp("bt")), seed=11, days=45, exchange=EXCHANGE)
        for state in (
            ingest_prices([str(p) for p in sample.price_files], quality=False, return_state=True),
            ingest_news([str(p) for p in sample.news_files], quality=False, return_state=True),
            build_features(return_state=True),
        ):
            assert state.is_completed(), state
        yield sample
    get_settings.cache_clear()


def _decisions(engine, run_id: str) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            text("select symbol, as_of, action, score from audit.decisions where run_id = :r order by 1, 2"),
            {"r": run_id},
        ).all()


def test_a_backtest_replays_deterministically_and_reports(engine, data) -> None:
    first = backtest_flow(symbols=list(data.symbols), end=data.end, steps=STEPS)
    second = backtest_flow(symbols=list(data.symbols), end=data.end, steps=STEPS)
    assert first["account"] != second["account"]
    assert len(_decisions(engine, first["run_id"])) == STEPS * len(data.symbols)
    assert _decisions(engine, first["run_id"]) == _decisions(engine, second["run_id"])
    assert first["trades"] > 0, "the window must trade for the report to mean anything"
    for key in ("total_return", "sharpe", "max_drawdown", "trades", "win_rate", "profit_factor"):
        assert first[key] == second[key], key
    page = Path(first["report"]).read_text()
    assert "LLM analyst: not consulted" in page and "assumed first-seen" in page
    assert (Path(first["report"]).parent / "equity.png").exists()
    with engine.connect() as conn:
        sells = conn.execute(
            text("select count(*) from audit.fills f join audit.orders o using (client_order_id) "
                 "where o.run_id = :r and f.side = 'sell'"),
            {"r": first["run_id"]},
        ).scalar_one()  # fmt: skip
    assert first["trades"] == sells


def test_report_command_for_a_run_and_a_clear_error_for_an_unknown_one(engine, data) -> None:
    from alphaloom.cli import app

    run = backtest_flow(symbols=list(data.symbols)[:2], end=data.end, steps=24)
    result = CliRunner().invoke(app, ["report", run["run_id"]])
    assert result.exit_code == 0, result.output
    assert "report:" in result.output and run["account"] in result.output
    missing = CliRunner().invoke(app, ["report", "no-such-run"])
    assert missing.exit_code == 1 and "no-such-run" in missing.output


def test_no_look_ahead_perturbing_everything_after_t_changes_no_decision_up_to_t(engine, data) -> None:
    from datetime import timedelta

    from alphaloom.dbt_runner import build_features as dbt_build

    cutoff = data.end - timedelta(hours=48)
    before = backtest_flow(symbols=list(data.symbols), end=cutoff, steps=48)
    with engine.connect() as conn:  # news rows are shared by the session's modules: put them back afterwards
        saved = conn.execute(
            text("select id, title, summary from raw.news where first_seen_at > :t"), {"t": cutoff}
        ).all()
    try:
        with engine.begin() as conn:
            # Every bar that closes after the cutoff gets wild prices, and every story first seen after it turns dire.
            changed = conn.execute(
                text("""update raw.ohlcv set open = open * 1.5, high = high * 1.6, low = low * 1.4, close = close * 1.55,
                        volume = volume * 3 where exchange = :e and ts + interval '1 hour' > :t"""),
                {"e": EXCHANGE, "t": cutoff},
            ).rowcount  # fmt: skip
            late_news = conn.execute(
                text("""update raw.news set title = 'Fraud probe, bankruptcy fears: shares plunge after lawsuit',
                        summary = 'losses, default, downgrade' where first_seen_at > :t"""),
                {"t": cutoff},
            ).rowcount  # fmt: skip
        assert changed > 0 and late_news > 0
        dbt_build(full_refresh=True)
        after = backtest_flow(symbols=list(data.symbols), end=cutoff, steps=48)
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("update raw.news set title = :title, summary = :summary where id = :id"),
                [{"id": r.id, "title": r.title, "summary": r.summary} for r in saved],
            )
    assert _decisions(engine, before["run_id"]) == _decisions(engine, after["run_id"])
    assert before["total_return"] == after["total_return"]
