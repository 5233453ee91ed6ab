"""A backtest is not truncated by the live per-run safety caps: ``max_orders_per_run`` counts one decision step of a
replay, and every refusal of a replay is counted by reason in its results and report (one summary, not one alert
per refusal)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from alphaloom.settings import get_settings
from flows.backtest import backtest_flow
from flows.build_features import build_features
from flows.ingest_prices import ingest_prices

EXCHANGE = "capx"
SYMBOL = "CAPX/USDT"
BARS = 460
START = datetime(2021, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def daily(engine: Engine, prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[datetime]:
    """460 generated daily bars oscillating with a 14-day period: SMA(10) crosses SMA(20) about every week."""
    folder = Path(tmp_path_factory.mktemp("capbars"))
    lines = ["ts,open,high,low,close,volume,exchange,symbol,timeframe"]
    prev = None
    for t in range(BARS):
        close = 100 * (1 + 0.08 * math.sin(2 * math.pi * t / 14)) + 0.002 * t
        open_ = close if prev is None else prev
        ts = START + timedelta(days=t)
        lines.append(f"{ts.isoformat()},{open_:.4f},{max(open_, close) * 1.001:.4f},{min(open_, close) * 0.999:.4f},"
                     f"{close:.4f},1000000,{EXCHANGE},{SYMBOL},1d")  # fmt: skip
        prev = close
    (folder / "capx.csv").write_text("\n".join(lines) + "\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHALOOM_EXCHANGE", EXCHANGE)
        mp.setenv("ALPHALOOM_TIMEFRAME", "1d")
        mp.setenv("ALPHALOOM_HOME", str(tmp_path_factory.mktemp("caphome")))
        mp.delenv("ALPHALOOM_MAX_ORDERS_PER_RUN", raising=False)
        get_settings.cache_clear()
        for state in (ingest_prices([str(folder / "capx.csv")], quality=False, return_state=True),
                      build_features(return_state=True)):  # fmt: skip
            assert state.is_completed(), state
        yield START + timedelta(days=BARS)
        get_settings.cache_clear()


def _orders(engine: Engine, run_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text("select count(*) from audit.orders where run_id = :r"), {"r": run_id}).scalar_one()


def test_a_long_replay_keeps_trading_past_the_per_run_order_cap(engine: Engine, daily: datetime) -> None:
    assert get_settings().risk.max_orders_per_run == 50
    result = backtest_flow(symbols=[SYMBOL], end=daily, steps=BARS - 20, strategy="sma_cross", sma_fast=10,
                           sma_slow=20, fill_at="close")  # fmt: skip
    orders = _orders(engine, result["run_id"])
    assert orders > 50, f"the rule must make more orders than the per-run cap for this to mean anything ({orders})"
    assert result["refusals"] == {}
    assert "refusals: none" in Path(str(result["report"])).read_text()


def test_every_refusal_of_a_replay_is_counted_by_reason_and_alerted_once(
    engine: Engine, daily: datetime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ALPHALOOM_MAX_ORDERS_PER_RUN", "0")  # every order of every step is refused
    get_settings.cache_clear()
    with caplog.at_level(logging.WARNING):
        result = backtest_flow(symbols=[SYMBOL], end=daily, steps=80, strategy="sma_cross", sma_fast=10,
                               sma_slow=20, fill_at="close")  # fmt: skip
    get_settings.cache_clear()
    with engine.connect() as conn:
        trips = conn.execute(
            text("select count(*) from audit.guard_trips where run_id = :r and guard = 'max_orders_per_run'"),
            {"r": result["run_id"]},
        ).scalar_one()
    assert trips > 0 and _orders(engine, result["run_id"]) == 0
    assert result["refusals"] == {"max_orders_per_run": trips}
    page = Path(str(result["report"])).read_text()
    assert f"refusals: max_orders_per_run {trips}" in page
    per_refusal = [r for r in caplog.records if "max_orders_per_run tripped" in r.getMessage()]
    summaries = [r for r in caplog.records if "refused" in r.getMessage() and result["run_id"] in r.getMessage()]
    assert per_refusal == [] and len(summaries) == 1
