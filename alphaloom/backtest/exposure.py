"""Look-ahead through the model: an LLM consulted about dates before its training cutoff may know what came next.
Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from alphaloom.errors import ConfigError


def llm_exposure(model: str, cutoffs: Mapping[str, date], first_decision: datetime) -> str | None:
    """Why a backtest from ``first_decision`` with ``model`` is exposed to the model's knowledge of the future, or
    None when it is not. A model with no configured cutoff is an error (its exposure cannot be judged)."""
    cutoff = cutoffs.get(model)
    if cutoff is None:
        raise ConfigError(
            f"no training cutoff configured for LLM model {model!r}; add it to ALPHALOOM_LLM_TRAINING_CUTOFFS "
            f'(JSON, e.g. {{"{model}": "2024-06-01"}})'
        )
    if first_decision.date() < cutoff:
        return (
            f"the backtest starts {first_decision:%Y-%m-%d}, before {model}'s training cutoff {cutoff:%Y-%m-%d}: "
            "its opinions may reflect knowledge of the future"
        )
    return None
