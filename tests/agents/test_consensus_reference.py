"""``consensus`` against its reference implementation (as it was before its per-call work was cut: issue 14): the same
action and the same float score over random opinions, skips and weights."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from agents.consensus import ConsensusParams, consensus
from alphaloom.domain import Action, AgentOpinion

AS_OF = datetime(2024, 3, 1, 12, tzinfo=UTC)
_REFERENCE_DIRECTION = {Action.BUY: 1.0, Action.SELL: -1.0, Action.HOLD: 0.0}


def _reference(opinions: Sequence[AgentOpinion], params: ConsensusParams) -> tuple[Action, float]:
    weights, default = params.weights, params.default_weight
    counted = [(weights.get(o.agent, default), o) for o in opinions if not o.skipped]
    total_weight = sum(weight for weight, _ in counted)
    if total_weight <= 0:
        return Action.HOLD, 0.0
    score = sum(weight * _REFERENCE_DIRECTION[o.action] * o.confidence for weight, o in counted) / total_weight
    score = max(-1.0, min(1.0, score))
    if score >= params.threshold:
        return Action.BUY, score
    if score <= -params.threshold:
        return Action.SELL, score
    return Action.HOLD, score


@pytest.mark.parametrize("seed", range(3))
def test_consensus_equals_its_reference(seed: int) -> None:
    rng = random.Random(seed)
    agents = ["technical", "news", "llm", "earnings", "social", "other"]
    for _ in range(3_000):
        opinions = [
            AgentOpinion(
                agent,
                "X/USDT",
                AS_OF,
                rng.choice(list(Action)),
                rng.choice([0.0, 1.0, rng.random()]),
                "r",
                skipped=rng.random() < 0.2,
            )
            for agent in rng.sample(agents, rng.randint(0, len(agents)))
        ]
        params = ConsensusParams(
            weights={"technical": rng.uniform(0, 2), "news": rng.choice([0.0, 0.5]), "llm": rng.random()},
            default_weight=rng.choice([0.0, 0.3, 0.5]),
            threshold=rng.choice([0.0, 0.3, 0.7]),
        )
        got, want = consensus(opinions, params), _reference(opinions, params)
        assert got == want and type(got[1]) is type(want[1])
