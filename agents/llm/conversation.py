"""One LLM role's turn: a conversation with an OpenAI-compatible endpoint through the ``openai`` SDK, with function
calling (``agents.llm.tools``) and a validated structured answer.

What callers can rely on from ``Caller.run``:

- Every request is one hashed call: hash of model + messages + tools + output format + sampling. Its reply (content
  or tool calls, with its tokens) is kept in ``audit.llm_cache`` under that hash, so a replay of the same
  conversation is answered from the store call by call: 0 tokens, the same tool calls, the same answer.
- Every call is paid within the caps: reserved before and settled after (``agents.llm.budget``); a cap reached, a
  cache miss in cache-only mode, a timeout or an HTTP error ends the role with that status (recorded in
  ``audit.llm_usage``), never an exception.
- Tool calls are bounded (``llm_tool_calls_per_role``): past the bound the tools are no longer offered and calls get
  a ``refused`` answer. Malformed tool arguments get a ``refused`` answer too.
- The answer is validated against the role's pydantic model; one repair request is made when it is not valid.
- Every message, tool call and tool answer is appended to the caller's transcript (``Turn``).
- Structured output: a JSON-schema ``response_format`` where the role's endpoint supports it
  (``structured_output="json_schema"``), else JSON mode with the schema in the system prompt. An endpoint that
  answers a JSON-schema request with HTTP 400 is asked again in JSON mode (remembered for the rest of the run).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import openai
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection

from agents.llm.budget import LedgerKey, Usage, cost_of, estimate, record_usage, reserve, settle
from agents.llm.prompts import REPAIR
from agents.llm.roles import RoleEndpoint
from agents.llm.tools import TOOL_SPECS, ToolBox
from alphaloom.domain import stable_hash
from alphaloom.records.llm_ledger import cache_response, cached_response
from alphaloom.settings import Settings

log = logging.getLogger(__name__)

PROMPT_VERSION = "team-v1"
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


@dataclass(frozen=True)
class Turn:
    """One entry of a debate's transcript: ``kind`` is message, tool_call, tool_answer, answer or skipped."""

    role: str
    kind: str
    content: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"role": self.role, "kind": self.kind, "content": dict(self.content)}


@dataclass
class Outcome:
    """What one role's turn came to: ``answer`` None when it was skipped (``status``/``problem`` say why)."""

    answer: BaseModel | None
    status: str
    problem: str = ""
    usage: Usage = field(default_factory=Usage)
    cost: Decimal = field(default_factory=Decimal)
    latency_ms: int = 0
    calls: int = 0
    cached: int = 0
    tool_calls: int = 0
    hashes: list[str] = field(default_factory=list)


class _NoJsonSchema(Exception):
    """The endpoint refused the JSON-schema output format (HTTP 400)."""


class _Stop(Exception):
    def __init__(self, status: str, problem: str) -> None:
        super().__init__(problem)
        self.status, self.problem = status, problem


@dataclass(frozen=True)
class _Reply:
    content: str | None
    tool_calls: tuple[dict[str, str], ...]
    usage: Usage

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [{"id": c["id"], "type": "function",
                                      "function": {"name": c["name"], "arguments": c["arguments"]}}
                                     for c in self.tool_calls]  # fmt: skip
        return message


def _parse(model: type[BaseModel], content: str | None) -> BaseModel:
    if not content:
        raise ValueError("empty answer")
    stripped = content.strip()
    fenced = _FENCE.match(stripped)
    try:
        return model.model_validate_json(fenced.group(1) if fenced else stripped)
    except ValidationError as exc:
        raise ValueError(f"{exc.error_count()} schema error(s): {exc.errors(include_url=False)[:3]}") from None


@functools.cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


class Caller:
    """Asks roles' endpoints for one team (clients per endpoint; ``live_calls`` as ``LlmAnalyst``: 0 is cache only,
    n allows n paid calls, None leaves only the budgets). ``client``: one client for every role (tests)."""

    def __init__(self, settings: Settings, *, client: openai.OpenAI | None = None, live_calls: int | None = None):
        self.settings = settings
        self._shared = client
        self._clients: dict[tuple[str | None, str], openai.OpenAI] = {}
        self.live_calls_left = live_calls
        self.live_calls_used = 0
        self._json_mode: set[tuple[str | None, str]] = set()  # endpoints that refused JSON-schema output

    def client(self, endpoint: RoleEndpoint) -> openai.OpenAI:
        if self._shared is not None:
            return self._shared
        key = endpoint.api_key.get_secret_value() if endpoint.api_key else "not-needed"
        slot = (endpoint.base_url, stable_hash(key, length=16))
        if slot not in self._clients:
            self._clients[slot] = openai.OpenAI(base_url=endpoint.base_url, api_key=key,
                                                timeout=self.settings.llm.timeout_s,
                                                max_retries=self.settings.llm.max_retries)  # fmt: skip
        return self._clients[slot]

    def run(
        self,
        conn: Connection,
        *,
        run_id: str,
        symbol: str,
        as_of: datetime,
        endpoint: RoleEndpoint,
        messages: list[dict[str, Any]],
        answer_model: type[BaseModel],
        toolbox: ToolBox | None,
        transcript: list[Turn],
    ) -> Outcome:
        """``endpoint.role``'s answer to ``messages`` (see the module docstring)."""
        if (endpoint.base_url, endpoint.model) in self._json_mode:
            endpoint = dataclasses.replace(endpoint, structured_output="json_object")
        try:
            return self._run(conn, run_id=run_id, symbol=symbol, as_of=as_of, endpoint=endpoint, messages=messages,
                             answer_model=answer_model, toolbox=toolbox, transcript=transcript)  # fmt: skip
        except _NoJsonSchema:
            self._json_mode.add((endpoint.base_url, endpoint.model))
            json_mode = dataclasses.replace(endpoint, structured_output="json_object")
            return self._run(conn, run_id=run_id, symbol=symbol, as_of=as_of, endpoint=json_mode, messages=messages,
                             answer_model=answer_model, toolbox=toolbox, transcript=transcript)  # fmt: skip

    def _run(
        self,
        conn: Connection,
        *,
        run_id: str,
        symbol: str,
        as_of: datetime,
        endpoint: RoleEndpoint,
        messages: list[dict[str, Any]],
        answer_model: type[BaseModel],
        toolbox: ToolBox | None,
        transcript: list[Turn],
    ) -> Outcome:
        schema = _schema(answer_model)
        messages = [dict(m) for m in messages]
        if endpoint.structured_output == "json_object":
            messages[0]["content"] += ("\nAnswer with only one JSON object matching this JSON schema: "
                                       + json.dumps(schema, sort_keys=True))  # fmt: skip
            response_format: dict[str, Any] = {"type": "json_object"}
        else:
            response_format = {"type": "json_schema",
                               "json_schema": {"name": answer_model.__name__.lower(), "schema": schema,
                                               "strict": False}}  # fmt: skip
        transcript.extend(Turn(endpoint.role, "message", m) for m in messages)
        outcome = Outcome(None, "ok")
        tool_budget, repaired = self.settings.llm.tool_calls_per_role, False
        started = time.perf_counter()
        try:
            for _ in range(tool_budget + 3):
                offer_tools = toolbox is not None and outcome.tool_calls < tool_budget
                reply = self._ask(conn, run_id, symbol, as_of, endpoint, messages, response_format, offer_tools,
                                  outcome)  # fmt: skip
                messages.append(reply.message())
                if reply.tool_calls:
                    for call in reply.tool_calls:
                        transcript.append(Turn(endpoint.role, "tool_call", call))
                        if toolbox is None or outcome.tool_calls >= tool_budget:
                            answer: dict[str, Any] = {"refused": f"tool call limit reached ({tool_budget} per "
                                                      "role): answer with what you have"}  # fmt: skip
                        else:
                            answer = toolbox.call(call["name"], call["arguments"])
                        outcome.tool_calls += 1
                        transcript.append(Turn(endpoint.role, "tool_answer", {"id": call["id"], **answer}))
                        messages.append({"role": "tool", "tool_call_id": call["id"],
                                         "content": json.dumps(answer, sort_keys=True)})  # fmt: skip
                    continue
                transcript.append(Turn(endpoint.role, "message", {"role": "assistant", "content": reply.content}))
                try:
                    outcome.answer = _parse(answer_model, reply.content)
                except ValueError as exc:
                    if repaired:
                        raise _Stop("invalid", f"invalid answer after one repair attempt: {exc}") from None
                    repaired = True
                    repair = {"role": "user", "content": REPAIR.format(error=exc)}
                    messages.append(repair)
                    transcript.append(Turn(endpoint.role, "message", repair))
                    continue
                break
            else:
                raise _Stop("invalid", "no answer within the bounded number of turns")
            outcome.status = "cached" if outcome.calls == 0 else ("repaired" if repaired else "ok")
            transcript.append(Turn(endpoint.role, "answer", outcome.answer.model_dump(mode="json")))
        except _Stop as stop:
            outcome.answer, outcome.status, outcome.problem = None, stop.status, stop.problem
            transcript.append(Turn(endpoint.role, "skipped", {"status": stop.status, "problem": stop.problem}))
            log.warning("LLM %s skipped for %s at %s: %s", endpoint.role, symbol, as_of, stop.problem)
        outcome.latency_ms = round((time.perf_counter() - started) * 1000)
        return outcome

    # -- one request ---------------------------------------------------------------------------------------------------

    def _ask(
        self,
        conn: Connection,
        run_id: str,
        symbol: str,
        as_of: datetime,
        endpoint: RoleEndpoint,
        messages: list[dict[str, Any]],
        response_format: dict[str, Any],
        offer_tools: bool,
        outcome: Outcome,
    ) -> _Reply:
        request: dict[str, Any] = {
            "model": endpoint.model, "messages": messages, "response_format": response_format,
            "temperature": self.settings.llm.temperature, "max_tokens": self.settings.llm.max_tokens,
        }  # fmt: skip
        if offer_tools:
            request["tools"] = list(TOOL_SPECS)
        key = stable_hash(PROMPT_VERSION, json.dumps(request, sort_keys=True, default=str), length=64)
        outcome.hashes.append(key)
        ledger: LedgerKey = {
            "run_id": run_id, "symbol": symbol, "as_of": as_of, "model": endpoint.model, "prompt_hash": key,
        }  # fmt: skip
        cached = cached_response(conn, key)
        if cached is not None:
            record_usage(conn, **ledger, status="cached")
            outcome.cached += 1
            stored = cached[0]
            return _Reply(stored.get("content"), tuple(stored.get("tool_calls") or ()), Usage())
        if self.live_calls_left == 0:
            status, why = (
                ("budget_exceeded", "live-call budget reached")
                if self.live_calls_used
                else ("cache_miss", "not in the response cache and live calls are off (cache-only)")
            )
            record_usage(conn, **ledger, status=status, detail=why)
            raise _Stop(status, why)  # fmt: skip
        size = estimate(len(json.dumps(messages)), self.settings)
        reservation = reserve(conn.engine, **ledger, size=size, settings=self.settings, role=endpoint.role)
        if reservation.usage_id is None:
            raise _Stop("budget_exceeded", reservation.refused or "budget reached")
        if self.live_calls_left is not None:
            self.live_calls_left -= 1
            self.live_calls_used += 1
        outcome.calls += 1
        problem: str | None
        started, status, problem, usage = time.perf_counter(), "error", "no reply", Usage()
        reply: _Reply | None = None
        try:
            reply = self._complete(endpoint, request)
            status, problem, usage = "ok", None, reply.usage
            return reply
        except openai.APITimeoutError:
            status, problem = "timeout", f"no answer within {self.settings.llm.timeout_s:g} s"
            raise _Stop(status, problem) from None
        except openai.BadRequestError as exc:
            status, problem = "error", f"HTTP {exc.status_code} from the endpoint"
            if response_format["type"] == "json_schema":
                problem += ": JSON-schema output refused, asking again in JSON mode"
                raise _NoJsonSchema from None
            raise _Stop(status, problem) from None
        except openai.APIStatusError as exc:
            status, problem = "error", f"HTTP {exc.status_code} from the endpoint after retries"
            raise _Stop(status, problem) from None
        except openai.OpenAIError as exc:
            status, problem = "error", f"{type(exc).__name__}: {str(exc)[:200]}"
            raise _Stop(status, problem) from None
        finally:
            cost = cost_of(usage, self.settings, endpoint.model)
            outcome.usage, outcome.cost = outcome.usage + usage, outcome.cost + cost
            settle(conn.engine, reservation.usage_id, status=status, usage=usage, cost=cost,
                   latency_ms=round((time.perf_counter() - started) * 1000), detail=problem)  # fmt: skip
            if reply is not None:
                stored = {"content": reply.content, "tool_calls": list(reply.tool_calls)}
                cache_response(conn, prompt_hash=key, model=endpoint.model, response_json=json.dumps(stored),
                               tokens=usage.total_tokens, prompt_version=PROMPT_VERSION)  # fmt: skip

    def _complete(self, endpoint: RoleEndpoint, request: dict[str, Any]) -> _Reply:
        response = self.client(endpoint).chat.completions.create(**request)
        usage = (Usage(response.usage.prompt_tokens or 0, response.usage.completion_tokens or 0)
                 if response.usage else Usage())  # fmt: skip
        if not response.choices:
            return _Reply(None, (), usage)
        message = response.choices[0].message
        calls = tuple(
            {"id": c.id, "name": c.function.name, "arguments": c.function.arguments or ""}
            for c in (message.tool_calls or ())
            if getattr(c, "function", None) is not None
        )
        return _Reply(message.content, calls, usage)
