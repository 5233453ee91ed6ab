"""Look-ahead through the model: an LLM consulted about dates before its training cutoff may know what came next.
Every LLM role's model is judged (``LlmSettings.role_models`` lists them). Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime


def unknown_cutoff(role: str, model: str) -> str:
    """Why a role's model cannot be judged: no training cutoff configured for it."""
    return (
        f"no training cutoff configured for LLM model {model!r} ({role}), so its exposure cannot be judged; add it "
        f'to ALPHALOOM_LLM_TRAINING_CUTOFFS (JSON, e.g. {{"{model}": "2024-06-01"}})'
    )


def llm_exposure(
    role_models: Sequence[tuple[str, str]], cutoffs: Mapping[str, date], first_decision: datetime
) -> str | None:
    """Why consulting the ``(role, model)`` pairs from ``first_decision`` on is exposed to a model's knowledge of the
    future (a decision before its training cutoff), or may be (a model with no configured cutoff); None when no model
    is. One clause per model concerned, joined with "; "."""
    roles: dict[str, list[str]] = {}
    for role, model in role_models:
        roles.setdefault(model, []).append(role)
    reasons = []
    for model, who in roles.items():
        role, cutoff = ", ".join(who), cutoffs.get(model)
        if cutoff is None:
            reasons.append(unknown_cutoff(role, model))
        elif first_decision.date() < cutoff:
            reasons.append(
                f"it starts {first_decision:%Y-%m-%d}, before {model}'s training cutoff {cutoff:%Y-%m-%d} ({role}): "
                "its opinions may reflect knowledge of the future"
            )
    return "; ".join(reasons) or None
