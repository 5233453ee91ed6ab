"""The LLM analyst (``LlmAnalyst``) behind the ``openai`` SDK, its prompts, answer schema, checks and budget ledger.

``LlmAnalyst`` (and with it the ``openai`` SDK) is imported on first use: the schema is needed by every decision, the
SDK only where an LLM endpoint is configured."""

from typing import TYPE_CHECKING, Any

from agents.llm.schema import AnalystInputs, Headline, LlmAnswer, PastSituation

if TYPE_CHECKING:
    from agents.llm.analyst import LlmAnalyst

__all__ = ["AnalystInputs", "Headline", "LlmAnalyst", "LlmAnswer", "PastSituation"]


def __getattr__(name: str) -> Any:
    if name == "LlmAnalyst":
        from agents.llm.analyst import LlmAnalyst

        return LlmAnalyst
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
