"""The team's memory: opinions scored against what happened, agent weights learned from those scores, and similar past
situations retrieved for the LLM prompt.

What callers can rely on:

- ``score_outcomes`` scores every recorded, non-skipped opinion of an account whose horizon has passed by ``as_of``:
  realised return = exit close / entry close - 1, where the entry close is the one the decision read and the exit close
  the newest ``marts.features`` close known at ``realised_at = decision as_of + horizon``. A ``team`` row scores the
  decision itself. Rows go to ``audit.opinion_outcomes`` once (keyed by decision and agent).
- Point in time (ARCHITECTURE §4): ``load_weights`` and ``similar_situations`` at ``as_of`` read only outcomes with
  ``realised_at <= as_of``, whatever else the table holds; a later outcome never leaks into an earlier decision.
- ``agent_weights`` and ``nearest_situations`` are pure: an exponentially weighted hit rate per agent scales its base
  weight; neighbours are the k nearest past decisions on z-scored, scale-free features (numpy, no embedding model).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection

from alphaloom.domain import AccountId, Action, require_utc, timeframe_delta, timeframe_sql_interval
from alphaloom.records import memory as memory_records

TEAM = "team"
_DIRECTION = {Action.BUY.value: 1, Action.SELL.value: -1, Action.HOLD.value: 0}


@dataclass(frozen=True, slots=True)
class MemoryParams:
    """How outcomes are scored and turned into weights; part of the decision's config version."""

    horizon_bars: int = 4
    halflife: float = 20.0
    min_factor: float = 0.25
    max_factor: float = 2.0
    neighbours: int = 3
    max_candidates: int = 2000
    # Opinions not scorable within this many bars (a data gap) are left unscored rather than rescanned forever.
    score_lookback_bars: int = 400

    def as_dict(self) -> dict[str, float]:
        return {
            "horizon_bars": self.horizon_bars,
            "halflife": self.halflife,
            "min_factor": self.min_factor,
            "max_factor": self.max_factor,
            "neighbours": self.neighbours,
            "max_candidates": self.max_candidates,
            "score_lookback_bars": self.score_lookback_bars,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    agent: str
    realised_at: datetime
    hit: bool | None


@dataclass(frozen=True, slots=True)
class AgentWeight:
    agent: str
    weight: float
    hit_rate: float | None
    scored: int


@dataclass(frozen=True, slots=True)
class Memory:
    """A past decision like the present one, with what followed it."""

    decision_id: str
    symbol: str
    as_of: datetime
    action: str
    realised_return: float
    horizon_bars: int
    distance: float
    features: dict[str, float]


# --- scoring ----------------------------------------------------------------------------------------------------------


def action_hit(action: str, realised_return: float) -> bool | None:
    """Whether ``action`` was right about ``realised_return`` (None for a hold: no directional claim)."""
    direction = _DIRECTION.get(action, 0)
    if direction == 0:
        return None  # a HOLD makes no directional claim to be right or wrong about
    return direction * realised_return > 0


def realised(
    action: str, entry_price: float, entry_ts: datetime, exit_price: float, exit_ts: datetime
) -> tuple[float, bool | None]:
    """The realised return, exit / entry - 1 when a newer bar than the entry was known by ``realised_at`` (else 0 and
    no hit: market closed or a data gap, nothing to learn), and whether ``action`` was right (None for a hold)."""
    if not exit_ts > entry_ts:
        return 0.0, None
    realised_return = exit_price / entry_price - 1.0
    return realised_return, action_hit(action, realised_return)


def outcome_record(
    *,
    decision_id: str,
    agent: str,
    account: AccountId,
    symbol: str,
    as_of: datetime,
    realised_at: datetime,
    horizon_bars: int,
    action: str,
    confidence: float,
    entry_price: float,
    entry_ts: datetime,
    exit_price: float,
    exit_ts: datetime,
    run_id: str,
) -> dict[str, Any]:
    """One ``audit.opinion_outcomes`` row (``realised``)."""
    realised_return, hit = realised(action, entry_price, entry_ts, exit_price, exit_ts)
    direction = _DIRECTION.get(action, 0)
    return {
        "decision_id": decision_id,
        "agent": agent,
        "account": account,
        "symbol": symbol,
        "as_of": as_of,
        "realised_at": realised_at,
        "horizon_bars": horizon_bars,
        "action": action,
        "confidence": confidence,
        "entry_price": entry_price,
        "exit_price": exit_price,
        "realised_return": realised_return,
        "hit": hit,
        "score": direction * confidence * realised_return,
        "run_id": run_id,
    }


def insert_outcomes(conn: Connection, records: Sequence[Mapping[str, Any]]) -> None:
    """Store outcome rows (``outcome_record``); a row already scored for its (decision, agent) is kept."""
    memory_records.insert_outcomes(conn, records)


def score_outcomes(
    conn: Connection,
    *,
    account: AccountId,
    as_of: datetime,
    timeframe: str,
    run_id: str,
    params: MemoryParams = MemoryParams(),
) -> int:
    """Score the account's opinions realised by ``as_of`` that are not scored yet; returns how many were scored."""
    as_of = require_utc(as_of, "as_of")
    if not memory_records.features_table_exists(conn):
        return 0
    rows = memory_records.outcome_candidates(
        conn, account=account, as_of=as_of, horizon=params.horizon_bars,
        bar=timeframe_sql_interval(timeframe),  # a month bar's horizon ends at a month start
        since=as_of - timeframe_delta(timeframe) * params.score_lookback_bars,
    )  # fmt: skip
    records = [
        outcome_record(
            decision_id=r.decision_id, agent=r.agent, account=r.account, symbol=r.symbol, as_of=r.as_of,
            realised_at=r.realised_at, horizon_bars=r.horizon_bars, action=r.action, confidence=float(r.confidence),
            entry_price=float(r.entry_price), entry_ts=r.entry_ts, exit_price=float(r.exit_price), exit_ts=r.exit_ts,
            run_id=run_id,
        )
        for r in rows
    ]  # fmt: skip
    insert_outcomes(conn, records)
    return len(records)


def realised_trade_returns(conn: Connection, *, account: AccountId, as_of: datetime, limit: int) -> list[float]:
    """Realised returns of the account's latest ``limit`` buy decisions scored by ``as_of`` (the ``team`` outcomes:
    point in time, never a later one), oldest first: what Kelly sizing estimates its win rate and payoff from."""
    rows = memory_records.buy_returns(conn, account=account, agent=TEAM, as_of=require_utc(as_of, "as_of"), limit=limit)
    return rows[::-1]


# --- weights ----------------------------------------------------------------------------------------------------------


class HitRates:
    """Exponentially weighted hit rates per agent, fed outcomes in ``realised_at`` order one at a time (O(1) each):
    what ``agent_weights`` computes over a list, kept up to date by a replay step by step."""

    def __init__(self, params: MemoryParams = MemoryParams()) -> None:
        self._params = params
        self._alpha = 1.0 - 0.5 ** (1.0 / params.halflife)
        self.rates: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, agent: str, hit: bool | None) -> None:
        if hit is None:
            return
        rate = self.rates.get(agent, 0.5)
        self.rates[agent] = rate + self._alpha * (float(hit) - rate)
        self.counts[agent] = self.counts.get(agent, 0) + 1

    def weights(self, base: Mapping[str, float]) -> dict[str, AgentWeight]:
        """Per agent in ``base``: base * clamp(hit_rate / 0.5, min_factor, max_factor) (base alone before any)."""
        weights = {}
        for agent, base_weight in base.items():
            rate = self.rates.get(agent)
            factor = 1.0 if rate is None else max(self._params.min_factor, min(self._params.max_factor, rate / 0.5))
            weights[agent] = AgentWeight(agent, base_weight * factor, rate, self.counts.get(agent, 0))
        return weights


def agent_weights(
    base: Mapping[str, float], outcomes: Sequence[Outcome], params: MemoryParams = MemoryParams()
) -> dict[str, AgentWeight]:
    """Per agent in ``base``: weight = base * clamp(hit_rate / 0.5, min_factor, max_factor), where hit_rate is the
    exponentially weighted hit rate of its directional outcomes in ``realised_at`` order, starting from 0.5 (so an
    agent with no scored outcome keeps its base weight)."""
    rates = HitRates(params)
    for outcome in sorted(outcomes, key=lambda o: o.realised_at):
        rates.add(outcome.agent, outcome.hit)
    return rates.weights(base)


def load_weights(
    conn: Connection,
    *,
    account: AccountId,
    as_of: datetime,
    base: Mapping[str, float],
    params: MemoryParams = MemoryParams(),
) -> dict[str, AgentWeight]:
    """``agent_weights`` over the account's outcomes realised by ``as_of`` (never later ones)."""
    rows = memory_records.scored_hits(conn, account=account, as_of=require_utc(as_of, "as_of"), agents=sorted(base))
    return agent_weights(base, [Outcome(r.agent, r.realised_at, r.hit) for r in rows], params)


def record_weights(
    conn: Connection, *, account: AccountId, as_of: datetime, run_id: str, weights: Mapping[str, AgentWeight]
) -> None:
    """Keep the weights in force at ``as_of`` in ``audit.agent_weights`` (the first record for a time wins)."""
    memory_records.insert_weights(conn, weight_rows(account=account, as_of=as_of, run_id=run_id, weights=weights))


def weight_rows(
    *, account: str, as_of: datetime, run_id: str, weights: Mapping[str, AgentWeight]
) -> list[tuple[Any, ...]]:
    """The ``audit.agent_weights`` rows of the weights in force at ``as_of`` (``WEIGHT_COLUMNS`` order)."""
    return [(account, w.agent, as_of, w.weight, w.hit_rate, w.scored, run_id) for w in weights.values()]


# --- similar situations -----------------------------------------------------------------------------------------------


def situation_vector(values: Mapping[str, float | None]) -> dict[str, float] | None:
    """Scale-free features describing a market situation (comparable across symbols); None during warm-up."""

    def get(name: str) -> float | None:
        value = values.get(name)
        if value is None:
            return None
        number = float(value)
        return None if math.isnan(number) or math.isinf(number) else number

    close, ema_10, ema_50, macd_hist = get("close"), get("ema_10"), get("ema_50"), get("macd_hist")
    rsi, pct_b, vol, ret = get("rsi_14"), get("bb_pct_b_20"), get("realized_vol_20"), get("ret_1")
    needed = (close, ema_10, ema_50, macd_hist, rsi, pct_b, vol, ret)
    if any(v is None for v in needed) or not close or not ema_50:
        return None
    return {
        "trend": float(ema_10) / float(ema_50) - 1.0,  # type: ignore[arg-type]
        "macd_hist_rel": float(macd_hist) / float(close),  # type: ignore[arg-type]
        "rsi_14": float(rsi),  # type: ignore[arg-type]
        "bb_pct_b_20": float(pct_b),  # type: ignore[arg-type]
        "realized_vol_20": float(vol),  # type: ignore[arg-type]
        "ret_1": float(ret),  # type: ignore[arg-type]
    }


def nearest_situations(
    present: Mapping[str, float], past: Sequence[tuple[Mapping[str, float], Memory]], k: int
) -> list[Memory]:
    """The ``k`` past situations closest to ``present`` in Euclidean distance after z-scoring each feature over the
    past ones and the present (a feature with no spread counts for nothing). Ties keep the more recent first."""
    if not past or k <= 0:
        return []
    names = sorted(present)
    matrix = np.array([[float(vector[n]) for n in names] for vector, _ in past], dtype=float)
    here = np.array([float(present[n]) for n in names], dtype=float)
    stacked = np.vstack([matrix, here])
    std = stacked.std(axis=0)
    std[std == 0] = 1.0
    mean = stacked.mean(axis=0)
    distances = np.sqrt((((matrix - mean) / std - (here - mean) / std) ** 2).sum(axis=1))
    recency = np.array([-m.as_of.timestamp() for _, m in past])
    order = np.lexsort((recency, distances))[:k]
    return [replace(past[i][1], distance=round(float(distances[i]), 6)) for i in order]


def similar_situations(
    conn: Connection,
    *,
    account: AccountId,
    as_of: datetime,
    values: Mapping[str, float | None],
    params: MemoryParams = MemoryParams(),
) -> list[Memory]:
    """The account's past decisions most like ``values``, among those whose outcome was realised by ``as_of``."""
    present = situation_vector(values)
    if present is None:
        return []
    rows = memory_records.past_situations(
        conn, account=account, agent=TEAM, as_of=require_utc(as_of, "as_of"), limit=params.max_candidates
    )
    past: list[tuple[Mapping[str, float], Memory]] = []
    for r in rows:
        values_then = r.values if isinstance(r.values, dict) else json.loads(r.values)
        vector = situation_vector(values_then)
        if vector is None:
            continue
        past.append(
            (
                vector,
                Memory(r.decision_id, r.symbol, r.as_of, r.action, float(r.realised_return), r.horizon_bars, 0.0,
                       {k: round(v, 6) for k, v in vector.items()}),
            )
        )  # fmt: skip
    return nearest_situations(present, past, params.neighbours)
