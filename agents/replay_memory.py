"""The team's memory advanced by a replay step by step, in memory: what ``agents.memory.score_outcomes``,
``load_weights`` and ``realised_trade_returns`` compute from the database at each ``as_of``, at O(1) per opinion
instead of a rescan of the account's history every step (ARCHITECTURE §5).

What callers can rely on:

- It holds a replay's own account: every decision of that account passes through ``remember`` (a backtest account is
  created fresh for its run, so nothing else wrote to it).
- ``advance(as_of)`` scores the opinions whose horizon has passed by ``as_of`` exactly as ``score_outcomes`` would
  (entry: the close the decision read; exit: the newest feature row known at ``realised_at``, from the replay cursor;
  an opinion older than the scoring lookback or without prices is never scored) and returns the rows to store.
- ``recorded(ids)`` equals ``agents.snapshot.recorded_decisions`` for the account's decisions (all were remembered).
- ``weights()`` equals ``load_weights`` at the last ``as_of`` advanced to, and ``trades()`` the statistics of
  ``realised_trade_returns`` (the latest ``lookback`` realised buys, oldest first): same order of ties, same floats.
"""

from __future__ import annotations

import heapq
from bisect import insort
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from agents.consensus import Opinion
from agents.deciding import DecisionDraft
from agents.memory import TEAM, AgentWeight, HitRates, MemoryParams, action_hit, outcome_record, realised
from agents.replay_cursor import ReplayCursor
from agents.risk.sizing import TradeStats, trade_stats
from alphaloom.domain import Action, timeframe_delta

_HOLD = Action.HOLD.value
_ACTION_TEXT = {action: action.value for action in Action}  # ``Action.value`` without the enum's property per call


class Said(Opinion, Protocol):
    """What the memory reads of an opinion (an ``AgentOpinion``, or a sparse step's ``agents.sparse_step.Vote``): what
    the vote reads, and the details (for a ``horizon_bars``)."""

    @property
    def details(self) -> Mapping[str, Any] | None: ...


class _Scored(NamedTuple):
    """An opinion scored: whose (decision, agent), what it said, its entry and exit (the newest close known at
    ``realised_at``) and what ``realised`` makes of it."""

    realised_at: datetime
    symbol: str
    as_of: datetime
    agent: str
    decision_id: str
    action: str
    confidence: float
    horizon_bars: int
    entry_price: float
    entry_ts: datetime
    exit_price: float
    exit_ts: datetime
    realised_return: float
    hit: bool | None


class ReplayMemory:
    """See the module docstring."""

    def __init__(
        self,
        *,
        account: str,
        timeframe: str,
        params: MemoryParams,
        base: Mapping[str, float],
        cursor: ReplayCursor,
        trade_lookback: int,
    ) -> None:
        self.account, self._params, self._base, self._cursor = account, params, dict(base), cursor
        self._bar = timeframe_delta(timeframe)
        # A heap of one entry per step and horizon remembered: (realised_at, seq, as_of, horizon_bars, decisions),
        # each decision (symbol, decision_id, entry_price, entry_ts, [(agent, action, confidence), ...]); ``seq``
        # (the order pushed) tells entries apart, so the heap never compares further. The decisions of one entry are
        # due together (a step's ten symbols: one push and one pop, not ten), the opinions of a decision scored
        # together; learning does not depend on the order they come off in (``_add``).
        self._due: list[tuple[datetime, int, datetime, int, list[tuple[Any, ...]]]] = []
        self._pushed = 0
        self._open: dict[tuple[datetime, int], list[tuple[Any, ...]]] = {}  # the decisions of each entry in the heap
        self._hits: list[tuple[datetime, str, datetime, str, bool]] = []  # (realised_at, symbol, as_of, agent, hit)
        self._rates = HitRates(params)
        self._buys: list[tuple[datetime, str, datetime, float]] = []  # team buys with a hit, in realised order
        self._trade_lookback = trade_lookback
        self._recorded: set[str] = set()
        self._weights: dict[str, AgentWeight] | None = None  # weights() until the next hit learnt

    def remember(self, drafts: Sequence[DecisionDraft]) -> None:
        """The step's recorded decisions: each non-skipped opinion, and the decision itself as ``team`` (read from
        the decision and the close it read, not from its audit rows, which a replay may never build)."""
        for draft in drafts:
            decision = draft.decision
            self.remember_votes(decision.decision_id, decision.symbol, decision.as_of, draft.entry,
                                [o for o in decision.opinions if not o.skipped], decision.action,
                                decision.score)  # fmt: skip

    def remember_votes(
        self,
        decision_id: str,
        symbol: str,
        as_of: datetime,
        entry: tuple[float | None, datetime],
        votes: Sequence[Said],
        action: Action,
        score: float,
    ) -> None:
        """One recorded decision given by its parts (``remember`` of a draft; a replay's sparse step,
        ``agents.sparse_step``, for a decision it drafted no further): its non-skipped opinions (``Said``: a
        ``horizon_bars`` in their details is their horizon), in the decision's order, the close it read and that
        bar's time, and the team's action and signed score."""
        default_horizon, due, action_text = self._params.horizon_bars, self._due, _ACTION_TEXT
        self._recorded.add(decision_id)
        entry_price, entry_ts = entry
        by_horizon: dict[int, list[tuple[str, str, float]]] = {}
        for o in votes:
            details = o.details
            horizon = int(details.get("horizon_bars", default_horizon)) if details else int(default_horizon)
            opinion = (o.agent, action_text[o.action], float(o.confidence or 0.0))
            if horizon in by_horizon:
                by_horizon[horizon].append(opinion)
            else:
                by_horizon[horizon] = [opinion]
        team = (TEAM, action_text[action], abs(score))
        if default_horizon in by_horizon:
            by_horizon[default_horizon].append(team)
        else:
            by_horizon[default_horizon] = [team]
        for horizon, opinions in by_horizon.items():
            decisions = self._open.get((as_of, horizon))
            if decisions is None:
                decisions = self._open[(as_of, horizon)] = []
                self._pushed += 1
                heapq.heappush(due, (as_of + self._bar * horizon, self._pushed, as_of, horizon, decisions))
            decisions.append((symbol, decision_id, entry_price, entry_ts, opinions))

    def advance(self, as_of: datetime, *, run_id: str, rows: bool = True) -> list[dict[str, Any]]:
        """Score what is realised by ``as_of`` and learn from it; returns the ``audit.opinion_outcomes`` rows (in a
        fixed order), none when ``rows`` is False (a replay that does not record them: the learning is the same)."""
        if not rows:
            self._learn_due(as_of)
            return []
        scored = self._realised(as_of)
        self._learn(scored)
        records = [self._record(s, run_id) for s in scored]
        records.sort(key=lambda r: (r["decision_id"], r["agent"]))
        return records

    def _record(self, s: _Scored, run_id: str) -> dict[str, Any]:
        return outcome_record(
            decision_id=s.decision_id, agent=s.agent, account=self.account, symbol=s.symbol, as_of=s.as_of,
            realised_at=s.realised_at, horizon_bars=s.horizon_bars, action=s.action, confidence=s.confidence,
            entry_price=s.entry_price, entry_ts=s.entry_ts, exit_price=s.exit_price, exit_ts=s.exit_ts, run_id=run_id,
        )  # fmt: skip

    def _realised(self, as_of: datetime) -> list[_Scored]:
        """The opinions due by ``as_of`` that can be scored, with their exit and realised return (``realised``)."""
        scored: list[_Scored] = []
        new = tuple.__new__  # a _Scored without its generated __new__'s keyword handling
        for realised_at, symbol, at, decision_id, horizon, entry_price, entry_ts, opinions, exit_row in self._due_by(
            as_of
        ):
            exit_price, exit_ts = float(exit_row["close"]), exit_row["ts"]
            # ``realised`` of each opinion: its return is the entry's (the same for every action), its hit the action's
            realised_return, _ = realised(_HOLD, entry_price, entry_ts, exit_price, exit_ts)
            newer = exit_ts > entry_ts
            for agent, action, confidence in opinions:
                hit = action_hit(action, realised_return) if newer else None
                scored.append(new(_Scored, (realised_at, symbol, at, agent, decision_id, action, confidence, horizon,
                                            entry_price, entry_ts, exit_price, exit_ts, realised_return,
                                            hit)))  # fmt: skip
        return scored

    def _due_by(self, as_of: datetime) -> list[tuple[Any, ...]]:
        """The decisions and horizons due by ``as_of`` (their entries taken off the heap) that can be scored: those
        within the scoring lookback, older than ``as_of``, with an entry price and an exit row with a positive close
        (what ``score_outcomes`` scores), each as (realised_at, symbol, as_of, decision_id, horizon_bars, entry_price,
        entry_ts, opinions, exit row)."""
        since = as_of - self._bar * self._params.score_lookback_bars
        found: list[tuple[Any, ...]] = []
        exits: dict[tuple[str, datetime], Any] = {}  # the horizons of one decision may share an exit row
        due, latest_row = self._due, self._cursor.latest_row
        while due and due[0][0] <= as_of:
            realised_at, _, at, horizon, decisions = heapq.heappop(due)
            del self._open[(at, horizon)]  # a decision remembered at ``at`` later starts an entry of its own
            if at < since or not at < as_of:
                continue
            for symbol, decision_id, entry_price, entry_ts, opinions in decisions:
                if not entry_price or entry_price <= 0:
                    continue
                key = (symbol, realised_at)
                exit_row = exits[key] if key in exits else exits.setdefault(key, latest_row(*key))
                if exit_row is None or exit_row["close"] is None or float(exit_row["close"]) <= 0:
                    continue
                found.append((realised_at, symbol, at, decision_id, horizon, entry_price, entry_ts, opinions,
                              exit_row))  # fmt: skip
        return found

    def _learn_due(self, as_of: datetime) -> None:
        """``_learn(self._realised(as_of))`` without the scored opinions' rows: only the hits (an opinion scored
        against a newer bar than its entry, not a hold) are learnt from, so only those are worked out."""
        base, hits, buys = self._base, [], []
        for realised_at, symbol, at, _, _, entry_price, entry_ts, opinions, exit_row in self._due_by(as_of):
            exit_ts = exit_row["ts"]
            if not exit_ts > entry_ts:  # no newer bar: no hit (``realised``)
                continue
            realised_return, _ = realised(_HOLD, entry_price, entry_ts, float(exit_row["close"]), exit_ts)
            for agent, action, _ in opinions:
                hit = action_hit(action, realised_return)
                if hit is None:
                    continue
                if agent in base:
                    hits.append((realised_at, symbol, at, agent, hit))
                if agent == TEAM and action == "buy":
                    buys.append((realised_at, symbol, at, realised_return))
        self._add(hits, buys)

    def _learn(self, scored: list[_Scored]) -> None:
        base = self._base
        self._add([(s.realised_at, s.symbol, s.as_of, s.agent, s.hit) for s in scored
                   if s.hit is not None and s.agent in base],
                  [(s.realised_at, s.symbol, s.as_of, s.realised_return) for s in scored
                   if s.agent == TEAM and s.action == "buy" and s.hit is not None])  # fmt: skip

    def _add(
        self, hits: list[tuple[datetime, str, datetime, str, bool]], buys: list[tuple[datetime, str, datetime, float]]
    ) -> None:
        """Learn from ``hits`` ((realised_at, symbol, as_of, agent, hit) of the agents weighed) and keep the team's
        ``buys`` ((realised_at, symbol, as_of, realised return)), each in any order."""
        fresh = sorted(hits)
        if fresh:
            self._weights = None
        if fresh and self._hits and fresh[0][:3] < self._hits[-1][:3]:
            # Arrived out of order (never for a step-by-step replay): replay the rates from the start.
            self._hits = sorted(self._hits + fresh, key=lambda h: h[:3])
            self._rates = HitRates(self._params)
            for _, _, _, agent, hit in self._hits:
                self._rates.add(agent, hit)
        else:
            for hit in fresh:
                self._hits.append(hit)
                self._rates.add(hit[3], hit[4])
        for buy in buys:
            insort(self._buys, buy)

    def weights(self) -> Mapping[str, AgentWeight]:
        """The weights learnt so far: the same mapping (never changed) until a hit is learnt."""
        if self._weights is None:
            self._weights = self._rates.weights(self._base)
        return self._weights

    def trades(self) -> TradeStats:
        return trade_stats([r for *_, r in self._buys[-self._trade_lookback :]] if self._trade_lookback else [])

    def recorded(self, decision_ids: Sequence[str]) -> set[str]:
        """Which of ``decision_ids`` were recorded (told to ``remember``): ``recorded_decisions`` for the account."""
        return {d for d in decision_ids if d in self._recorded}

    @property
    def pending(self) -> int:
        """Opinions remembered and not yet due."""
        return sum(len(decision[-1]) for *_, decisions in self._due for decision in decisions)
