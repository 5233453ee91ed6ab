from __future__ import annotations

import pandas as pd
import pytest

from alphaloom.backtest.equity_curve import closed_trades, equity_curve

T = pd.date_range("2025-01-01", periods=4, freq="h", tz="UTC")


def test_equity_and_closed_trade_pnl_by_hand() -> None:
    fills = pd.DataFrame({"ts": [T[1], T[3]], "symbol": ["X", "X"], "side": ["buy", "sell"], "quantity": [2.0, 2.0],
                          "price": [100.0, 110.0], "fee": [0.2, 0.22]})  # fmt: skip
    closes = pd.DataFrame({"X": [99.0, 101.0, 105.0, 111.0]}, index=T)
    equity = equity_curve(fills, closes, 1000.0)
    assert equity.tolist() == pytest.approx([1000.0, 1000 - 200.2 + 202, 1000 - 200.2 + 210, 1000 - 200.2 + 220 - 0.22])
    trades = closed_trades(fills)
    assert trades["pnl"].tolist() == pytest.approx([220 - 0.22 - 200.2])
    assert (trades.loc[0, "entry"], trades.loc[0, "exit"]) == (T[1], T[3])


def test_no_fills_is_flat_cash() -> None:
    empty = pd.DataFrame(columns=["ts", "symbol", "side", "quantity", "price", "fee"])
    assert equity_curve(empty, pd.DataFrame({"X": [1.0, 2.0]}, index=T[:2]), 50.0).tolist() == [50.0, 50.0]
    assert closed_trades(empty).empty
