"""Performance metrics of an equity curve and its trades. Pure: arrays and frames in, numbers out.

Conventions a caller can rely on:
- ``equity`` is a series of account values indexed by time, one point per bar; returns are simple bar returns.
- Annualisation uses ``periods_per_year`` (8,760 for 24/7 hourly bars, 252 for daily stock bars, ...).
- Sharpe and Sortino use a zero risk-free rate; Sortino's downside deviation is the root mean square of the negative
  returns over *all* periods (the usual target-downside definition with target 0).
- Drawdown is measured from the running peak; its duration is the longest stretch, in bars, spent below a peak.
- Trade statistics are computed on closed trades' net P&L (fees and slippage included).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True, slots=True)
class Drawdown:
    max_drawdown: float  # a fraction, <= 0
    peak_at: object
    trough_at: object
    longest_bars: int  # longest stretch below a previous peak


@dataclass(frozen=True, slots=True)
class Metrics:
    total_return: float
    annualised_return: float
    volatility: float
    sharpe: float
    sortino: float
    calmar: float
    max_drawdown: float
    max_drawdown_bars: int
    trades: int
    win_rate: float
    payoff_ratio: float
    profit_factor: float
    exposure: float
    turnover: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def bar_returns(equity: pd.Series) -> pd.Series:
    return equity.astype(float).pct_change().dropna()


def total_return(equity: pd.Series) -> float:
    values = equity.astype(float).to_numpy()
    return float(values[-1] / values[0] - 1.0) if len(values) > 1 else 0.0


def annualised_return(equity: pd.Series, periods_per_year: float) -> float:
    periods = len(equity) - 1
    if periods <= 0:
        return 0.0
    growth = 1.0 + total_return(equity)
    if growth <= 0:
        return -1.0
    return float(growth ** (periods_per_year / periods) - 1.0)


def volatility(returns: pd.Series, periods_per_year: float) -> float:
    if len(returns) < 2:
        return 0.0
    return float(returns.std(ddof=1) * math.sqrt(periods_per_year))


def sharpe(returns: pd.Series, periods_per_year: float) -> float:
    std = returns.std(ddof=1) if len(returns) > 1 else 0.0
    if not std or not np.isfinite(std):
        return 0.0
    return float(returns.mean() / std * math.sqrt(periods_per_year))


def sortino(returns: pd.Series, periods_per_year: float) -> float:
    if len(returns) == 0:
        return 0.0
    downside = math.sqrt(float(np.mean(np.minimum(returns.to_numpy(), 0.0) ** 2)))
    if downside == 0:
        return 0.0
    return float(returns.mean() / downside * math.sqrt(periods_per_year))


def drawdown(equity: pd.Series) -> Drawdown:
    values = equity.astype(float).to_numpy()
    if len(values) == 0:
        return Drawdown(0.0, None, None, 0)
    peaks = np.maximum.accumulate(values)
    depth = values / peaks - 1.0
    trough = int(np.argmin(depth))
    peak = int(np.argmax(values[: trough + 1])) if trough > 0 else 0
    below = depth < 0
    longest = run = 0
    for flag in below:  # longest run of consecutive bars under water
        run = run + 1 if flag else 0
        longest = max(longest, run)
    index = equity.index
    return Drawdown(float(depth[trough]), index[peak], index[trough], longest)


def trade_statistics(trade_pnls: Sequence[float]) -> tuple[float, float, float]:
    """(win rate, payoff ratio, profit factor) of closed trades' net P&L; 0.0 where undefined, inf for no losses."""
    pnl = np.asarray(trade_pnls, dtype=float)
    if pnl.size == 0:
        return 0.0, 0.0, 0.0
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    win_rate = wins.size / pnl.size
    if losses.size == 0:
        return float(win_rate), math.inf if wins.size else 0.0, math.inf if wins.size else 0.0
    payoff = float(wins.mean() / abs(losses.mean())) if wins.size else 0.0
    profit_factor = float(wins.sum() / abs(losses.sum()))
    return float(win_rate), payoff, profit_factor


def compute_metrics(
    equity: pd.Series,
    *,
    periods_per_year: float,
    trade_pnls: Sequence[float] = (),
    exposure_fraction: float = 0.0,
    traded_notional: float = 0.0,
) -> Metrics:
    """All metrics at once. ``exposure_fraction``: share of bars with a position; ``traded_notional``: sum of the
    absolute notional of every fill (turnover = traded notional / mean equity, annualised)."""
    returns = bar_returns(equity)
    dd = drawdown(equity)
    ann = annualised_return(equity, periods_per_year)
    win_rate, payoff, profit_factor = trade_statistics(trade_pnls)
    years = max(len(equity) - 1, 1) / periods_per_year
    mean_equity = float(equity.astype(float).mean()) if len(equity) else 0.0
    turnover = traded_notional / mean_equity / years if mean_equity > 0 else 0.0
    return Metrics(
        total_return=total_return(equity),
        annualised_return=ann,
        volatility=volatility(returns, periods_per_year),
        sharpe=sharpe(returns, periods_per_year),
        sortino=sortino(returns, periods_per_year),
        calmar=ann / abs(dd.max_drawdown) if dd.max_drawdown < 0 else 0.0,
        max_drawdown=dd.max_drawdown,
        max_drawdown_bars=dd.longest_bars,
        trades=len(trade_pnls),
        win_rate=win_rate,
        payoff_ratio=payoff,
        profit_factor=profit_factor,
        exposure=exposure_fraction,
        turnover=turnover,
    )


def attribution(trades: pd.DataFrame, by: str) -> pd.Series:
    """Net P&L summed per value of column ``by`` (e.g. 'symbol', 'strategy', 'agent'), largest first."""
    if trades.empty:
        return pd.Series(dtype=float)
    return trades.groupby(by)["pnl"].sum().astype(float).sort_values(ascending=False)


def buy_and_hold(closes: pd.DataFrame, initial_cash: float) -> pd.Series:
    """Equal-weight buy-and-hold of every column of ``closes`` (forward-filled), bought at the first price."""
    filled = closes.ffill().bfill().dropna(axis=1, how="all")
    if filled.shape[1] == 0:  # no price known for any symbol by then: holding cash
        return pd.Series(initial_cash, index=closes.index, dtype=float)
    weights = initial_cash / filled.shape[1]
    units = weights / filled.iloc[0]
    return (filled * units).sum(axis=1)
