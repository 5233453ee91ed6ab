"""Consensus: a weighted vote of agent opinions. Pure.

score = sum(weight * direction * confidence) / sum(weight) over the opinions that were not skipped, where direction is
+1 for BUY, -1 for SELL and 0 for HOLD (so a HOLD, including "no news", dilutes conviction rather than abstaining).
A skipped agent (e.g. no LLM endpoint) does not count at all. BUY when score >= threshold, SELL when <= -threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from alphaloom.domain import Action

_DIRECTION = {Action.BUY: 1.0, Action.SELL: -1.0, Action.HOLD: 0.0}


def _default_weights() -> dict[str, float]:
    # earnings and social vote only when they have something (else their opinion is skipped and does not count)
    return {"technical": 1.0, "news": 0.5, "llm": 0.5, "earnings": 0.5, "social": 0.3}


@dataclass(frozen=True)
class ConsensusParams:
    """Strategy parameters; part of the decision's config version. Agents missing from ``weights`` weigh
    ``default_weight``."""

    weights: Mapping[str, float] = field(default_factory=_default_weights)
    default_weight: float = 0.5
    threshold: float = 0.3

    def as_dict(self) -> dict[str, object]:
        return {
            "weights": dict(sorted(self.weights.items())),
            "default_weight": self.default_weight,
            "threshold": self.threshold,
        }


class Opinion(Protocol):
    """What the vote reads of an opinion (an ``AgentOpinion``, or a replay's sparse step's ``agents.sparse_step``
    vote: the same fields without the rationale)."""

    @property
    def agent(self) -> str: ...
    @property
    def action(self) -> Action: ...
    @property
    def confidence(self) -> float: ...
    @property
    def skipped(self) -> bool: ...


def consensus(opinions: Sequence[Opinion], params: ConsensusParams = ConsensusParams()) -> tuple[Action, float]:
    """The team's action and its signed score in [-1, 1]; HOLD with 0.0 when every opinion was skipped."""
    weights, default = params.weights, params.default_weight
    counted: list[float] = []  # the weights of the opinions that count, each looked up once
    votes: list[float] = []  # their weight * direction * confidence
    for o in opinions:
        if not o.skipped:
            weight = weights.get(o.agent, default)
            counted.append(weight)
            votes.append(weight * _DIRECTION[o.action] * o.confidence)
    total_weight = sum(counted)  # sums of lists, in the opinions' order: the same floats as summing as they come
    if total_weight <= 0:
        return Action.HOLD, 0.0
    score = sum(votes) / total_weight
    score = max(-1.0, min(1.0, score))
    if score >= params.threshold:
        return Action.BUY, score
    if score <= -params.threshold:
        return Action.SELL, score
    return Action.HOLD, score
