"""A replay's sparse decision step (ARCHITECTURE §5): for a replay whose audit keeps no row of a decision that sends
nothing (``--audit none``), only the symbols whose action yields an order intent are drafted in full
(``agents.deciding.decide_snapshot``: read, opinions, vote, sizing, risk, drafts, recording); the others are decided
by their vote alone and only told to the memory.

What callers can rely on:

- ``split_quiet`` gives every symbol the action and score ``decide_snapshot`` gives it: the same opinions' actions
  and confidences (``technical_vote``, ``sma_cross_vote``: the same values as the opinions, without their rationale;
  the news, earnings and social analysts' own opinions), the same weighted vote (``agents.consensus.consensus``,
  the learned weights of the step). The technical vote and the decision's entry come from the market view's
  ``TechnicalAhead`` when it holds them for these parameters (a replay cursor computes its window's at load, over
  arrays: ``agents.technical.technical_votes_of_columns``); the other analysts' votes on a symbol with no story and
  no post are worked out once per step (they do not depend on the symbol). A symbol is quiet when that action yields
  no intent given its position (neither ``agents.trader.opens_position`` nor ``closes_position``):
  ``decide_snapshot`` would give it no intent, no verdict and no change of the portfolio context the next symbols
  see, so drafting the rest alone gives them the same drafts.
- A ``QuietDecision`` holds what ``agents.replay_memory.ReplayMemory.remember_votes`` needs: the memory learns from
  it exactly as from the draft.
- Not covered (``covers`` False: the caller decides every symbol in full): an LLM agent (it reads each snapshot and
  may review drafts) and the pattern analyst (it reads the bars). Execution's options (TWAP splits, iceberg) do not
  matter here: they act on the intents, which are drafted in full.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, NamedTuple

from agents.deciding import entry_of, event_opinions, feature_values, learned_consensus, price_signals, vote
from agents.news import news_opinion
from agents.params import DecisionParams
from agents.snapshot import Snapshot, TechnicalAhead, utc
from agents.strategies import sentiment_shock
from agents.strategies.sma_cross import sma_cross_vote
from agents.technical import AGENT as TECHNICAL
from agents.technical import NEEDED as TECHNICAL_COLUMNS
from agents.technical import technical_vote
from agents.trader import closes_position, opens_position
from alphaloom.domain import Action, AgentOpinion, DecisionId, NewsItem, Symbol
from alphaloom.ingest.social_post import SocialPost


class Vote(NamedTuple):
    """An opinion that counts, as the vote and the memory read it (``agents.consensus.Opinion``,
    ``agents.replay_memory.ReplayMemory.remember_votes``): an ``AgentOpinion``'s fields without its rationale."""

    agent: str
    action: Action
    confidence: float
    details: Mapping[str, Any] | None = None
    skipped: bool = False


Said = Vote | AgentOpinion


class QuietDecision(NamedTuple):
    """A decision that sends nothing: what the memory learns from it (a named tuple: one is made per symbol-step)."""

    decision_id: DecisionId
    symbol: Symbol
    entry: tuple[float | None, datetime]
    votes: tuple[Said, ...]
    action: Action
    score: float


def covers(params: DecisionParams, *, llm_agent: bool) -> bool:
    """Whether the sparse step decides as the full one for these parameters (see the module docstring)."""
    return not llm_agent and not params.strategy.patterns.enabled


def split_quiet(snapshot: Snapshot, params: DecisionParams) -> tuple[Snapshot, list[QuietDecision]]:
    """``snapshot`` restricted to the symbols to draft in full (those whose action yields an intent, and those
    ``decide_snapshot`` and ``agents.team.record_drafts`` handle without drafting: recorded, no feature row), and the
    quiet decisions of the others, in the order asked."""
    market, positions = snapshot.market, snapshot.account_view.positions
    strategy, team_vote = params.strategy, params.strategy.team_vote
    learned = learned_consensus(params, snapshot.account_view.weights) if team_vote else None
    ahead = _own(market.technical, params) if team_vote else None
    features_of, news_of, social_of = market.features, market.news, market.social
    recorded, decision_ids = snapshot.recorded, snapshot.decision_ids
    drafted: list[Symbol] = []
    quiet: list[QuietDecision] = []
    silent: tuple[AgentOpinion, ...] | None = None  # the other analysts' votes on a symbol with no story and no post
    for symbol in snapshot.symbols:
        features = features_of.get(symbol)
        if features is None or symbol in recorded:
            drafted.append(symbol)
            continue
        votes: tuple[Said, ...]
        if not team_vote:  # the one rule reads the closes: of the row, only the entry (not its technical values)
            entry = _entry(features)
            votes = (Vote(TECHNICAL, *sma_cross_vote(market.closes[symbol], strategy.sma_cross)),)
        else:
            if ahead is not None:  # the technical vote and the entry computed ahead
                technical, entry = ahead[symbol]
            else:
                values = feature_values(features, TECHNICAL_COLUMNS)
                technical, entry = None, entry_of(values, utc(features["ts"]))
            if technical is None:
                closes = market.closes[symbol]
                technical = technical_vote(values, strategy.technical, price_signals(market, symbol, closes, params))
            news, posts = news_of.get(symbol, ()), social_of.get(symbol, ())
            if news or posts:
                others = _other_votes(snapshot, params, symbol, news, posts)
            else:  # nothing to read: the same votes for every such symbol of the step
                if silent is None:
                    silent = _other_votes(snapshot, params, symbol, (), ())
                others = silent
            votes = (Vote(TECHNICAL, *technical), *others)
        action, score = vote(votes, learned)
        quantity = positions[symbol][0]
        if opens_position(action, quantity) or closes_position(action, quantity):
            drafted.append(symbol)
            continue
        quiet.append(QuietDecision(decision_ids[symbol], symbol, entry, votes, action, score))
    if not quiet:
        return snapshot, quiet
    return replace(snapshot, symbols=tuple(drafted)), quiet


def _entry(features: Mapping[str, Any]) -> tuple[float | None, datetime]:
    """``agents.deciding.entry_of`` of the row's close alone (the one value of ``feature_values`` it reads)."""
    return entry_of(feature_values(features, ("close",)), utc(features["ts"]))


def _own(
    ahead: TechnicalAhead | None, params: DecisionParams
) -> Mapping[str, tuple[tuple[Action, float], tuple[float | None, datetime]]] | None:
    """The votes computed ahead when they are for these parameters (the cursor's own objects, usually), else None."""
    strategy = params.strategy
    if (
        ahead is None
        or not (ahead.technical is strategy.technical or ahead.technical == strategy.technical)
        or not (ahead.momentum is strategy.momentum or ahead.momentum == strategy.momentum)
        or not (ahead.mean_reversion is strategy.mean_reversion or ahead.mean_reversion == strategy.mean_reversion)
    ):
        return None
    return ahead.by_symbol


def _other_votes(
    snapshot: Snapshot, params: DecisionParams, symbol: Symbol, news: Sequence[NewsItem], posts: Sequence[SocialPost]
) -> tuple[AgentOpinion, ...]:
    """The opinions after the technical one that count in the team's vote, in ``agents.deciding._opinions``' order:
    news (the LLM's is skipped: no agent), then earnings and social when they speak, from the symbol's stories and
    posts known at the step. None of their actions, confidences or details depends on the symbol itself."""
    market, strategy, as_of = snapshot.market, params.strategy, snapshot.as_of
    scores = {item.id: market.scores[item.id] for item in news}
    event = sentiment_shock([scores[item.id].score for item in news], symbol, strategy.event)
    told = news_opinion(symbol, as_of, scores, strategy.news, event)
    spoken = event_opinions(as_of, params, symbol, news, list(posts), market.social_scores)
    return (told, *spoken)
