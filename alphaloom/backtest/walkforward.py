"""Walk-forward analysis of an SMA-crossover's parameters on the vectorized fast path. Pure: frames in, frames out.

Rolling windows over the bars: the parameters are chosen on ``in_sample`` bars (best in-sample objective over the
grid, the first in grid order on ties), then traded, unchanged, on the next ``out_sample`` bars; the windows step
forward by ``out_sample``, so the out-of-sample stretches tile the history after the first in-sample stretch without
overlap. Each stretch is a fresh account that starts flat (entries inside it only; the indicators read the whole
history before it, which is known then); a position still open at its end is valued at its last close, and its trade
statistics count it as closed there, so the trades' P&L adds up to the stretch's equity change. Out-of-sample results are kept apart: per window, and as one chained equity
curve whose metrics are the walk-forward's honest estimate; the in-sample scores are reported beside them only to show
the gap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import numpy as np
import pandas as pd

from alphaloom.backtest.equity_curve import closed_trades
from alphaloom.backtest.vectorized import VectorizedResult, run, sma_cross_target
from alphaloom.reporting.performance import Metrics, compute_metrics, sharpe, total_return

OBJECTIVES = ("total_return", "sharpe")


@dataclass(frozen=True)
class Costs:
    initial_cash: float
    order_notional: Decimal
    fee_bps: float
    slippage_bps: float
    quantity_steps: dict[str, Decimal] | None = None


@dataclass(frozen=True)
class WalkForwardResult:
    windows: pd.DataFrame  # one row per window: its ranges, the chosen fast/slow, in-sample and out-of-sample scores
    out_of_sample_equity: pd.Series  # the out-of-sample stretches chained into one curve from initial_cash
    out_of_sample: Metrics  # metrics of that curve and of the out-of-sample trades
    out_of_sample_trades: pd.DataFrame  # every out-of-sample fill: ts, symbol, side, quantity, price, fee


def parameter_grid(fasts: Sequence[int], slows: Sequence[int]) -> list[tuple[int, int]]:
    """Every (fast, slow) with fast < slow, in order."""
    grid = [(f, s) for f in fasts for s in slows if 1 <= f < s]
    if not grid:
        raise ValueError(f"no (fast, slow) pair with fast < slow in fast={list(fasts)} slow={list(slows)}")
    return grid


def _score(result: VectorizedResult, objective: str, periods_per_year: float) -> float:
    if objective == "sharpe":
        return sharpe(result.equity.pct_change().dropna(), periods_per_year)
    return total_return(result.equity)


def window_trade_pnls(result: VectorizedResult, close: pd.DataFrame) -> list[float]:
    """Net P&L of each round trip inside one out-of-sample stretch. A position still open at the stretch's end counts
    as closed at its last close without costs, exactly as the stretch's equity values it (the next stretch starts
    flat); trades are never paired across stretches."""
    fills = result.trades
    last = result.positions.iloc[-1] if len(result.positions) else pd.Series(dtype=float)
    marks = close.ffill().iloc[-1]
    open_lots = [{"ts": close.index[-1], "symbol": symbol, "side": "sell", "quantity": units,
                  "price": float(marks[symbol]), "fee": 0.0} for symbol, units in last.items() if units > 0]  # fmt: skip
    if open_lots:
        fills = pd.concat([fills, pd.DataFrame(open_lots)], ignore_index=True)
    return closed_trades(fills)["pnl"].tolist() if not fills.empty else []


@dataclass(frozen=True)
class WindowInput:
    """One window's work, self-contained (it can run in another process): its bars (in-sample then out-of-sample) and
    each grid pair's target positions over them (``window_input``: computed on the window's bars and the ``warmup``
    bars before it, which the longest SMA reads)."""

    open_: pd.DataFrame
    close: pd.DataFrame
    targets: dict[tuple[int, int], pd.DataFrame]
    in_sample: int
    costs: Costs
    periods_per_year: float
    objective: str

    @property
    def step(self) -> pd.Timedelta:
        """The bar spacing (of the window's first two bars)."""
        return self.close.index[1] - self.close.index[0]


@dataclass(frozen=True)
class WindowOutcome:
    """One window's result: its row of ``WalkForwardResult.windows`` and its out-of-sample stretch."""

    row: dict[str, object]
    returns: pd.Series
    trades: pd.DataFrame
    trade_pnls: list[float]
    held: np.ndarray


def warmup_bars(grid: Sequence[tuple[int, int]]) -> int:
    """Bars before a window that its targets read: the longest SMA's length less one (the SMA of a bar reads it and
    the ``slow - 1`` bars before it)."""
    return max(max(pair) for pair in grid) - 1


def window_slices(
    bars: int, *, grid: Sequence[tuple[int, int]], in_sample: int, out_sample: int, objective: str
) -> list[slice]:
    """The rows of each window over ``bars`` bars, in order. Raises ``ValueError`` for windows that do not fit the bars,
    an empty grid or an unknown objective."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if in_sample < 2 or out_sample < 2:
        raise ValueError(f"in_sample and out_sample must be at least 2 bars, got {in_sample} and {out_sample}")
    if bars < in_sample + out_sample:
        raise ValueError(f"{bars} bars cannot hold one window of {in_sample} + {out_sample} bars")
    if not grid:
        raise ValueError("the parameter grid is empty")
    return [slice(start, start + in_sample + out_sample) for start in range(0, bars - in_sample - out_sample + 1,
                                                                            out_sample)]  # fmt: skip


def contiguous_blocks(count: int, blocks: int) -> list[range]:
    """Positions ``0 .. count - 1`` cut into at most ``blocks`` runs of consecutive positions, in order, of near-equal
    length (the first ones one longer); never an empty run, none for ``count`` 0. A process given a run of consecutive
    walk-forward windows reads only the bars they span, once (their in-sample stretches overlap)."""
    if blocks < 1:
        raise ValueError(f"blocks must be >= 1, got {blocks}")
    parts = min(blocks, count)
    size, extra = divmod(count, parts) if parts else (0, 0)
    runs, start = [], 0
    for n in range(parts):
        stop = start + size + (1 if n < extra else 0)
        runs.append(range(start, stop))
        start = stop
    return runs


def sweep_pieces(starts: Sequence[int], stop: int, parts: int) -> list[range]:
    """The rows ``starts[0] .. stop - 1`` of a sweep whose windows start at rows ``starts`` (ascending) cut at window
    starts into ``parts`` runs of consecutive rows (as many as there are distinct starts at most), in order, each cut at the
    window start nearest to an equal share that leaves one for each later cut; each row in exactly one run. A sweep's
    bars read as these pieces, one per worker, are read once in all, however much the windows overlap."""
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}")
    if not starts:
        return []
    starts = sorted(set(starts))  # early windows may share the first row (their warm-up cut short)
    first, count = starts[0], min(parts, len(starts))
    cuts = [first]
    for n in range(1, count):
        target = first + (stop - first) * n / count
        later = [s for s in starts if s > cuts[-1]]
        open_ = later[: len(later) - (count - 1 - n)]  # leaving a start for each cut still to make
        cuts.append(min(open_, key=lambda s: (abs(s - target), s)))
    return [range(a, b) for a, b in zip(cuts, [*cuts[1:], stop], strict=True)]


def window_input(
    open_: pd.DataFrame,
    close: pd.DataFrame,
    *,
    warmup: int,
    grid: Sequence[tuple[int, int]],
    in_sample: int,
    costs: Costs,
    periods_per_year: float,
    objective: str,
) -> WindowInput:
    """One window from its bars preceded by ``warmup`` bars (fewer at the start of the history): the targets are
    computed on all of them, then the warm-up bars are cut. A window's result depends only on these bars, so a
    process that loads them alone (``alphaloom.backtest.walkforward_run.load_window``) computes exactly what this
    process computes from the whole history."""
    rows = slice(warmup, len(close))
    targets = {params: sma_cross_target(close, *params).iloc[rows] for params in grid}
    return WindowInput(open_.iloc[rows], close.iloc[rows], targets, in_sample, costs, periods_per_year, objective)


def window_inputs(
    open_: pd.DataFrame,
    close: pd.DataFrame,
    *,
    grid: Sequence[tuple[int, int]],
    in_sample: int,
    out_sample: int,
    costs: Costs,
    periods_per_year: float,
    objective: str = "total_return",
) -> list[WindowInput]:
    """The windows of a walk-forward, in order (``window_slices``, ``window_input``). Raises ``ValueError`` for windows
    that do not fit the bars, an empty grid or an unknown objective."""
    slices = window_slices(len(close), grid=grid, in_sample=in_sample, out_sample=out_sample, objective=objective)
    warmup = warmup_bars(grid)
    windows = []
    for rows in slices:
        first = max(0, rows.start - warmup)
        windows.append(window_input(open_.iloc[first:rows.stop], close.iloc[first:rows.stop], warmup=rows.start - first,
                                    grid=grid, in_sample=in_sample, costs=costs, periods_per_year=periods_per_year,
                                    objective=objective))  # fmt: skip
    return windows


def run_window(window: WindowInput) -> WindowOutcome:
    """Choose the grid pair on the window's in-sample bars, trade it on its out-of-sample bars."""
    costs, objective, periods_per_year = window.costs, window.objective, window.periods_per_year

    def simulate(params: tuple[int, int], rows: slice) -> VectorizedResult:
        return run(window.open_.iloc[rows], window.close.iloc[rows], window.targets[params].iloc[rows],
                   initial_cash=costs.initial_cash, order_notional=costs.order_notional, fee_bps=costs.fee_bps,
                   slippage_bps=costs.slippage_bps, quantity_steps=costs.quantity_steps)  # fmt: skip

    close, grid = window.close, list(window.targets)
    fit, test = slice(0, window.in_sample), slice(window.in_sample, len(close))
    scores = {params: _score(simulate(params, fit), objective, periods_per_year) for params in grid}
    best = max(grid, key=lambda params: scores[params])  # max keeps the first of equal scores
    result = simulate(best, test)
    row = {
        "in_sample_start": close.index[fit.start], "in_sample_end": close.index[fit.stop - 1],
        "out_of_sample_start": close.index[test.start], "out_of_sample_end": close.index[test.stop - 1],
        "fast": best[0], "slow": best[1], f"in_sample_{objective}": scores[best],
        f"out_of_sample_{objective}": _score(result, objective, periods_per_year),
        "out_of_sample_return": total_return(pd.concat([pd.Series([costs.initial_cash]), result.equity])),
        "out_of_sample_fills": len(result.trades),
    }  # fmt: skip
    return WindowOutcome(row=row, returns=result.equity / result.equity.shift(1).fillna(costs.initial_cash) - 1.0,
                         trades=result.trades, trade_pnls=window_trade_pnls(result, close.iloc[test]),
                         held=(result.positions.abs().sum(axis=1) > 0).to_numpy())  # fmt: skip


class WindowTerms(Protocol):
    """What ``combine_windows`` reads of a window: a ``WindowInput`` or its specification
    (``alphaloom.backtest.walkforward_run.WindowSpec``) has it."""

    @property
    def costs(self) -> Costs: ...

    @property
    def periods_per_year(self) -> float: ...

    @property
    def step(self) -> pd.Timedelta: ...


def combine_windows(windows: Sequence[WindowTerms], outcomes: Sequence[WindowOutcome]) -> WalkForwardResult:
    """The walk-forward's result from its windows' outcomes, in window order: the out-of-sample stretches chained
    (``chain_stretches``). Of the windows only the first's ``costs``, ``periods_per_year`` and ``step`` are read (a
    window's specification, ``alphaloom.backtest.walkforward_run.WindowSpec``, has them too)."""
    first = windows[0]
    cash = first.costs.initial_cash
    stretches = [Stretch(cash * (1.0 + o.returns).cumprod(), o.trades, o.trade_pnls, float(o.held.sum()))
                 for o in outcomes]  # fmt: skip
    return chain_stretches([o.row for o in outcomes], stretches, initial_cash=cash,
                           periods_per_year=first.periods_per_year, bar=first.step)  # fmt: skip


def walk_forward(
    open_: pd.DataFrame,
    close: pd.DataFrame,
    *,
    grid: Sequence[tuple[int, int]],
    in_sample: int,
    out_sample: int,
    costs: Costs,
    periods_per_year: float,
    objective: str = "total_return",
    map_windows: Callable[[Callable[[WindowInput], WindowOutcome], list[WindowInput]], list[WindowOutcome]]
    | None = None,
) -> WalkForwardResult:
    """See the module docstring. Raises ``ValueError`` for windows that do not fit the bars or an unknown objective.
    ``map_windows(run_window, windows)`` runs the independent windows (default: one after the other, here; a flow
    passes its task runner's map) and returns their outcomes in order."""
    windows = window_inputs(open_, close, grid=grid, in_sample=in_sample, out_sample=out_sample, costs=costs,
                            periods_per_year=periods_per_year, objective=objective)  # fmt: skip
    outcomes = map_windows(run_window, windows) if map_windows else [run_window(w) for w in windows]
    return combine_windows(windows, outcomes)


@dataclass(frozen=True)
class Stretch:
    """What one out-of-sample stretch did on its own fresh account: its equity at each bar (from the initial cash
    before the first), its fills (ts, symbol, side, quantity, price, fee), the net P&L of its trades and how many of
    its bars held a position."""

    equity: pd.Series
    fills: pd.DataFrame
    trade_pnls: list[float]
    held_bars: float


def chain_stretches(
    rows: Sequence[dict[str, object]],
    stretches: Sequence[Stretch],
    *,
    initial_cash: float,
    periods_per_year: float,
    bar: pd.Timedelta,
) -> WalkForwardResult:
    """The walk-forward's result from its windows (``rows``, one per window) and their out-of-sample stretches: each
    stretch's bar returns (the first against the initial cash) chained into one curve from ``initial_cash``, one bar
    before the first stretch, and the metrics of that curve and of every stretch's trades."""
    returns = [s.equity / s.equity.shift(1).fillna(initial_cash) - 1.0 for s in stretches]
    chained = initial_cash * (1.0 + pd.concat(returns)).cumprod()
    equity = pd.concat([pd.Series([initial_cash], index=[chained.index[0] - bar]), chained])
    frames = [s.fills for s in stretches if not s.fills.empty]
    fills = pd.concat(frames).reset_index(drop=True) if frames else pd.DataFrame(
        columns=["ts", "symbol", "side", "quantity", "price", "fee"])  # fmt: skip
    notional = float((fills["quantity"].astype(float) * fills["price"].astype(float)).sum()) if not fills.empty else 0.0
    exposure = sum(s.held_bars for s in stretches) / max(sum(len(s.equity) for s in stretches), 1)
    metrics = compute_metrics(equity, periods_per_year=periods_per_year,
                              trade_pnls=[p for s in stretches for p in s.trade_pnls], exposure_fraction=exposure,
                              traded_notional=notional)  # fmt: skip
    return WalkForwardResult(pd.DataFrame(list(rows)), equity, metrics, fills)
