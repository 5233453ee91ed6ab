"""The technical agent: trend (EMA 10 vs 50, MACD histogram) and momentum (RSI 14) from one ``marts.features`` row.

Pure: takes the feature values, returns an ``AgentOpinion``. Callers can rely on

- ``action`` BUY / SELL / HOLD and ``confidence`` in [0, 1];
- HOLD with confidence ``WARMUP_CONFIDENCE`` when any needed feature is NULL/NaN (indicator warm-up), naming them;
- a ``rationale`` that quotes the numbers it used, and ``details`` holding them plus the signed ``score``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from itertools import repeat

import numpy as np

from alphaloom.domain import Action, AgentOpinion, Signal

AGENT = "technical"
WARMUP_CONFIDENCE = 0.05
NEEDED = ("close", "ema_10", "ema_50", "macd_hist", "rsi_14")


@dataclass(frozen=True, slots=True)
class TechnicalParams:
    """Strategy parameters; part of the decision's config version."""

    trend_weight: float = 0.7
    momentum_weight: float = 0.3
    rsi_overbought: float = 70.0
    rsi_oversold: float = 30.0
    action_threshold: float = 0.3
    # Share of the score given to the price-history strategies (momentum, mean reversion) when they have a view.
    strategy_weight: float = 0.4

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


_TREND_WORDS = {1.0: "up", 0.5: "mixed-up", 0.0: "flat/mixed", -0.5: "mixed-down", -1.0: "down"}


def _values(row: Mapping[str, object]) -> dict[str, float | None]:
    """Every ``NEEDED`` value as a float, None when NULL or NaN."""
    get = row.get
    values: dict[str, float | None] = {}
    for name in NEEDED:
        value = get(name)
        if value is not None:
            value = float(value)  # type: ignore[arg-type]
            if value != value:  # NaN
                value = None
        values[name] = value
    return values


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def technical_opinion(
    features_row: Mapping[str, object],
    symbol: str,
    as_of: datetime,
    params: TechnicalParams = TechnicalParams(),
    signals: Sequence[Signal] = (),
) -> AgentOpinion:
    """Score = trend_weight * mean(sign(ema_10 - ema_50), sign(macd_hist)) + momentum_weight * (rsi - 50) / 50.

    With strategy ``signals`` (``agents.strategies`` over the recent closes), the score becomes
    ``(1 - strategy_weight) * score + strategy_weight * mean(signal strengths)``; without any, it is unchanged.

    BUY at score >= threshold, SELL at <= -threshold, except that an overbought RSI vetoes a BUY and an oversold RSI
    vetoes a SELL (no chasing). Confidence is ``min(1, |score|)``.
    """
    values = _values(features_row)
    scored = _scored(values, params, signals)
    if scored is None:
        missing = [name for name, value in values.items() if value is None]
        return AgentOpinion(
            agent=AGENT,
            symbol=symbol,
            as_of=as_of,
            action=Action.HOLD,
            confidence=WARMUP_CONFIDENCE,
            rationale=f"warm-up: {', '.join(missing)} not available yet",
            details={"missing": missing, "values": values},
        )
    trend, momentum, indicator_score, score, action, confidence = scored
    ema_10, ema_50, macd_hist, rsi = values["ema_10"], values["ema_50"], values["macd_hist"], values["rsi_14"]
    threshold, veto = params.action_threshold, ""
    if action is Action.HOLD and score >= threshold:
        veto = f"; RSI {rsi:.1f} >= {params.rsi_overbought:g} is overbought, not buying"
    elif action is Action.HOLD and score <= -threshold:
        veto = f"; RSI {rsi:.1f} <= {params.rsi_oversold:g} is oversold, not selling"
    rationale = (
        f"trend {_TREND_WORDS[trend]}: EMA10 {ema_10:.4g} vs EMA50 {ema_50:.4g}, MACD hist {macd_hist:+.4g}; "
        f"RSI14 {rsi:.1f}; {''.join([f'{s.name} {s.strength:+.2f} ({s.reason}); ' for s in signals])}"
        f"score {score:+.2f}{_threshold_text(threshold)}{_ACTION_TEXT[action]}{veto}"
    )
    return AgentOpinion(
        AGENT,
        symbol,
        as_of,
        action,
        confidence,
        rationale,
        details={
            "score": score,
            "indicator_score": indicator_score,
            "trend": trend,
            "momentum": momentum,
            "values": values,
            "signals": {s.name: round(s.strength, 6) for s in signals},
        },
    )


def technical_vote(
    features_row: Mapping[str, object], params: TechnicalParams = TechnicalParams(), signals: Sequence[Signal] = ()
) -> tuple[Action, float]:
    """``technical_opinion``'s action and confidence, the same values, without its rationale and details (what a
    replay's sparse step votes with, ``agents.sparse_step``)."""
    scored = _scored(_values(features_row), params, signals)
    return (Action.HOLD, WARMUP_CONFIDENCE) if scored is None else (scored[4], scored[5])


def _scored(
    values: Mapping[str, float | None], params: TechnicalParams, signals: Sequence[Signal]
) -> tuple[float, float, float, float, Action, float] | None:
    """(trend, momentum, indicator score, score, action, rounded confidence) of ``technical_opinion``; None during
    the warm-up (a needed value missing)."""
    ema_10, ema_50, macd_hist, rsi = values["ema_10"], values["ema_50"], values["macd_hist"], values["rsi_14"]
    if ema_10 is None or ema_50 is None or macd_hist is None or rsi is None or values["close"] is None:
        return None
    gap = ema_10 - ema_50
    trend = ((gap > 0) - (gap < 0) + (macd_hist > 0) - (macd_hist < 0)) / 2  # the mean of the two signs
    momentum = max(-1.0, min(1.0, (rsi - 50.0) / 50.0))
    indicator_score = max(-1.0, min(1.0, params.trend_weight * trend + params.momentum_weight * momentum))
    score = indicator_score
    if signals:
        strategy_score = _strategy_score(signals)
        score = max(-1.0, min(1.0, (1 - params.strategy_weight) * score + params.strategy_weight * strategy_score))
    threshold = params.action_threshold
    action = Action.HOLD
    if score >= threshold:
        if rsi < params.rsi_overbought:
            action = Action.BUY
    elif score <= -threshold and rsi > params.rsi_oversold:
        action = Action.SELL
    confidence = min(1.0, abs(score)) if action is not Action.HOLD else max(0.0, 1.0 - abs(score))
    return trend, momentum, indicator_score, score, action, round(confidence, 6)


def _strategy_score(signals: Sequence[Signal]) -> float:
    """The mean strength of the strategies' signals (at least one)."""
    return _mean([s.strength for s in signals])


_ACTIONS = (Action.HOLD, Action.BUY, Action.SELL)  # by the codes ``technical_votes_of_columns`` computes
# A vote's action by its code plus 3 where the row's needed values are finite (None where not).
_CODED = (None, None, None, *_ACTIONS)


def _mean(strengths: Sequence[float]) -> float:
    """The mean of the strengths (at least one), added to 0.0 one by one."""
    return sum(strengths) / len(strengths)


def strategy_scores(first: Sequence[float | None], second: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray]:
    """Per row, whether its price strategies have a view (``first[k]`` or ``second[k]`` not None) and the mean of
    the strengths it has (``_strategy_score`` of them in this order, the same doubles: ``sum`` adds them to 0.0 one
    by one; 0.0 where none)."""
    one = np.array(first, dtype=float)  # None: NaN, left out below
    two = np.array(second, dtype=float)
    has_one = np.array([x is not None for x in first], dtype=bool)
    has_two = np.array([x is not None for x in second], dtype=bool)
    with np.errstate(invalid="ignore", over="ignore"):
        both = ((0.0 + one) + two) / 2
        single = np.where(has_one, 0.0 + one, 0.0 + two)  # divided by 1: the same double
    spoken = has_one | has_two
    return spoken, np.where(has_one & has_two, both, np.where(spoken, single, 0.0))


def technical_votes_of_columns(
    columns: Mapping[str, Sequence[object]], spoken: np.ndarray, strategy: np.ndarray, params: TechnicalParams
) -> tuple[list[Action | None], list[float]]:
    """``technical_vote`` of each row whose ``NEEDED`` values are ``columns[name]`` (one per row, in the rows'
    order; what ``row.get(name)`` gives) and whose signals' mean strength is ``strategy[k]`` where ``spoken[k]``
    (``strategy_scores``), computed over the rows at once (a replay cursor's window, ``agents.replay_cursor``): the
    same values, from the same float operations in the same order on numpy's float64 arrays, the confidence rounded
    by ``round``. Per row its vote's action and its confidence; the action None (the confidence meaningless) for a
    row with a needed value that is not a finite number (warm-up, NaN, an infinity): the caller votes it with
    ``technical_vote`` on the values the decision reads."""
    if not columns["close"]:
        return [], []
    ema_10, ema_50, macd_hist, rsi, close = (np.array(columns[name], dtype=float)
                                              for name in ("ema_10", "ema_50", "macd_hist", "rsi_14", "close"))  # fmt: skip
    finite = np.isfinite(ema_10) & np.isfinite(ema_50) & np.isfinite(macd_hist) & np.isfinite(rsi) & np.isfinite(close)
    gap = ema_10 - ema_50
    # the mean of the two signs: int sums divided by 2, as Python divides the bools' int sum
    trend = ((gap > 0).astype(np.int64) - (gap < 0) + (macd_hist > 0) - (macd_hist < 0)) / 2
    momentum = np.maximum(-1.0, np.minimum(1.0, (rsi - 50.0) / 50.0))
    score = np.maximum(-1.0, np.minimum(1.0, params.trend_weight * trend + params.momentum_weight * momentum))
    if spoken.any():
        mixed = (1 - params.strategy_weight) * score[spoken] + params.strategy_weight * strategy[spoken]
        score[spoken] = np.maximum(-1.0, np.minimum(1.0, mixed))
    threshold = params.action_threshold
    buy = (score >= threshold) & (rsi < params.rsi_overbought)
    sell = (score < threshold) & (score <= -threshold) & (rsi > params.rsi_oversold)
    strength = np.abs(score)
    confidence = np.where(buy | sell, np.minimum(1.0, strength), np.maximum(0.0, 1.0 - strength))
    codes = buy.astype(np.int64) + 2 * sell + 3 * finite
    return list(map(_CODED.__getitem__, codes.tolist())), list(map(round, confidence.tolist(), repeat(6)))


# The action's text (``Action.value``, without the enum's property per call).
_ACTION_TEXT = {action: action.value for action in Action}
_THRESHOLD_TEXTS: dict[float, str] = {}


def _threshold_text(threshold: float) -> str:
    """`` (threshold ±T) -> ``: formatted once per threshold value (a strategy parameter: a handful per run)."""
    text = _THRESHOLD_TEXTS.get(threshold)
    if text is None:
        text = _THRESHOLD_TEXTS[threshold] = f" (threshold ±{threshold:g}) -> "
    return text
