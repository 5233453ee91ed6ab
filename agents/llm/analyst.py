"""The LLM analyst: one opinion per symbol from any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama...), through the
``openai`` SDK. It informs the vote; it never places an order.

What callers can rely on from ``LlmAnalyst.opine``:

- It never raises for the endpoint's sake: a timeout, an HTTP error left after the SDK's retries (429 included), an
  answer that is not valid JSON for the schema even after one repair attempt, or a reached budget gives a *skipped*
  opinion whose rationale says why, and an ``audit.llm_usage`` row with that status.
- Answers are validated (``LlmAnswer``) and cached in ``audit.llm_cache`` by prompt hash: the same prompt is never paid
  for twice.
- ``live_calls`` (backtests) caps the endpoint calls this analyst may make: 0 is cache-only (a miss is a skipped
  opinion with a ``cache_miss`` usage row, and nothing is sent); n allows n misses to be called, then skips with
  ``budget_exceeded``. None (live runs) leaves only the token and cost budgets.
- Every call is paid for whatever becomes of the caller's transaction: its spend is reserved before the call and
  settled after it, each committed on its own (``agents.llm.budget``), so dry runs and concurrent tasks share the caps.
- Tokens, latency and cost go to ``audit.llm_usage`` and into the opinion's details (the team copies tokens and latency
  to ``audit.agent_outputs``). Cost = tokens x the model's price per 1M tokens (USD).
- Numbers in the answer that contradict its inputs are listed in ``details["flags"]`` and halve its confidence.
"""

from __future__ import annotations

import logging
import re
import time
from decimal import Decimal
from typing import Any

import openai
from pydantic import ValidationError
from sqlalchemy import Connection

from agents.llm.budget import Usage, cost_of, estimate, price_of, record_usage, reserve, settle
from agents.llm.checks import contradictions
from agents.llm.prompts import PROMPT_VERSION, REPAIR, prompt_hash, render_messages
from agents.llm.schema import AnalystInputs, LlmAnswer, answer_schema
from alphaloom.domain import Action, AgentOpinion
from alphaloom.errors import ConfigError
from alphaloom.records.llm_ledger import cache_response, cached_response
from alphaloom.settings import Settings

log = logging.getLogger(__name__)

AGENT = "llm"
CONTRADICTION_PENALTY = 0.5
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class _Invalid(Exception):
    """The answer is not a valid ``LlmAnswer``; ``str()`` says why (sent back in the repair request)."""


def _parse(content: str | None) -> LlmAnswer:
    if not content:
        raise _Invalid("empty answer")
    stripped = content.strip()
    fenced = _FENCE.match(stripped)
    try:
        return LlmAnswer.model_validate_json(fenced.group(1) if fenced else stripped)
    except ValidationError as exc:
        raise _Invalid(f"{exc.error_count()} schema error(s): {exc.errors(include_url=False)[:3]}") from None


class LlmAnalyst:
    """An ``LlmAnalyst`` for ``settings.llm.base_url``; raises ``ConfigError`` when no endpoint is configured."""

    name = AGENT

    def __init__(
        self,
        settings: Settings,
        *,
        client: openai.OpenAI | None = None,
        prompt_version: str = PROMPT_VERSION,
        live_calls: int | None = None,
    ) -> None:
        if live_calls is not None and live_calls < 0:
            raise ConfigError(f"live_calls must be >= 0 (0: cache only), got {live_calls}")
        self.live_calls_left = live_calls
        self.live_calls_used = 0
        if settings.llm.base_url is None and client is None:
            raise ConfigError("llm_base_url is not set; the LLM analyst needs an OpenAI-compatible endpoint")
        self.settings = settings
        self.model = settings.llm.model
        price_of(self.model, settings)  # an unpriced model is refused here, before any call (ConfigError)
        self.prompt_version = prompt_version
        api_key = settings.llm.api_key.get_secret_value() if settings.llm.api_key else "not-needed"
        self.client = client or openai.OpenAI(
            base_url=settings.llm.base_url,
            api_key=api_key,
            timeout=settings.llm.timeout_s,
            max_retries=settings.llm.max_retries,
        )
        self.schema = answer_schema()
        self.sampling = {
            "temperature": settings.llm.temperature,
            "max_tokens": settings.llm.max_tokens,
            "response_format": "json_schema",
        }

    # -- the one public call -------------------------------------------------------------------------------------------

    def opine(self, conn: Connection, *, run_id: str, inputs: AnalystInputs, snapshot: object = None) -> AgentOpinion:
        """The analyst's opinion on ``inputs`` (see the module docstring); ``snapshot`` is unused (no tools)."""
        messages = render_messages(inputs, self.prompt_version)
        key = prompt_hash(self.model, messages, self.schema, self.sampling)
        ledger: dict[str, Any] = {"run_id": run_id, "symbol": inputs.symbol, "as_of": inputs.as_of,
                                  "model": self.model, "prompt_hash": key}  # fmt: skip

        cached = self._cached(conn, key)
        if cached is not None:
            record_usage(conn, **ledger, status="cached")
            return self._opinion(inputs, key, cached, status="cached", usage=Usage(), cost=Decimal(0), latency_ms=0)

        if self.live_calls_left == 0:
            status, why = (
                ("budget_exceeded", "live-call budget reached")
                if self.live_calls_used
                else ("cache_miss", "not in the response cache and live calls are off (cache-only replay)")
            )
            record_usage(conn, **ledger, status=status, detail=why)
            return self._skipped(inputs, key, f"LLM skipped: {why}", status)

        size = estimate(sum(len(m["content"]) for m in messages), self.settings)
        reservation = reserve(conn.engine, **ledger, size=size, settings=self.settings, role="analyst")
        if reservation.usage_id is None:
            return self._skipped(inputs, key, f"LLM skipped: {reservation.refused}", "budget_exceeded")

        if self.live_calls_left is not None:
            self.live_calls_left -= 1
            self.live_calls_used += 1
        usage, started = Usage(), time.perf_counter()
        status, answer, problem = "ok", None, ""
        try:
            content, usage = self._complete(messages)
            try:
                answer = _parse(content)
            except _Invalid as first:
                repair = [*messages, {"role": "assistant", "content": content or ""},
                          {"role": "user", "content": REPAIR.format(error=first)}]  # fmt: skip
                content, more = self._complete(repair)
                usage = usage + more
                try:
                    answer, status = _parse(content), "repaired"
                except _Invalid as second:
                    status, problem = "invalid", f"invalid answer after one repair attempt: {second}"
        except openai.APITimeoutError:
            status, problem = "timeout", f"no answer within {self.settings.llm.timeout_s:g} s"
        except openai.APIStatusError as exc:
            status, problem = "error", f"HTTP {exc.status_code} from the endpoint after retries"
        except openai.OpenAIError as exc:  # connection refused, DNS...: the flow goes on without the LLM
            status, problem = "error", f"{type(exc).__name__}: {str(exc)[:200]}"
        latency_ms = round((time.perf_counter() - started) * 1000)
        cost = cost_of(usage, self.settings, self.model)
        settle(conn.engine, reservation.usage_id, status=status, usage=usage, cost=cost, latency_ms=latency_ms,
               detail=problem or None)  # fmt: skip
        if answer is None:
            log.warning("LLM analyst skipped for %s at %s: %s", inputs.symbol, inputs.as_of, problem)
            return self._skipped(inputs, key, f"LLM skipped: {problem}", status, usage, cost, latency_ms)
        cache_response(conn, prompt_hash=key, model=self.model, response_json=answer.model_dump_json(),
                       tokens=usage.total_tokens, prompt_version=self.prompt_version)  # fmt: skip
        return self._opinion(inputs, key, answer, status=status, usage=usage, cost=cost, latency_ms=latency_ms)

    # -- pieces --------------------------------------------------------------------------------------------------------

    # strict is off: providers' strict modes reject parts of a pydantic schema (bounds, lengths); we validate anyway.
    def _complete(self, messages: list[dict[str, str]]) -> tuple[str | None, Usage]:
        # messages and response_format are plain dicts; openai types them as unions of TypedDicts.
        response = self.client.chat.completions.create(  # type: ignore[call-overload]
            model=self.model,
            messages=messages,
            temperature=self.settings.llm.temperature,
            max_tokens=self.settings.llm.max_tokens,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "analyst_opinion", "schema": self.schema, "strict": False},
            },
        )
        usage = (
            Usage(response.usage.prompt_tokens or 0, response.usage.completion_tokens or 0)
            if response.usage
            else Usage()
        )
        content = response.choices[0].message.content if response.choices else None
        return content, usage

    def _cached(self, conn: Connection, key: str) -> LlmAnswer | None:
        cached = cached_response(conn, key)
        if cached is None:
            return None
        try:
            return LlmAnswer.model_validate(cached[0])
        except ValidationError:  # a cache row from an older schema: ask again
            return None

    def _opinion(
        self,
        inputs: AnalystInputs,
        key: str,
        answer: LlmAnswer,
        *,
        status: str,
        usage: Usage,
        cost: Decimal,
        latency_ms: int,
    ) -> AgentOpinion:
        flags = contradictions(answer, inputs.numbers())
        confidence = answer.confidence * (CONTRADICTION_PENALTY if flags else 1.0)
        return AgentOpinion(
            agent=AGENT,
            symbol=inputs.symbol,
            as_of=inputs.as_of,
            action=Action(answer.action),
            confidence=round(confidence, 6),
            rationale=answer.rationale,
            model=self.model,
            prompt_hash=key,
            details={
                "status": status,
                "prompt_version": self.prompt_version,
                "horizon_bars": answer.horizon_bars,
                "key_risks": answer.key_risks,
                "cited_values": [c.model_dump() for c in answer.cited_values],
                "flags": flags,
                "answer_confidence": answer.confidence,
                "tokens": usage.total_tokens,
                "latency_ms": latency_ms,
                "cost": str(cost),
            },
        )

    def _skipped(
        self,
        inputs: AnalystInputs,
        key: str,
        reason: str,
        status: str,
        usage: Usage = Usage(),
        cost: Decimal = Decimal(0),
        latency_ms: int | None = None,
    ) -> AgentOpinion:
        return AgentOpinion(
            agent=AGENT,
            symbol=inputs.symbol,
            as_of=inputs.as_of,
            action=Action.HOLD,
            confidence=0.0,
            rationale=reason,
            model=self.model,
            prompt_hash=key,
            skipped=True,
            details={"status": status, "prompt_version": self.prompt_version, "tokens": usage.total_tokens,
                     "latency_ms": latency_ms, "cost": str(cost)},
        )  # fmt: skip
