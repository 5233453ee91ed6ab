"""The LLM team (``LlmSettings.team_mode`` "compact" or "debate"): in debate mode a fundamental analyst who reads
the earnings reports and filings known at the decision first (only when there is one: otherwise it is recorded as
skipped, with no call and no cost) and whose view opens the debate, bull and bear researchers who argue for
``llm_debate_rounds`` rounds from the same evidence, a research manager who writes the verdict, and a risk reviewer
who may only shrink or veto what the numeric risk gate approved; or one compact call playing all of them. Roles call
point-in-time tools (``agents.llm.tools``).

What callers can rely on:

- ``LlmTeam.opine`` returns the team's opinion as agent ``llm`` (the manager's verdict, contradiction-checked like
  the analyst's), so it enters the vote with the ``llm`` learned weight; bull and bear cases are in its details.
  It never raises for the endpoints' sake: a role skipped (budget, timeout, error, invalid answer, cache miss) is
  recorded and the team goes on; without a verdict the opinion is skipped.
- Every message, tool call and tool answer of the decision is stored in ``audit.llm_transcripts`` under the
  transcript hash, which is the opinion's ``prompt_hash``; each call is replayed from ``audit.llm_cache``
  (``agents.llm.conversation``), so a replay costs 0 tokens and gives the same opinion.
- ``LlmTeam.review`` is the risk reviewer's answer (``RiskReview``) for a decided draft's approved orders: from the
  compact answer in compact mode, from a ``risk`` role call in debate mode; applied by ``agents.llm.review``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import openai
from pydantic import BaseModel
from sqlalchemy import Connection

from agents.llm.budget import Usage, price_of
from agents.llm.checks import contradictions
from agents.llm.conversation import Caller, Outcome, Turn
from agents.llm.roles import role_endpoint, team_configured, team_roles
from agents.llm.schema import AnalystInputs, LlmAnswer
from agents.llm.team_prompts import TEAM_PROMPT_VERSION, role_messages
from agents.llm.team_schema import Case, CompactAnswer, FundamentalView, RiskReview
from agents.llm.tools import ToolBox, features_history
from agents.snapshot import Snapshot
from alphaloom.domain import Action, AgentOpinion, Symbol, stable_hash
from alphaloom.errors import ConfigError
from alphaloom.records.llm_ledger import insert_transcript
from alphaloom.settings import Settings

AGENT = "llm"
CONTRADICTION_PENALTY = 0.5
NO_REPORT = "no earnings report or filing known at the decision time"


class LlmTeam:
    """The team for ``settings`` (mode "compact" or "debate"); ``ConfigError`` when a role has no endpoint."""

    name = AGENT

    def __init__(self, settings: Settings, *, client: openai.OpenAI | None = None, live_calls: int | None = None):
        if settings.llm.team_mode == "analyst":
            raise ConfigError("llm_team_mode is 'analyst': use LlmAnalyst")
        if live_calls is not None and live_calls < 0:
            raise ConfigError(f"live_calls must be >= 0 (0: cache only), got {live_calls}")
        if client is None and not team_configured(settings):
            raise ConfigError("an LLM team role has no endpoint: set llm_base_url or llm_roles.<role>.base_url")
        for _, model in settings.llm.role_models:
            price_of(model, settings)  # an unpriced model is refused here, before any call (ConfigError)
        self.settings = settings
        self.mode = settings.llm.team_mode
        self.roles = team_roles(settings)
        self.caller = Caller(settings, client=client, live_calls=live_calls)
        self.model = role_endpoint(settings, "compact" if self.mode == "compact" else "manager").model

    # -- the opinion ---------------------------------------------------------------------------------------------------

    def opine(
        self, conn: Connection, *, run_id: str, inputs: AnalystInputs, snapshot: Snapshot | None = None
    ) -> AgentOpinion:
        """The team's opinion on ``inputs.symbol`` (see the module docstring). Without ``snapshot`` no tools."""
        toolbox = None
        if snapshot is not None:
            history = features_history(conn, snapshot, inputs.timeframe)
            toolbox = ToolBox(snapshot, memories=inputs.memories, history=history)
        transcript: list[Turn] = []
        outcomes: dict[str, Outcome] = {}

        def ask(role: str, model: type[BaseModel], **extra: Any) -> Outcome:
            outcome = self.caller.run(conn, run_id=run_id, symbol=inputs.symbol, as_of=inputs.as_of,
                                      endpoint=role_endpoint(self.settings, role),
                                      messages=role_messages(role, inputs, **extra), answer_model=model,
                                      toolbox=toolbox, transcript=transcript)  # fmt: skip
            outcomes[f"{role}#{len(outcomes)}"] = outcome
            return outcome

        cases: list[dict[str, Any]] = []
        risk: dict[str, Any] | None = None
        if self.mode == "compact":
            outcome = ask("compact", CompactAnswer)
            compact = outcome.answer
            verdict = compact.verdict if isinstance(compact, CompactAnswer) else None
            if isinstance(compact, CompactAnswer):
                cases = [{"side": "bull", "round": 1, "argument": compact.bull_case},
                         {"side": "bear", "round": 1, "argument": compact.bear_case}]  # fmt: skip
                risk = compact.risk.model_dump(mode="json")
        else:
            if "fundamental" in self.roles:
                cases.extend(self._fundamental(inputs, ask))
            for round_no in range(1, self.settings.llm.debate_rounds + 1):
                for side in ("bull", "bear"):
                    said = ask(side, Case, debate=cases)
                    case = said.answer
                    cases.append({"side": side, "round": round_no,
                                  **(case.model_dump(mode="json") if isinstance(case, Case)
                                     else {"skipped": f"{said.status}: {said.problem}"})})  # fmt: skip
            outcome = ask("manager", LlmAnswer, debate=cases)
            verdict = outcome.answer if isinstance(outcome.answer, LlmAnswer) else None

        key = store_transcript(conn, run_id=run_id, symbol=inputs.symbol, as_of=inputs.as_of, transcript=transcript)
        spent = _spent(outcomes.values())
        details: dict[str, Any] = {
            "status": outcome.status, "mode": self.mode, "prompt_version": TEAM_PROMPT_VERSION,
            "rounds": self.settings.llm.debate_rounds if self.mode == "debate" else 1, "debate": cases,
            "roles": {name: {"status": o.status, "problem": o.problem, "calls": o.calls, "cached": o.cached,
                             "tool_calls": o.tool_calls, "tokens": o.usage.total_tokens} for name, o in outcomes.items()},
            **spent, "transcript_hash": key,
        }  # fmt: skip
        if "fundamental" in self.roles and not inputs.earnings:
            details["roles"]["fundamental"] = {"status": "skipped", "problem": NO_REPORT, "calls": 0, "cached": 0,
                                               "tool_calls": 0, "tokens": 0}  # fmt: skip
        if verdict is None:
            return AgentOpinion(AGENT, inputs.symbol, inputs.as_of, Action.HOLD, 0.0,
                                f"LLM team skipped: {outcome.status}: {outcome.problem}", model=self.model,
                                prompt_hash=key, skipped=True, details=details)  # fmt: skip
        flags = contradictions(verdict, inputs.numbers())
        if risk is not None:
            details["risk_review"] = risk
        details |= {"horizon_bars": verdict.horizon_bars, "key_risks": verdict.key_risks,
                    "cited_values": [c.model_dump() for c in verdict.cited_values], "flags": flags,
                    "answer_confidence": verdict.confidence}  # fmt: skip
        confidence = verdict.confidence * (CONTRADICTION_PENALTY if flags else 1.0)
        return AgentOpinion(AGENT, inputs.symbol, inputs.as_of, Action(verdict.action), round(confidence, 6),
                            verdict.rationale, model=self.model, prompt_hash=key, details=details)  # fmt: skip

    @staticmethod
    def _fundamental(inputs: AnalystInputs, ask: Callable[..., Outcome]) -> list[dict[str, Any]]:
        """The fundamental analyst's view as the debate's opening entry (round 0), when an earnings report or filing
        is known at the decision; none when there is none (no call: ``opine`` records the role as skipped)."""
        if not inputs.earnings:
            return []
        said = ask("fundamental", FundamentalView)
        view = said.answer
        return [{"side": "fundamental", "round": 0,
                 **(view.model_dump(mode="json") if isinstance(view, FundamentalView)
                    else {"skipped": f"{said.status}: {said.problem}"})}]  # fmt: skip

    # -- the risk reviewer ---------------------------------------------------------------------------------------------

    def review(
        self,
        conn: Connection,
        *,
        run_id: str,
        snapshot: Snapshot,
        inputs: AnalystInputs,
        opinion: AgentOpinion | None,
        orders: Sequence[Mapping[str, Any]],
    ) -> tuple[RiskReview | None, dict[str, Any]]:
        """The reviewer's answer on ``orders`` (the approved intents, with the numeric gate's verdicts) and what it
        cost; (None, why) when it was skipped. Compact mode reads the review from the compact answer."""
        if self.mode == "compact":
            stored = opinion.details.get("risk_review") if opinion is not None and not opinion.skipped else None
            if stored is None:
                return None, {"status": "skipped", "problem": "no compact answer to take the review from"}
            return RiskReview.model_validate(stored), {"status": "compact", "tokens": 0}
        transcript: list[Turn] = []
        toolbox = ToolBox(
            snapshot, memories=inputs.memories, history=features_history(conn, snapshot, inputs.timeframe)
        )
        verdict = (
            None
            if opinion is None
            else {
                "action": opinion.action.value,
                "confidence": opinion.confidence,
                "rationale": opinion.rationale,
                "skipped": opinion.skipped,
            }
        )
        outcome = self.caller.run(conn, run_id=run_id, symbol=inputs.symbol, as_of=inputs.as_of,
                                  endpoint=role_endpoint(self.settings, "risk"),
                                  messages=role_messages("risk", inputs, extra={"verdict": verdict,
                                                                                "orders": list(orders)}),
                                  answer_model=RiskReview, toolbox=toolbox, transcript=transcript)  # fmt: skip
        key = store_transcript(conn, run_id=run_id, symbol=inputs.symbol, as_of=inputs.as_of, transcript=transcript)
        info = {"status": outcome.status, "problem": outcome.problem, "transcript_hash": key,
                **_spent([outcome])}  # fmt: skip
        return (outcome.answer if isinstance(outcome.answer, RiskReview) else None), info


def _spent(outcomes: Sequence[Outcome] | Any) -> dict[str, Any]:
    outcomes = list(outcomes)
    usage = sum((o.usage for o in outcomes), Usage())
    return {"tokens": usage.total_tokens, "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens, "calls": sum(o.calls for o in outcomes),
            "cached_calls": sum(o.cached for o in outcomes), "tool_calls": sum(o.tool_calls for o in outcomes),
            "latency_ms": sum(o.latency_ms for o in outcomes),
            "cost": str(sum((o.cost for o in outcomes), Decimal(0)))}  # fmt: skip


def transcript_hash(transcript: Sequence[Turn]) -> str:
    """The hash of every message, tool call and tool answer, in order."""
    return stable_hash(TEAM_PROMPT_VERSION, json.dumps([t.as_dict() for t in transcript], sort_keys=True,
                                                       default=str), length=64)  # fmt: skip


def store_transcript(conn: Connection, *, run_id: str, symbol: str, as_of: Any, transcript: Sequence[Turn]) -> str:
    """Keep ``transcript`` in ``audit.llm_transcripts`` (once per hash: a replay finds it there) and return its
    hash. Written on the caller's connection, like the decision it belongs to."""
    key = transcript_hash(transcript)
    insert_transcript(conn, transcript_hash=key, run_id=run_id, symbol=Symbol(symbol), as_of=as_of,
                      turns=[(t.role, t.kind, t.content) for t in transcript])  # fmt: skip
    return key
