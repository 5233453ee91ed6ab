"""The pattern analyst: an opinion from the chart patterns completed in the last few bars known at ``as_of``. Pure.

It reads the ``lookback`` newest bars of the snapshot (``MarketView.bars``: bars with ``known_at <= as_of``, oldest
first) and finds

- the candlestick patterns (``agents.patterns.candles``, judged bar by bar by ``agents.patterns.candles_at``) ending
  at one of the last ``recent_bars`` bars; a hammer counts as bullish only after a decline (the close ``trend_bars``
  before the pattern above its close), a shooting star as bearish only after a rise; a doji counts as no direction;
- the swing formations (``agents.patterns.formations``) completed at one of those bars: a swing is only used once
  its confirming bars are known, and each formation is dated at the bar that completed it, never at a pivot.

Score = ``candle_weight * mean(candle directions) + (1 - candle_weight) * mean(formation directions)`` (the one kind
found alone when only one is); BUY at ``score >= action_threshold``, SELL at ``<= -action_threshold``, else HOLD.
Without any pattern in those bars (or with fewer than ``min_bars`` bars) the analyst abstains: its opinion is
``skipped`` and does not count in the vote (``agents.consensus``), the way an LLM without endpoint does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np

from agents.patterns.candles import CANDLE_DIRECTION, Candles, Floats
from agents.patterns.candles_at import candle_patterns_at
from agents.patterns.formations import FormationParams, formations
from alphaloom.domain import Action, AgentOpinion

AGENT = "patterns"


class Bar(NamedTuple):
    """One bar the analyst reads: its open time and prices."""

    ts: datetime
    open: float
    high: float
    low: float
    close: float


@dataclass(frozen=True)
class PatternParams:
    """The pattern analyst's parameters; with ``weight`` > 0 it votes and they are part of the config version."""

    weight: float = 0.0
    """Its weight in the vote; 0 leaves the analyst out of the team (the default: ``ALPHALOOM_PATTERN_WEIGHT``)."""
    lookback: int = 120
    recent_bars: int = 3
    trend_bars: int = 5
    candle_weight: float = 0.4
    action_threshold: float = 0.3
    min_bars: int = 20
    formations: FormationParams = field(default_factory=FormationParams)

    @property
    def enabled(self) -> bool:
        """Whether the analyst is in the team."""
        return self.weight > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "weight": self.weight,
            "lookback": self.lookback,
            "recent_bars": self.recent_bars,
            "trend_bars": self.trend_bars,
            "candle_weight": self.candle_weight,
            "action_threshold": self.action_threshold,
            "min_bars": self.min_bars,
            "formations": self.formations.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class Found:
    """A pattern the analyst counted: its name, direction and the bar (open time) it completed at."""

    name: str
    direction: int
    at: datetime

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "direction": self.direction, "at": self.at.isoformat()}


# The bars before a candle pattern's last bar that its detector reads (TA-Lib's longest lookback: a star's first
# candle, two bars back, against the 10 bars before it): the detectors run on the tail that holds them, which gives
# the values a run over every bar would.
_CANDLE_READS = 12


def _columns(bars: Sequence[Bar]) -> tuple[Floats, Floats, Floats, Floats]:
    _, open_, high, low, close = zip(*bars, strict=True)
    return (np.array(open_, dtype=np.float64), np.array(high, dtype=np.float64), np.array(low, dtype=np.float64),
            np.array(close, dtype=np.float64))  # fmt: skip


def _candles_found(
    bars: Sequence[Bar], prices: tuple[Floats, Floats, Floats, Floats], params: PatternParams
) -> list[Found]:
    close = prices[3]
    first = max(0, len(bars) - params.recent_bars)
    tail = max(0, first - _CANDLE_READS - 1)
    candles = Candles(*(column[tail:] for column in prices))
    found: list[Found] = []
    for at, name, sign in candle_patterns_at(candles, range(first - tail, len(bars) - tail)):
        i = at + tail  # the bar's place in ``bars``
        direction = CANDLE_DIRECTION[name]
        direction = sign if direction is None else direction
        if name in ("hammer", "shooting_star"):
            before = i - params.trend_bars
            moved = 0 if before < 0 else int(np.sign(close[i] - close[before]))
            if moved != -direction:  # a hammer after a decline, a shooting star after a rise
                continue
        found.append(Found(name, direction, bars[i].ts))
    return sorted(found, key=lambda f: (f.at, f.name))


def _formations_found(
    bars: Sequence[Bar], prices: tuple[Floats, Floats, Floats, Floats], params: PatternParams
) -> list[Found]:
    _, high, low, close = prices
    first = max(0, len(bars) - params.recent_bars)
    return [Found(f.name, f.direction, bars[f.at].ts)
            for f in formations(high, low, close, params.formations, since=first)]  # fmt: skip


def _mean(found: Sequence[Found]) -> float:
    return sum(f.direction for f in found) / len(found)


def pattern_opinion(
    bars: Sequence[Bar], symbol: str, as_of: datetime, params: PatternParams = PatternParams()
) -> AgentOpinion:
    """The analyst's opinion from ``bars`` (see the module docstring); ``details`` names every pattern counted with
    the bar it completed at, and the score."""
    bars = list(bars)[-params.lookback :] if params.lookback > 0 else list(bars)
    if len(bars) < params.min_bars:
        return AgentOpinion(AGENT, symbol, as_of, Action.HOLD, 0.0,
                            f"warm-up: {len(bars)} bars known, {params.min_bars} needed",
                            details={"bars": len(bars)}, skipped=True)  # fmt: skip
    prices = _columns(bars)
    candles, shapes = _candles_found(bars, prices, params), _formations_found(bars, prices, params)
    details: dict[str, Any] = {
        "bars": len(bars),
        "last_bar": bars[-1].ts.isoformat(),
        "candles": [f.record() for f in candles],
        "formations": [f.record() for f in shapes],
    }
    if not candles and not shapes:
        return AgentOpinion(AGENT, symbol, as_of, Action.HOLD, 0.0,
                            f"no pattern completed in the last {params.recent_bars} bars", details=details,
                            skipped=True)  # fmt: skip
    if candles and shapes:
        score = params.candle_weight * _mean(candles) + (1 - params.candle_weight) * _mean(shapes)
    else:
        score = _mean(candles or shapes)
    action = Action.HOLD
    if score >= params.action_threshold:
        action = Action.BUY
    elif score <= -params.action_threshold:
        action = Action.SELL
    confidence = min(1.0, abs(score)) if action is not Action.HOLD else max(0.0, 1.0 - abs(score))
    named = ", ".join(f"{f.name} {f.direction:+d} at {f.at:%Y-%m-%d %H:%M}" for f in (*shapes, *candles))
    rationale = f"{named}; score {score:+.2f} (threshold ±{params.action_threshold:g}) -> {action.value}"
    return AgentOpinion(AGENT, symbol, as_of, action, round(confidence, 6), rationale,
                        details={**details, "score": round(score, 6)})  # fmt: skip
