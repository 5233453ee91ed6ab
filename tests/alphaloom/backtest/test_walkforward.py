"""Walk-forward on the vectorized path: parameters chosen in sample, results reported out of sample only."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from support.prices import prices

from alphaloom.backtest.vectorized import run, sma_cross_target
from alphaloom.backtest.walkforward import Costs, contiguous_blocks, parameter_grid, sweep_pieces, walk_forward
from alphaloom.reporting.performance import total_return

COSTS = Costs(initial_cash=10_000.0, order_notional=Decimal(1000), fee_bps=10, slippage_bps=5,
              quantity_steps={"A": Decimal("0.001"), "B": Decimal("0.001")})  # fmt: skip


def test_windows_tile_the_history_and_each_choice_is_the_in_sample_best() -> None:
    open_, close = prices()
    grid = parameter_grid([3, 5, 10], [10, 20, 40])
    assert (10, 10) not in grid and len(grid) == 8
    result = walk_forward(open_, close, grid=grid, in_sample=120, out_sample=60, costs=COSTS, periods_per_year=8760)

    windows = result.windows
    assert len(windows) == 3  # out-of-sample stretches start at bars 120, 180, 240
    assert windows["out_of_sample_start"].tolist() == [close.index[120], close.index[180], close.index[240]]
    assert windows["out_of_sample_end"].tolist() == [close.index[179], close.index[239], close.index[299]]
    assert (windows["in_sample_end"] < windows["out_of_sample_start"]).all()
    for window in windows.itertuples():
        fit = slice(close.index.get_loc(window.in_sample_start), close.index.get_loc(window.in_sample_end) + 1)
        scores = {p: total_return(run(open_.iloc[fit], close.iloc[fit], sma_cross_target(close, *p).iloc[fit],
                                      initial_cash=COSTS.initial_cash, order_notional=COSTS.order_notional,
                                      fee_bps=10, slippage_bps=5, quantity_steps=COSTS.quantity_steps).equity)
                  for p in grid}  # fmt: skip
        assert scores[(window.fast, window.slow)] == max(scores.values())
        assert window.in_sample_total_return == pytest.approx(max(scores.values()))

    # Out of sample only: the chained curve covers exactly the out-of-sample bars, after a starting point.
    assert result.out_of_sample_equity.index[1:].equals(close.index[120:])
    assert result.out_of_sample_equity.iloc[0] == COSTS.initial_cash
    chained = np.prod([1 + r for r in windows["out_of_sample_return"]])
    assert result.out_of_sample.total_return == pytest.approx(chained - 1)
    assert result.out_of_sample_trades["ts"].min() > close.index[120]
    assert len(result.out_of_sample_trades) == windows["out_of_sample_fills"].sum() > 0


def test_one_window_out_of_sample_is_a_fresh_run_with_the_chosen_parameters() -> None:
    open_, close = prices(200)
    result = walk_forward(open_, close, grid=[(3, 10), (5, 20)], in_sample=140, out_sample=60, costs=COSTS,
                          periods_per_year=8760)  # fmt: skip
    (window,) = result.windows.itertuples()
    oos = slice(140, 200)
    alone = run(open_.iloc[oos], close.iloc[oos], sma_cross_target(close, window.fast, window.slow).iloc[oos],
                initial_cash=COSTS.initial_cash, order_notional=COSTS.order_notional, fee_bps=10, slippage_bps=5,
                quantity_steps=COSTS.quantity_steps)  # fmt: skip
    assert result.out_of_sample_equity.iloc[1:].to_numpy() == pytest.approx(alone.equity.to_numpy())
    pd.testing.assert_frame_equal(result.out_of_sample_trades, alone.trades)


def test_bad_windows_and_objectives_are_named() -> None:
    open_, close = prices(100)
    with pytest.raises(ValueError, match="100 bars cannot hold one window of 80 \\+ 40 bars"):
        walk_forward(open_, close, grid=[(3, 10)], in_sample=80, out_sample=40, costs=COSTS, periods_per_year=8760)
    with pytest.raises(ValueError, match="objective must be one of"):
        walk_forward(open_, close, grid=[(3, 10)], in_sample=50, out_sample=20, costs=COSTS, periods_per_year=8760,
                     objective="luck")  # fmt: skip
    with pytest.raises(ValueError, match="no \\(fast, slow\\) pair"):
        parameter_grid([20], [10])


def test_trade_statistics_add_up_to_each_stretchs_equity_and_never_pair_across_stretches() -> None:
    from alphaloom.backtest.walkforward import window_trade_pnls

    open_, close = prices()
    grid = parameter_grid([3, 5], [10, 20])
    result = walk_forward(open_, close, grid=grid, in_sample=120, out_sample=60, costs=COSTS, periods_per_year=8760)
    total_pnls = 0.0
    for window in result.windows.itertuples():
        test = slice(close.index.get_loc(window.out_of_sample_start), close.index.get_loc(window.out_of_sample_end) + 1)
        stretch = run(open_.iloc[test], close.iloc[test], sma_cross_target(close, window.fast, window.slow).iloc[test],
                      initial_cash=COSTS.initial_cash, order_notional=COSTS.order_notional, fee_bps=10,
                      slippage_bps=5, quantity_steps=COSTS.quantity_steps)  # fmt: skip
        pnls = window_trade_pnls(stretch, close.iloc[test])
        # Every round trip (a still-open position counted at its last close) adds up to the stretch's equity change.
        assert sum(pnls) == pytest.approx(stretch.equity.iloc[-1] - COSTS.initial_cash, abs=1e-6)
        total_pnls += len(pnls)
    assert result.out_of_sample.trades == total_pnls


@pytest.mark.parametrize(("count", "blocks"), [(8, 2), (8, 3), (7, 2), (3, 5), (1, 1), (8, 1), (0, 2)])
def test_blocks_cover_every_window_exactly_once_in_order_and_near_equally(count: int, blocks: int) -> None:
    runs = contiguous_blocks(count, blocks)
    assert [n for run in runs for n in run] == list(range(count))  # every window once, in order
    assert len(runs) == min(count, blocks) and all(len(run) > 0 for run in runs)
    assert all(run.step == 1 for run in runs)  # consecutive windows: their bars overlap
    sizes = [len(run) for run in runs]
    assert sizes == sorted(sizes, reverse=True) and (not sizes or max(sizes) - min(sizes) <= 1)


def test_blocks_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="blocks must be >= 1"):
        contiguous_blocks(8, 0)


def test_pieces_cover_the_sweep_once_in_order_cut_at_window_starts_nearest_an_equal_share() -> None:
    starts = [0, 651, 1401, 2151, 2901, 3651, 4401, 5151]  # 8 windows of 4,000 + 750 bars after 99 warm-up bars
    pieces = sweep_pieces(starts, 10_000, 2)
    assert pieces == [range(0, 5151), range(5151, 10_000)]  # 5,151 + 4,849 bar rows: each read once
    three = sweep_pieces(starts, 10_000, 3)
    assert three == [range(0, 3651), range(3651, 5151), range(5151, 10_000)]  # cuts nearest 3,333 and 6,667
    for parts in (1, 2, 3, 8, 20):
        pieces = sweep_pieces(starts, 10_000, parts)
        assert [n for piece in pieces for n in piece] == list(range(10_000))  # every bar row once, in order
        assert len(pieces) == min(parts, len(starts)) and {p.start for p in pieces} <= set(starts)
    assert sweep_pieces([], 0, 2) == []
    assert sweep_pieces([0, 0, 0, 20], 100, 3) == [range(0, 20), range(20, 100)]  # warm-ups cut short: one start
    with pytest.raises(ValueError, match="parts must be >= 1"):
        sweep_pieces(starts, 10_000, 0)
