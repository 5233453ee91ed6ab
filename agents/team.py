"""The decision team: for each symbol at ``as_of``, read what was known then, ask the agents, vote, size, gate by risk,
and record all of it (ARCHITECTURE §3, §4, §6, §8), in three stages (ARCHITECTURE §5):

1. ``agents.snapshot.read_snapshot``: the point-in-time ``Snapshot`` (I/O);
2. ``consult_llm``: the LLM analyst's answers for the snapshot (I/O: cache, endpoint, usage ledger), then
   ``agents.deciding.decide_snapshot``: opinions, vote, sizing, risk verdicts and intents (pure);
3. ``record_drafts``: the audit rows (I/O).

``decide`` runs the three stages for one step; the live decision flow and the backtest call it (a replay that keeps
no row of a decision that sends nothing calls ``decide_sparse``: the same decisions, only those with an intent
drafted and recorded, ``agents.sparse_step``). What callers can rely on:

- Point in time: it reads the latest ``marts.features`` row with ``known_at <= as_of`` (and the closes before it for
  the strategies) and news first seen in ``(as_of - window, as_of]``; a symbol with no such feature row is skipped
  (no decision, nothing recorded). Memory too: it first scores the account's opinions whose horizon has passed by
  ``as_of`` (``agents.memory``), then weighs agents by outcomes realised by ``as_of`` only, and retrieves similar past
  situations realised by ``as_of`` for the LLM analyst.
- The team: technical analyst (indicators plus momentum and mean-reversion strategies), news analyst (sentiment
  aggregate plus sentiment-shock events), LLM analyst (skipped, and recorded, without an endpoint), weighted vote with
  learned weights, trader, risk gate. With ``StrategyParams(rule="sma_cross")`` only the SMA crossover rule decides
  (no news, no LLM): the rule the vectorized backtest implements, so the two paths can be compared trade for trade.
- Idempotency: ``decision_id`` = hash(account, symbol, timeframe, as_of, config version); when that decision already
  exists it is returned with no intents, so a rerun submits nothing.
- Audit: one ``audit.decisions`` row (inputs: the feature values read with their key and dbt invocation id, news ids
  with their scores, the position, the scorer, the agent weights and the intents that passed risk; the config once per
  version in ``audit.decision_configs``), one ``audit.agent_outputs`` row per agent (a skipped LLM included, with its
  tokens and latency), one ``audit.risk_checks`` row per check per intent, lineage edges to ``marts.features``,
  ``raw.ohlcv`` and ``raw.news``; the agent weights in force in ``audit.agent_weights``.
- The returned ``Decision.intents`` are only the intents every risk check approved.

It writes on the caller's connection and does not commit: the caller's transaction decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection

from agents.audit_buffer import AuditBuffer
from agents.deciding import DecisionDraft, LlmAnswer, analyst_inputs, decide_snapshot
from agents.llm.review import review_drafts
from agents.llm.roles import llm_agent_for
from agents.llm.schema import AnalystInputs
from agents.memory import record_weights, similar_situations
from agents.params import (
    RULES,
    DecisionParams,
    StrategyParams,
    config_version,
    decision_config,
    sizing_params,
)
from agents.recording import decision_record, record_decisions
from agents.replay_memory import ReplayMemory
from agents.sentiment import SentimentScorer, lazy_sentiment_scorer
from agents.snapshot import (
    FEATURE_COLUMNS,
    AccountState,
    KnownKillSwitch,
    MarketSource,
    Snapshot,
    current_positions,
    latest_features,
    read_snapshot,
    recent_closes,
)
from agents.sparse_step import covers, split_quiet
from alphaloom.audit import git_sha
from alphaloom.domain import Action, AgentOpinion, Decision, DecisionId
from alphaloom.records.decisions import decision_head, recorded_opinions
from alphaloom.settings import Settings

__all__ = [
    "FEATURE_COLUMNS",
    "RULES",
    "DecisionParams",
    "LlmAgent",
    "StrategyParams",
    "Team",
    "build_team",
    "config_version",
    "consult_llm",
    "current_positions",
    "decide",
    "decide_sparse",
    "decision_config",
    "latest_features",
    "recent_closes",
    "record_drafts",
    "sizing_params",
]


class LlmAgent(Protocol):
    """An LLM opinion from what the team computed (``agents.llm.LlmAnalyst``): it informs the vote, never orders."""

    def opine(
        self, conn: Connection, *, run_id: str, inputs: AnalystInputs, snapshot: Snapshot | None = None
    ) -> AgentOpinion: ...


@dataclass(frozen=True)
class Team:
    """The parts of the team that hold resources: the sentiment scorer (FinBERT or the lexicon) and the LLM analyst
    (None without an endpoint)."""

    scorer: SentimentScorer
    llm_agent: LlmAgent | None


def build_team(settings: Settings) -> Team:
    """FinBERT when it loads (else the lexicon, recorded; loaded on the first text to score), and the LLM analyst or
    team (``llm_team_mode``) when an endpoint is set (the ``openai`` SDK is imported only then)."""
    return Team(scorer=lazy_sentiment_scorer(settings), llm_agent=llm_agent_for(settings))


def consult_llm(
    conn: Connection, snapshot: Snapshot, params: DecisionParams, llm_agent: LlmAgent | None, *, run_id: str
) -> dict[str, LlmAnswer]:
    """The LLM analyst's answer for every symbol the step decides, with the similar past situations (realised by
    ``as_of``) it was shown; empty without an agent or when only the SMA rule decides."""
    if llm_agent is None or not params.strategy.team_vote:
        return {}
    answers: dict[str, LlmAnswer] = {}
    for symbol in snapshot.symbols:
        features = snapshot.market.features.get(symbol)
        if symbol in snapshot.recorded or features is None:
            continue
        memories = similar_situations(conn, account=snapshot.account, as_of=snapshot.as_of,
                                      values=analyst_inputs(snapshot, symbol, params).features,
                                      params=params.strategy.memory)  # fmt: skip
        inputs = analyst_inputs(snapshot, symbol, params, memories)
        opinion = llm_agent.opine(conn, run_id=run_id, inputs=inputs, snapshot=snapshot)
        answers[symbol] = LlmAnswer(opinion, tuple(memories))
    return answers


def existing_decision(conn: Connection, decision_id: DecisionId) -> Decision | None:
    """A recorded decision with its opinions and no intents (they belong to the run that recorded it)."""
    row = decision_head(conn, decision_id)
    if row is None:
        return None
    opinions = tuple(
        AgentOpinion(
            agent=o.agent,
            symbol=o.symbol,
            as_of=o.as_of,
            action=Action(o.output.get("action", "hold")),
            confidence=float(o.output.get("confidence", 0.0)),
            rationale=o.output.get("rationale", ""),
            model=o.model,
            prompt_hash=o.prompt_hash,
            skipped=o.skipped,
            details=o.output.get("details") or {},
        )
        for o in recorded_opinions(conn, decision_id)
    )
    return Decision(
        decision_id, row.account, row.symbol, row.timeframe, row.as_of, Action(row.action), row.score, opinions
    )


def record_drafts(
    conn: Connection,
    snapshot: Snapshot,
    drafts: Sequence[DecisionDraft],
    *,
    run_id: str,
    audit: AuditBuffer | None = None,
) -> list[Decision]:
    """Record the step: the agent weights in force, then each draft's rows. Returns one ``Decision`` per symbol, in
    the order asked: a recorded one (found in the snapshot, or recorded first by a concurrent run) without intents.
    ``audit``: a replay's buffer holds the rows instead, for its caller to write in bulk (``agents.audit_buffer``)."""
    inserted: set[str] = set()
    if audit is not None:
        audit.weights(account=snapshot.account, as_of=snapshot.as_of, run_id=run_id,
                      weights=snapshot.account_view.weights)  # fmt: skip
    else:
        record_weights(conn, account=snapshot.account, as_of=snapshot.as_of, run_id=run_id,
                       weights=snapshot.account_view.weights)  # fmt: skip
    by_symbol: dict[str, DecisionDraft] = {draft.decision.symbol: draft for draft in drafts}
    if audit is None:  # the step's new decisions in one statement: the audit tables check references per statement
        new = [by_symbol[s] for s in snapshot.symbols if s not in snapshot.recorded and s in by_symbol]
        inserted = record_decisions(
            conn, [decision_record(d.row, outputs=d.outputs, verdicts=d.verdicts, lineage=d.lineage) for d in new]
        )
    decisions: list[Decision] = []
    for symbol in snapshot.symbols:
        if symbol in snapshot.recorded:
            existing = existing_decision(conn, snapshot.decision_ids[symbol])
            if existing is not None:
                decisions.append(existing)
            continue
        draft = by_symbol.get(symbol)
        if draft is None:
            continue
        recorded = audit.decision(draft) if audit is not None else draft.row.decision_id in inserted
        if not recorded:  # a concurrent run recorded it first: it owns the intents
            concurrent = existing_decision(conn, draft.decision.decision_id)
            if concurrent is not None:
                decisions.append(concurrent)
            continue
        decisions.append(draft.decision)
    return decisions


def decide(
    conn: Connection,
    *,
    account: str,
    symbols: Sequence[str],
    as_of: datetime,
    run_id: str,
    settings: Settings,
    scorer: SentimentScorer,
    strategy: StrategyParams | None = None,
    llm_agent: LlmAgent | None = None,
    params: DecisionParams | None = None,
    source: MarketSource | None = None,
    memory: ReplayMemory | None = None,
    account_state: AccountState | None = None,
    audit: AuditBuffer | None = None,
    kill_switch: KnownKillSwitch | None = None,
    answers: Mapping[str, LlmAnswer] | None = None,
) -> list[Decision]:
    """One ``Decision`` per symbol that had features known at ``as_of`` (see the module docstring for guarantees).
    ``params``: the decision parameters when the caller derived them already (a replay, once per run); ``source``: the
    market half of the snapshot from memory (a replay cursor); ``memory``: the account's memory advanced
    in memory by a replay (``agents.replay_memory``), told of every decision this step records; ``account_state``: the
    account's cash and positions in memory (``agents.replay_account``); ``audit``: a replay's buffer of audit rows
    (``agents.audit_buffer``): the step's rows are held there, written when the caller flushes it (flushed here first
    when the LLM analyst is to read the account's past situations); ``kill_switch``: the state a replay read last,
    taken instead of reading it, read again when a draft proposes an order unless it was read less than its
    ``max_age_s`` ago (decided again when it changed);
    ``answers``: the LLM analyst's answers already obtained for this step (``consult_llm`` on the same snapshot, by
    the decision flow's fan-out), used instead of consulting it here."""
    params = params or DecisionParams.from_settings(settings, strategy)
    snapshot = read_snapshot(conn, account=account, symbols=symbols, as_of=as_of, run_id=run_id, settings=settings,
                             params=params, scorer=scorer, source=source, memory=memory,
                             account_state=account_state, outcomes=audit,
                             kill_switch=None if kill_switch is None else kill_switch.state)  # fmt: skip
    if audit is not None and llm_agent is not None and params.strategy.team_vote:
        audit.flush(conn)  # similar_situations reads the outcomes and decisions recorded so far
    if answers is None:
        answers = consult_llm(conn, snapshot, params, llm_agent, run_id=run_id)
    return _draft_and_record(conn, snapshot, params, answers, run_id=run_id, llm_agent=llm_agent, memory=memory,
                             audit=audit, kill_switch=kill_switch)  # fmt: skip


def _draft_and_record(
    conn: Connection,
    snapshot: Snapshot,
    params: DecisionParams,
    answers: Mapping[str, LlmAnswer],
    *,
    run_id: str,
    llm_agent: LlmAgent | None,
    memory: ReplayMemory | None,
    audit: AuditBuffer | None,
    kill_switch: KnownKillSwitch | None,
) -> list[Decision]:
    """The stages after the snapshot: the drafts (decided again on a fresh kill switch state when one proposes an
    order), the LLM's review, the records, and the memory told of every decision recorded."""
    drafts = decide_snapshot(snapshot, params, answers, run_id=run_id, git_sha=git_sha())
    if kill_switch is not None and any(draft.verdicts for draft in drafts):  # an order proposed: the state now
        fresh = kill_switch.refresh(conn)
        if fresh != snapshot.account_view.kill_switch:
            snapshot = replace(snapshot, account_view=replace(snapshot.account_view, kill_switch=fresh))
            drafts = decide_snapshot(snapshot, params, answers, run_id=run_id, git_sha=git_sha())
    drafts = review_drafts(conn, snapshot, drafts, params, llm_agent, run_id=run_id)  # the LLM may only shrink
    decisions = record_drafts(conn, snapshot, drafts, run_id=run_id, audit=audit)
    if memory is not None:
        recorded = {id(decision) for decision in decisions}
        memory.remember([draft for draft in drafts if id(draft.decision) in recorded])
    return decisions


def decide_sparse(
    conn: Connection,
    *,
    account: str,
    symbols: Sequence[str],
    as_of: datetime,
    run_id: str,
    settings: Settings,
    scorer: SentimentScorer,
    params: DecisionParams,
    source: MarketSource,
    memory: ReplayMemory,
    account_state: AccountState,
    audit: AuditBuffer,
    kill_switch: KnownKillSwitch | None = None,
) -> tuple[list[Decision], int]:
    """``decide`` for a replay whose ``audit`` keeps no row of a decision that sends nothing (mode ``none``), with no
    LLM agent: the same snapshot, then only the symbols whose action yields an order intent drafted in full, the
    others decided by their vote and told to ``memory`` (``agents.sparse_step``). Returns the decisions drafted in
    full (every one with an intent among them) and how many others were decided: the memory, the account, the
    orders and the audit rows are those ``decide`` leaves. Raises ``ValueError`` when the audit mode or the
    parameters are not covered (``agents.sparse_step.covers``): call ``decide``."""
    if audit.mode != "none" or not covers(params, llm_agent=False):
        raise ValueError(f"the sparse step does not cover audit {audit.mode!r} or these parameters: use decide")
    snapshot = read_snapshot(conn, account=account, symbols=symbols, as_of=as_of, run_id=run_id, settings=settings,
                             params=params, scorer=scorer, source=source, memory=memory,
                             account_state=account_state, outcomes=audit,
                             kill_switch=None if kill_switch is None else kill_switch.state)  # fmt: skip
    snapshot, quiet = split_quiet(snapshot, params)
    decisions = (  # none to draft: no row either (the mode keeps no weights)
        _draft_and_record(conn, snapshot, params, {}, run_id=run_id, llm_agent=None, memory=memory, audit=audit,
                          kill_switch=kill_switch)
        if snapshot.symbols
        else []
    )  # fmt: skip
    for q in quiet:
        memory.remember_votes(q.decision_id, q.symbol, snapshot.as_of, q.entry, q.votes, q.action, q.score)
    return decisions, len(quiet)
