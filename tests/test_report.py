from __future__ import annotations

import pandas as pd

from alphaloom.performance import compute_metrics
from alphaloom.report import ReportData, write_report

IDX = pd.date_range("2025-01-01", periods=50, freq="h", tz="UTC")


def test_report_is_self_contained_with_charts_trades_and_notes(tmp_path) -> None:
    equity = pd.Series(range(100, 150), index=IDX, dtype=float)
    trades = pd.DataFrame({"ts": IDX[:2], "symbol": ["BTC/USDT", "BTC/USDT"], "side": ["buy", "sell"],
                           "quantity": [1.0, 1.0], "price": [100.0, 120.0], "pnl": [0.0, 20.0]})  # fmt: skip
    data = ReportData(
        title="Backtest <demo>", subtitle="test", equity=equity, benchmark=equity * 0.9,
        metrics=compute_metrics(equity, periods_per_year=8760).as_dict(), trades=trades,
        per_asset_pnl=pd.Series({"BTC/USDT": 20.0, "ETH/USDT": -5.0}),
        notes=["LLM opinions from the response cache only"],
    )  # fmt: skip
    path = write_report(data, tmp_path / "r")
    page = path.read_text()
    assert "Backtest &lt;demo&gt;" in page  # escaped
    assert page.count("<svg") >= 3 and "polyline" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    assert "LLM opinions from the response cache only" in page and "ETH/USDT" in page
    assert (tmp_path / "r" / "equity.png").stat().st_size > 1000
    assert (tmp_path / "r" / "pnl_by_asset.png").exists()
