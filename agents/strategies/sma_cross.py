"""Moving-average crossover: long while SMA(fast) is above SMA(slow), flat otherwise. Pure.

The same rule as the vectorized fast path (``alphaloom.backtest.vectorized.sma_cross_target``), so a step-path
backtest run with only this rule (``StrategyParams(rule="sma_cross")``) can be checked trade for trade against it:
BUY when both averages are defined and fast > slow, else SELL (which the long-only trader turns into "exit if long").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from alphaloom.domain import Action, AgentOpinion

AGENT = "technical"
NAME = "sma_cross"


@dataclass(frozen=True, slots=True)
class SmaCrossParams:
    fast: int = 10
    slow: int = 30

    def __post_init__(self) -> None:
        if not 1 <= self.fast < self.slow:
            raise ValueError(f"sma_cross needs 1 <= fast < slow, got fast={self.fast} slow={self.slow}")


def sma_cross_opinion(
    closes: Sequence[float], symbol: str, as_of: datetime, params: SmaCrossParams = SmaCrossParams()
) -> AgentOpinion:
    """BUY (confidence 1) when SMA(fast) > SMA(slow) over ``closes`` (oldest first), else SELL; SELL during the
    warm-up (fewer than ``slow`` closes), like the fast path's target 0."""
    averages = _averages(closes, params)
    if averages is None:
        return AgentOpinion(AGENT, symbol, as_of, Action.SELL, 1.0,
                            f"{NAME}: {len(closes)} closes, {params.slow} needed (warm-up: flat)",
                            details={"strategy": NAME, "warm_up": True})  # fmt: skip
    fast, slow = averages
    return AgentOpinion(
        AGENT, symbol, as_of, _action(averages), 1.0,
        f"{NAME}: SMA({params.fast}) {fast:.6g} {'>' if fast > slow else '<='} SMA({params.slow}) {slow:.6g}",
        details={"strategy": NAME, "sma_fast": fast, "sma_slow": slow},
    )  # fmt: skip


def sma_cross_vote(closes: Sequence[float], params: SmaCrossParams = SmaCrossParams()) -> tuple[Action, float]:
    """``sma_cross_opinion``'s action and confidence, without its rationale (a replay's sparse step,
    ``agents.sparse_step``)."""
    return _action(_averages(closes, params)), 1.0


def _averages(closes: Sequence[float], params: SmaCrossParams) -> tuple[float, float] | None:
    """(SMA(fast), SMA(slow)) of the last closes; None during the warm-up."""
    if len(closes) < params.slow:
        return None
    return sum(closes[-params.fast :]) / params.fast, sum(closes[-params.slow :]) / params.slow


def _action(averages: tuple[float, float] | None) -> Action:
    return Action.BUY if averages is not None and averages[0] > averages[1] else Action.SELL
