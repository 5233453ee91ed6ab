"""``technical_opinion`` against its reference implementation (the straightforward one it was before its per-call work
was cut: issue 14): the same opinion, rationale text and details included, over random rows, signals and parameters."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import cast

import pytest

from agents.technical import (
    NEEDED,
    WARMUP_CONFIDENCE,
    TechnicalParams,
    strategy_scores,
    technical_opinion,
    technical_vote,
    technical_votes_of_columns,
)
from alphaloom.domain import Action, AgentOpinion, Signal

AS_OF = datetime(2024, 3, 1, 12, tzinfo=UTC)


def _value(rng: random.Random, centre: float, spread: float) -> object:
    kind = rng.random()
    if kind < 0.03:
        return None
    if kind < 0.05:
        return float("nan")
    if kind < 0.08:
        return Decimal(str(round(rng.uniform(centre - spread, centre + spread), 4)))
    if kind < 0.1:
        return int(centre)
    if kind < 0.12:
        return 0.0
    return rng.uniform(centre - spread, centre + spread)


def _row(rng: random.Random) -> dict[str, object]:
    scale = 10 ** rng.randint(-3, 5)
    return {
        "close": _value(rng, scale, scale / 10),
        "ema_10": _value(rng, scale, scale / 10),
        "ema_50": _value(rng, scale, scale / 10),
        "macd_hist": _value(rng, 0.0, scale / 100),
        "rsi_14": _value(rng, 50.0, 50.0),
        "realized_vol_20": 0.01,
    }


def _signals(rng: random.Random) -> tuple[Signal, ...]:
    names = ("momentum", "mean_reversion", "event")
    return tuple(
        Signal(name, "X/USDT", rng.choice([0.0, 1.0, -1.0, rng.uniform(-1, 1)]), f"reason {rng.random():.3f}")
        for name in names[: rng.randint(0, 3)]
    )


def _params(rng: random.Random) -> TechnicalParams:
    if rng.random() < 0.5:
        return TechnicalParams()
    return TechnicalParams(
        trend_weight=rng.uniform(0, 1),
        momentum_weight=rng.uniform(0, 1),
        rsi_overbought=rng.choice([70.0, 65.5, 80.0]),
        rsi_oversold=rng.choice([30.0, 35.25, 20.0]),
        action_threshold=rng.choice([0.3, 0.0, 0.15, 0.125, 1.0]),
        strategy_weight=rng.uniform(0, 1),
    )


@pytest.mark.parametrize("seed", range(4))
def test_technical_opinion_equals_its_reference(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(2_000):
        row, signals, params = _row(rng), _signals(rng), _params(rng)
        got = technical_opinion(row, "X/USDT", AS_OF, params, signals)
        want = _reference_opinion(row, "X/USDT", AS_OF, params, signals)
        assert got == want
        assert got.rationale == want.rationale and repr(got.details) == repr(want.details)
        assert type(got.action) is Action and type(got.confidence) is type(want.confidence)


@pytest.mark.parametrize("seed", range(4))
def test_the_votes_computed_at_once_equal_the_reference_opinions_actions_and_confidences(seed: int) -> None:
    """``technical_vote`` (one row) and ``technical_votes_of_columns`` (a replay cursor's rows at once, over arrays,
    with the mean strength of each row's momentum and mean-reversion signals from ``strategy_scores``: None for a row
    with a value that is not a finite number, infinities included) give the reference opinion's action and
    confidence."""
    rng = random.Random(seed)
    for _ in range(40):
        params = _params(rng)
        rows = [_row(rng) for _ in range(100)]
        for row in rng.sample(rows, 3):
            row[rng.choice(NEEDED)] = rng.choice([float("inf"), float("-inf")])
        prices = [_price_signals(rng) for _ in rows]
        trends = [None if trend is None else trend.strength for trend, _ in prices]
        fades = [None if fade is None else fade.strength for _, fade in prices]
        spoken, strategy = strategy_scores(trends, fades)
        columns = {name: [row.get(name) for row in rows] for name in NEEDED}
        actions, confidences = technical_votes_of_columns(columns, spoken, strategy, params)
        for row, pair, action, confidence in zip(rows, prices, actions, confidences, strict=True):
            found = [s for s in pair if s is not None]
            want = _reference_opinion(row, "X/USDT", AS_OF, params, found)
            assert technical_vote(row, params, found) == (want.action, want.confidence)
            finite = all(isinstance(v, int | float | Decimal) and math.isfinite(v) for v in map(row.get, NEEDED))
            assert (action is not None) is finite, row
            if action is not None:
                assert (action, confidence) == (want.action, want.confidence) and type(confidence) is float
            other = _signals(rng)  # any signals, the event strategy's included
            want = _reference_opinion(row, "X/USDT", AS_OF, params, other)
            assert technical_vote(row, params, other) == (want.action, want.confidence)


def _price_signals(rng: random.Random) -> tuple[Signal | None, Signal | None]:
    """A row's momentum and mean-reversion signals, each None (no view) a third of the time."""

    def signal(name: str) -> Signal | None:
        if rng.random() < 1 / 3:
            return None
        return Signal(name, "X/USDT", rng.choice([0.0, 1.0, -1.0, rng.uniform(-1, 1)]), f"reason {rng.random():.3f}")

    return signal("momentum"), signal("mean_reversion")


def test_technical_opinion_reference_covers_every_branch() -> None:
    rng = random.Random(7)
    seen: set[str] = set()
    for _ in range(4_000):
        opinion = technical_opinion(_row(rng), "X/USDT", AS_OF, _params(rng), _signals(rng))
        if opinion.confidence == WARMUP_CONFIDENCE and "warm-up" in opinion.rationale:
            seen.add("warm-up")
        elif "not buying" in opinion.rationale or "not selling" in opinion.rationale:
            seen.add("veto")
        else:
            seen.add(opinion.action.value)
    assert seen == {"warm-up", "veto", "buy", "sell", "hold"}


# --- the reference: agents/technical.py as it was ---------------------------------------------------------------------

_REFERENCE_TREND_WORDS = {1.0: "up", 0.5: "mixed-up", 0.0: "flat/mixed", -0.5: "mixed-down", -1.0: "down"}


def _reference_values(row: Mapping[str, object]) -> dict[str, float | None]:
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


def _reference_opinion(
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
    values = _reference_values(features_row)
    missing = [name for name, value in values.items() if value is None]
    if missing:
        return AgentOpinion(
            agent="technical",
            symbol=symbol,
            as_of=as_of,
            action=Action.HOLD,
            confidence=WARMUP_CONFIDENCE,
            rationale=f"warm-up: {', '.join(missing)} not available yet",
            details={"missing": missing, "values": values},
        )
    # floats already (``_values``), none missing
    ema_10, ema_50, macd_hist, rsi = cast(
        tuple[float, float, float, float], (values["ema_10"], values["ema_50"], values["macd_hist"], values["rsi_14"])
    )
    gap = ema_10 - ema_50
    trend = ((gap > 0) - (gap < 0) + (macd_hist > 0) - (macd_hist < 0)) / 2  # the mean of the two signs
    momentum = max(-1.0, min(1.0, (rsi - 50.0) / 50.0))
    indicator_score = max(-1.0, min(1.0, params.trend_weight * trend + params.momentum_weight * momentum))
    score = indicator_score
    if signals:
        strategy_score = sum(s.strength for s in signals) / len(signals)
        score = max(-1.0, min(1.0, (1 - params.strategy_weight) * score + params.strategy_weight * strategy_score))

    action = Action.HOLD
    veto = ""
    if score >= params.action_threshold:
        if rsi >= params.rsi_overbought:
            veto = f"; RSI {rsi:.1f} >= {params.rsi_overbought:g} is overbought, not buying"
        else:
            action = Action.BUY
    elif score <= -params.action_threshold:
        if rsi <= params.rsi_oversold:
            veto = f"; RSI {rsi:.1f} <= {params.rsi_oversold:g} is oversold, not selling"
        else:
            action = Action.SELL
    confidence = min(1.0, abs(score)) if action is not Action.HOLD else max(0.0, 1.0 - abs(score))
    trend_word = _REFERENCE_TREND_WORDS[trend]
    rationale = (
        f"trend {trend_word}: EMA10 {ema_10:.4g} vs EMA50 {ema_50:.4g}, MACD hist {macd_hist:+.4g}; "
        f"RSI14 {rsi:.1f}; "
        + "".join([f"{s.name} {s.strength:+.2f} ({s.reason}); " for s in signals])
        + f"score {score:+.2f} (threshold ±{params.action_threshold:g}) -> {action.value}{veto}"
    )
    return AgentOpinion(
        agent="technical",
        symbol=symbol,
        as_of=as_of,
        action=action,
        confidence=round(confidence, 6),
        rationale=rationale,
        details={
            "score": score,
            "indicator_score": indicator_score,
            "trend": trend,
            "momentum": momentum,
            "values": values,
            "signals": {s.name: round(s.strength, 6) for s in signals},
        },
    )


def test_strategy_scores_over_arrays_equal_the_mean_strength_of_each_rows_signals() -> None:
    """``strategy_scores`` (a replay cursor's rows at once) gives ``_strategy_score``'s mean of the strengths that are
    not None, bit for bit (signed zeros and NaN included), and which rows have any."""
    rng = random.Random(3)
    pool: list[float | None] = [None, 0.0, -0.0, float("nan"), 1.0, -1.0, 1e-300, -1e308]
    first = [rng.choice(pool) if rng.random() < 0.4 else rng.uniform(-1, 1) for _ in range(3000)]
    second = [rng.choice(pool) if rng.random() < 0.4 else rng.uniform(-1, 1) for _ in range(3000)]
    spoken, scores = strategy_scores(first, second)
    for k, (a, b) in enumerate(zip(first, second, strict=True)):
        found = [x for x in (a, b) if x is not None]
        assert bool(spoken[k]) is bool(found)
        if found:
            want = sum(found) / len(found)
            got = float(scores[k])
            assert (got == want and math.copysign(1, got) == math.copysign(1, want)) or (got != got and want != want)
