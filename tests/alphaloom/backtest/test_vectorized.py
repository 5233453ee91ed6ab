from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from alphaloom.backtest.vectorized import entry_quantity, run, sma_cross_target

IDX = pd.date_range("2025-01-01", periods=6, freq="h", tz="UTC")


def test_fills_at_next_open_with_slippage_and_fees_by_hand() -> None:
    close = pd.DataFrame({"X": [10.0, 10.0, 12.0, 12.0, 11.0, 11.0]}, index=IDX)
    open_ = pd.DataFrame({"X": [10.0, 10.0, 11.0, 12.5, 11.5, 11.0]}, index=IDX)
    target = pd.DataFrame({"X": [0, 1, 1, 0, 0, 0]}, index=IDX)  # buy decided at bar 1, sell at bar 3
    result = run(open_, close, target, initial_cash=1000.0, order_notional=Decimal(100), fee_bps=10, slippage_bps=100,
                 quantity_steps={"X": Decimal(1)})  # fmt: skip
    buy_price, sell_price = 11.0 * 1.01, 11.5 * 0.99
    assert result.trades[["ts", "side", "quantity"]].values.tolist() == [[IDX[2], "buy", 10.0], [IDX[4], "sell", 10.0]]
    assert result.trades["price"].tolist() == pytest.approx([buy_price, sell_price])
    fees = 10 * buy_price * 0.001 + 10 * sell_price * 0.001
    assert result.equity.iloc[-1] == pytest.approx(1000 - 10 * buy_price + 10 * sell_price - fees)
    assert result.equity.iloc[2] == pytest.approx(1000 - 10 * buy_price - 10 * buy_price * 0.001 + 10 * 12.0)
    assert result.positions["X"].tolist() == [0, 0, 10, 10, 0, 0]


def test_entry_quantity_rounds_down_to_the_step() -> None:
    assert entry_quantity(Decimal(5000), 63449.75, Decimal("0.000001")) == Decimal("0.078802")
    assert entry_quantity(Decimal(5000), 190.0, Decimal(1)) == Decimal(26)


def test_sma_cross_target_is_zero_during_warm_up() -> None:
    close = pd.DataFrame({"X": np.arange(1.0, 11.0)})
    target = sma_cross_target(close, 2, 4)
    assert target["X"].tolist()[:3] == [0, 0, 0] and target["X"].tolist()[3:] == [1] * 7
