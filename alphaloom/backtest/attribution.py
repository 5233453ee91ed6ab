"""P&L attribution by agent and by strategy, from the opinions recorded with each trade's entry decision. Pure.

A round trip's net P&L (``ledger.closed_trades``) is credited to the decision that opened it:

- **by agent**: shared among the agents whose opinion pointed the way the entry went (BUY for a long entry), in
  proportion to their vote in the consensus, weight x confidence (the weights the decision recorded); skipped and
  dissenting agents get nothing. A trade no agent voted for is ``unattributed``.
- **by strategy**: each agent's share split further among the parts of its opinion that pushed that way, in
  proportion to their strength: the technical agent's ``indicators`` and each price strategy it blended in
  (``momentum``, ``mean_reversion``), the news agent's ``news_sentiment`` and ``sentiment_shock``, the ``llm``, or
  the one rule of a rule-only run (``sma_cross``). An agent with no such part keeps its share under its own name.

Both splits of one trade sum to its P&L, so each attribution sums to the total closed-trade P&L.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

UNATTRIBUTED = "unattributed"
_DIRECTION = {"buy": 1.0, "sell": -1.0}


def _parts(agent: str, details: Mapping[str, Any], direction: float) -> dict[str, float]:
    """The parts of one opinion that pushed in ``direction``, with their (positive) strengths."""
    if "strategy" in details:  # a rule-only opinion (agents.strategies.sma_cross)
        return {str(details["strategy"]): 1.0}
    if agent == "technical":
        raw = {"indicators": details.get("indicator_score"), **(details.get("signals") or {})}
    elif agent == "news":
        raw = {"news_sentiment": details.get("score"), "sentiment_shock": details.get("event")}
    else:
        raw = {agent: 1.0}
    return {name: float(v) * direction for name, v in raw.items() if v is not None and float(v) * direction > 0}


def vote_shares(
    opinions: Sequence[Mapping[str, Any]], weights: Mapping[str, float], side: str = "buy"
) -> tuple[dict[str, float], dict[str, float]]:
    """(agent shares, strategy shares) of one entry decision, each summing to 1. ``opinions``: dicts with agent,
    action, confidence, skipped and details (as ``audit.agent_outputs`` stores them); ``weights``: agent -> weight
    (1.0 when missing)."""
    direction = _DIRECTION[side]
    votes = {
        o["agent"]: weights.get(o["agent"], 1.0) * float(o["confidence"])
        for o in opinions
        if not o.get("skipped") and _DIRECTION.get(o["action"], 0.0) == direction and float(o["confidence"]) > 0
    }
    total = sum(votes.values())
    if total <= 0:
        return {UNATTRIBUTED: 1.0}, {UNATTRIBUTED: 1.0}
    agents = {agent: vote / total for agent, vote in votes.items()}
    strategies: dict[str, float] = {}
    for o in opinions:
        share = agents.get(o["agent"])
        if share is None:
            continue
        parts = _parts(o["agent"], o.get("details") or {}, direction) or {o["agent"]: 1.0}
        strength = sum(parts.values())
        for name, value in parts.items():
            strategies[name] = strategies.get(name, 0.0) + share * value / strength
    return agents, strategies


def attribute(trades: pd.DataFrame, shares: Mapping[str, Mapping[str, float]]) -> pd.Series:
    """Net P&L per key: each trade's ``pnl`` times its ``entry_decision``'s shares (``unattributed`` when the decision
    has none), summed, largest first."""
    totals: dict[str, float] = {}
    for trade in trades.itertuples():
        for key, share in shares.get(trade.entry_decision, {UNATTRIBUTED: 1.0}).items():
            totals[key] = totals.get(key, 0.0) + float(trade.pnl) * share
    return pd.Series(totals, dtype=float).sort_values(ascending=False)
