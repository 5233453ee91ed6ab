"""Tests never write into the user's state (issue 15: `make test` left GX results in the checkout's .alphaloom/gx):
the whole session runs on a temporary ALPHALOOM_HOME, Prefect's home and GX's store included."""

from __future__ import annotations

import os
from pathlib import Path

from alphaloom.settings import PROJECT_ROOT, get_settings


def test_the_session_home_is_temporary_and_outside_the_checkout() -> None:
    home = get_settings().home.resolve()
    assert not home.is_relative_to(PROJECT_ROOT), home
    assert not Path(os.environ["PREFECT_HOME"]).resolve().is_relative_to(PROJECT_ROOT)
    assert get_settings().pgdata_dir.resolve().is_relative_to(home)


def test_a_quality_checked_ingest_keeps_its_gx_results_in_the_session_home(engine, prefect_harness, tmp_path) -> None:
    from flows.ingest_prices import ingest_prices

    checkout_gx = PROJECT_ROOT / ".alphaloom" / "gx"
    before = sorted(checkout_gx.rglob("*")) if checkout_gx.exists() else []
    bars = tmp_path / "bars.csv"
    bars.write_text("ts,open,high,low,close,volume,exchange,symbol,timeframe\n"
                    "2024-01-01T00:00:00,1,2,0.5,1.5,10,iso,ISO/USDT,1h\n")  # fmt: skip
    (result,) = ingest_prices([str(bars)])
    assert result["quality"] is not None, result
    assert (get_settings().home / "gx").is_dir()
    after = sorted(checkout_gx.rglob("*")) if checkout_gx.exists() else []
    assert after == before
