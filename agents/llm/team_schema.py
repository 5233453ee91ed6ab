"""What each LLM team role must answer (validated pydantic models; their JSON schemas are sent as the structured
output format): the fundamental analyst reads the earnings reports into a ``FundamentalView``, researchers argue a ``Case``, the research manager answers an ``LlmAnswer`` (the analyst's schema,
so the contradiction check and the vote treat it the same), the risk reviewer a ``RiskReview`` that can only keep,
shrink or veto (``scale`` is at most 1), and the compact mode one ``CompactAnswer`` with all of them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.llm.schema import LlmAnswer


class Case(BaseModel):
    """A researcher's argument for its side, from the evidence and the tools' answers."""

    model_config = ConfigDict(extra="forbid")

    argument: str = Field(min_length=1, max_length=2000)
    key_points: list[str] = Field(max_length=10)
    confidence: float = Field(ge=0.0, le=1.0)


class FundamentalView(BaseModel):
    """The fundamental analyst's reading of the earnings reports and filings known at the decision: what they say
    for the company (``stance``), why, and how sure it is. It joins the debate as evidence; it does not vote."""

    model_config = ConfigDict(extra="forbid")

    stance: Literal["positive", "negative", "neutral"]
    assessment: str = Field(min_length=1, max_length=2000)
    key_points: list[str] = Field(max_length=10)
    confidence: float = Field(ge=0.0, le=1.0)


class RiskReview(BaseModel):
    """The LLM risk reviewer's answer on what the numeric gate approved: keep it (``approve``, scale 1), shrink it
    (``reduce``, scale in (0, 1)) or drop it (``veto``). It has no way to ask for more."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reduce", "veto"]
    scale: float = Field(ge=0.0, le=1.0)
    rationale: str = Field(min_length=1, max_length=2000)


class CompactAnswer(BaseModel):
    """One call playing every role: both cases, the manager's verdict and the risk reviewer's limit."""

    model_config = ConfigDict(extra="forbid")

    bull_case: str = Field(min_length=1, max_length=2000)
    bear_case: str = Field(min_length=1, max_length=2000)
    verdict: LlmAnswer
    risk: RiskReview


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema (stable across processes: part of each call's hash)."""
    return model.model_json_schema()
