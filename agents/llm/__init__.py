"""The LLM analyst (``LlmAnalyst``) behind the ``openai`` SDK, its prompts, answer schema, checks and budget ledger."""

from agents.llm.analyst import LlmAnalyst
from agents.llm.schema import AnalystInputs, Headline, LlmAnswer, PastSituation

__all__ = ["AnalystInputs", "Headline", "LlmAnalyst", "LlmAnswer", "PastSituation"]
