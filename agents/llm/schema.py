"""What the LLM analyst is given and what it must answer: ``AnalystInputs`` (every number computed by our code) and
``LlmAnswer`` (validated pydantic model whose JSON schema is sent as the structured-output format)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class CitedValue(BaseModel):
    """A number the answer relies on, named as in its inputs (checked against them)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    value: float


class LlmAnswer(BaseModel):
    """The analyst's opinion. ``horizon_bars`` is how many bars the view is for; it is scored after that horizon."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["buy", "sell", "hold"]
    confidence: float = Field(ge=0.0, le=1.0)
    horizon_bars: int = Field(ge=1, le=168)
    rationale: str = Field(min_length=1, max_length=2000)
    key_risks: list[str] = Field(max_length=10)
    cited_values: list[CitedValue] = Field(max_length=30)


def answer_schema() -> dict[str, Any]:
    """The JSON schema of ``LlmAnswer`` (stable across processes: part of the prompt hash)."""
    return LlmAnswer.model_json_schema()


@dataclass(frozen=True, slots=True)
class Headline:
    news_id: str
    title: str
    first_seen_at: datetime
    label: str
    score: float


@dataclass(frozen=True, slots=True)
class PastSituation:
    symbol: str
    as_of: datetime
    action: str
    realised_return: float
    horizon_bars: int
    distance: float


@dataclass(frozen=True, slots=True)
class AnalystInputs:
    """Everything the analyst sees for one symbol at ``as_of``."""

    symbol: str
    as_of: datetime
    timeframe: str
    features: Mapping[str, float | None]
    headlines: tuple[Headline, ...] = ()
    position_quantity: float = 0.0
    position_avg_price: float = 0.0
    memories: tuple[PastSituation, ...] = field(default_factory=tuple)
    # What the rule-based extractor (``agents.earnings``) found stated in the stories: one mapping per earnings report
    # (news id, first-seen time, EPS/revenue vs estimate, guidance); shown to the model only when there is one.
    earnings: tuple[Mapping[str, Any], ...] = ()

    def numbers(self) -> dict[str, float]:
        """The named numbers in the prompt, as shown to the model (the reference for the contradiction check)."""
        values = {k: round_sig(v) for k, v in self.features.items() if v is not None}
        values["position_quantity"] = round_sig(self.position_quantity)
        values["position_avg_price"] = round_sig(self.position_avg_price)
        if self.headlines:
            values["news_mean_sentiment"] = round_sig(sum(h.score for h in self.headlines) / len(self.headlines))
            values["news_count"] = float(len(self.headlines))
        return values


def round_sig(value: float, digits: int = 6) -> float:
    """``value`` to ``digits`` significant digits (what the prompt shows, so the hash is stable)."""
    number = float(value)
    if number == 0 or number != number:
        return number
    return float(f"{number:.{digits}g}")
