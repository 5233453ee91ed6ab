from __future__ import annotations

import pandas as pd

from alphaloom.reporting.performance import compute_metrics
from alphaloom.reporting.report import ReportData, write_report

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


def test_explain_page_shows_money_to_the_cent() -> None:
    """Issue 15: the explain page printed notionals and equity with every float digit."""
    from alphaloom.reporting.explain_html import display_numbers, money

    assert money("5000.123456789") == "5,000.12" and money(0.005) == "0.01"
    shown = display_numbers({"order_notional": 5000.123456789, "equity": "100000.5", "max_order_notional": 10000,
                             "quantity": "0.0812345678", "price_band_pct": 5.123456, "approved": True})  # fmt: skip
    assert shown == {"order_notional": "5,000.12", "equity": "100,000.50", "max_order_notional": "10,000.00",
                     "quantity": "0.0812345678", "price_band_pct": 5.123456, "approved": True}  # fmt: skip


def test_open_positions_are_marked_and_listed() -> None:
    from decimal import Decimal

    from alphaloom.backtest.equity_curve import open_positions

    fills = pd.DataFrame({"ts": IDX[:3], "symbol": ["SOL/USDT", "SOL/USDT", "BTC/USDT"], "side": ["buy", "sell", "buy"],
                          "quantity": [Decimal(2), Decimal(2), Decimal("0.1")], "price": [Decimal(100), Decimal(110),
                          Decimal(50000)], "fee": [Decimal(0), Decimal(0), Decimal(5)]})  # fmt: skip
    held = open_positions(fills, pd.Series({"BTC/USDT": 51000.0}))
    assert held["symbol"].tolist() == ["BTC/USDT"]
    row = held.iloc[0]
    assert row["quantity"] == 0.1 and row["avg_cost"] == 50050.0 and abs(row["unrealised_pnl"] - 95.0) < 1e-9
