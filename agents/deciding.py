"""The pure middle of a decision (ARCHITECTURE §5): from a ``Snapshot`` (and the LLM answers already obtained) to one
``DecisionDraft`` per symbol to decide: the agents' opinions, the weighted vote, the sizing, every risk verdict, the
intents that passed risk and the audit rows that will record it all. No I/O: the same snapshot and parameters give the
same drafts in any process, which is what lets a replay run this stage in memory. The audit rows are built when first
read (``DecisionDraft``): a replay that writes fewer of them (``--audit decisions|none``) does not pay for the rest.

What callers can rely on:

- A symbol whose decision is already recorded (``snapshot.recorded``) or that has no feature row known at ``as_of``
  gets no draft.
- Symbols are decided in the order asked, and each one's approved intents are added to the portfolio context the next
  one's portfolio checks see.
- ``DecisionDraft.decision.intents`` are only the intents every risk check approved (possibly reduced in size).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from math import isfinite
from typing import Any, Generic, TypeVar, overload

from agents.consensus import ConsensusParams, Opinion, consensus
from agents.earnings import earnings_opinion, stated_reports
from agents.llm.schema import AnalystInputs, Headline, PastSituation
from agents.memory import AgentWeight, Memory
from agents.news import news_opinion
from agents.params import DecisionParams
from agents.patterns.analyst import Bar, pattern_opinion
from agents.recording import AgentOutputRow, DecisionRow
from agents.risk import RiskVerdict, adjusted_intent, all_approved, check_intent
from agents.risk.sizing import SizingChoice, choose_notional
from agents.sentiment import SentimentScore
from agents.snapshot import FEATURE_COLUMNS, MarketView, Snapshot, utc
from agents.social import social_opinion
from agents.strategies import mean_reversion, momentum, sentiment_shock
from agents.strategies.sma_cross import sma_cross_opinion
from agents.technical import technical_opinion
from agents.trader import closes_position, opens_position, order_intents
from alphaloom.domain import (
    Action,
    AgentOpinion,
    Decision,
    DecisionId,
    NewsId,
    NewsItem,
    OrderIntent,
    Side,
    Signal,
    Symbol,
)
from alphaloom.ingest.social_post import SocialPost


@dataclass(frozen=True)
class LlmAnswer:
    """The LLM analyst's opinion for one symbol and the past situations it was shown."""

    opinion: AgentOpinion
    memories: Sequence[Memory] = ()


T = TypeVar("T")
Owner = TypeVar("Owner")


class _Once(Generic[Owner, T]):
    """``functools.cached_property`` without its lock (Python 3.11's takes one on every first read, a per-draft cost
    here): the value built on first read is kept in the instance's ``__dict__``, which later reads find first."""

    def __init__(self, build: Callable[[Owner], T]) -> None:
        self._build = build
        self._name = build.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type) -> _Once[Owner, T]: ...

    @overload
    def __get__(self, instance: Owner, owner: type) -> T: ...

    def __get__(self, instance: Owner | None, owner: type) -> T | _Once[Owner, T]:
        if instance is None:
            return self
        value = instance.__dict__[self._name] = self._build(instance)
        return value


class _BuiltOnRead(Generic[T]):
    """A field of ``DecisionDraft`` that only the audit reads: the value the draft was given, else built from the
    draft's ``basis`` on its first read and kept. A replay that writes no such row never builds it (``--audit none``:
    most of a step's time went into rows nobody wrote).

    As a dataclass field's default it is the class attribute: ``__init__`` and ``dataclasses.replace`` pass each value
    through ``__set__``, this descriptor itself standing for "not given"."""

    def __init__(self, build: Callable[[DecisionDraft], T]) -> None:
        self._build = build
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, draft: None, owner: type) -> _BuiltOnRead[T]: ...

    @overload
    def __get__(self, draft: DecisionDraft, owner: type) -> T: ...

    def __get__(self, draft: DecisionDraft | None, owner: type) -> T | _BuiltOnRead[T]:
        if draft is None:  # the class's attribute: the dataclass takes it as the field's default, "not given"
            return self
        held = draft.__dict__
        if self._name not in held:
            held[self._name] = self._build(draft)
        value: T = held[self._name]
        return value

    def __set__(self, draft: DecisionDraft, value: T | _BuiltOnRead[T]) -> None:
        if value is not self:  # a value given (the dataclass's ``__init__``, ``dataclasses.replace``)
            draft.__dict__[self._name] = value


def _row_of(draft: DecisionDraft) -> DecisionRow:
    return _decision_row(_basis_of(draft), draft.decision, draft.verdicts)


def _outputs_of(draft: DecisionDraft) -> tuple[AgentOutputRow, ...]:
    return _output_rows(_basis_of(draft))


def _lineage_of(draft: DecisionDraft) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    return _lineage(_basis_of(draft))


@dataclass(frozen=True)
class DecisionDraft:
    """One decided symbol: the ``Decision`` (with only the approved intents), every risk verdict, and the rows that
    record it (``row``, ``outputs``, ``lineage``): given, or built from ``basis`` on first read (``_BuiltOnRead``;
    ``decide_snapshot`` gives a basis). What trades (``decision``, ``verdicts``) is worked out in full, always."""

    decision: Decision
    row: _BuiltOnRead[DecisionRow] = _BuiltOnRead(_row_of)
    outputs: _BuiltOnRead[tuple[AgentOutputRow, ...]] = _BuiltOnRead(_outputs_of)
    verdicts: tuple[tuple[OrderIntent, tuple[RiskVerdict, ...]], ...] = ()
    lineage: _BuiltOnRead[tuple[tuple[str, Mapping[str, Any]], ...]] = _BuiltOnRead(_lineage_of)
    basis: DraftBasis | None = field(default=None, compare=False, repr=False)

    @property
    def entry(self) -> tuple[float | None, datetime]:
        """The close the decision read (None without one) and its bar's time: what memory scores its opinions from
        (``agents.replay_memory``)."""
        read = _basis_of(self).read
        return entry_of(read.values, read.ts)


def entry_of(values: Mapping[str, Any], ts: datetime) -> tuple[float | None, datetime]:
    """``DecisionDraft.entry`` from the feature values read (``feature_values``, with the close) and the bar time."""
    close = values["close"]
    return (None if close is None else float(close)), ts


def _basis_of(draft: DecisionDraft) -> DraftBasis:
    if draft.basis is None:
        raise ValueError(
            f"draft {draft.decision.decision_id}: its audit rows were not given, nor a basis to build them"
        )
    return draft.basis


def feature_values(features: Mapping[str, Any], columns: Sequence[str] = FEATURE_COLUMNS) -> dict[str, Any]:
    """The feature values a decision reads and records (NaN and infinities as None, as ``clean``)."""
    get = features.get
    # ``clean`` inlined, in one comprehension: once per column of every decision
    return {column: None if isinstance(value := get(column), float) and not isfinite(value) else value
            for column in columns}  # fmt: skip


def analyst_inputs(
    snapshot: Snapshot, symbol: str, params: DecisionParams, memories: Sequence[Memory] = ()
) -> AnalystInputs:
    """What the LLM analyst is shown for ``symbol``: features, headlines with scores, the position, past situations."""
    market = snapshot.market
    scores = market.scores
    quantity, avg_price = snapshot.account_view.positions[symbol]
    return AnalystInputs(
        symbol=symbol, as_of=snapshot.as_of, timeframe=params.timeframe,
        features=feature_values(market.features[symbol]),
        headlines=tuple(Headline(item.id, item.title, item.first_seen_at, scores[item.id].label, scores[item.id].score)
                        for item in market.news.get(symbol, ())),
        position_quantity=float(quantity), position_avg_price=float(avg_price),
        memories=tuple(PastSituation(m.symbol, m.as_of, m.action, m.realised_return, m.horizon_bars, m.distance)
                       for m in memories),
        earnings=stated_reports(market.news.get(symbol, ())),
    )  # fmt: skip


def price_signals(market: MarketView, symbol: str, closes: Sequence[float], params: DecisionParams) -> list[Signal]:
    """The momentum and mean-reversion signals of ``closes`` that are not None: the market view's when it computed
    them ahead for these parameters (``PriceSignals``, the same values), else computed here."""
    strategy, ahead = params.strategy, market.signals
    if (
        ahead is not None
        and symbol in ahead.by_symbol
        # the cursor's own parameter objects, usually: no field by field comparison then (dataclass equality compares
        # fields as tuples do, identity first, so ``is`` never says otherwise)
        and (ahead.momentum is strategy.momentum or ahead.momentum == strategy.momentum)
        and (ahead.mean_reversion is strategy.mean_reversion or ahead.mean_reversion == strategy.mean_reversion)
    ):
        return list(ahead.by_symbol[symbol])
    found = (momentum(closes, symbol, strategy.momentum), mean_reversion(closes, symbol, strategy.mean_reversion))
    return [signal for signal in found if signal is not None]


def _skipped_llm(symbol: str, snapshot: Snapshot, params: DecisionParams) -> AgentOpinion:
    reason = "no LLM endpoint configured" if not params.llm_configured else "no LLM agent wired"
    return AgentOpinion("llm", symbol, snapshot.as_of, Action.HOLD, 0.0, reason, model=params.llm_model, skipped=True)


def _opinion_output(opinion: AgentOpinion) -> dict[str, Any]:
    return {
        "action": opinion.action.value,
        "confidence": opinion.confidence,
        "rationale": opinion.rationale,
        "details": opinion.details,
    }


def _sizing_verdicts(intent: OrderIntent, sized: SizingChoice | None) -> list[RiskVerdict]:
    """The sizing of a buy that opens a position, recorded with the risk checks (it approves: size is not a limit)."""
    if sized is None or intent.side is not Side.BUY:
        return []
    return [RiskVerdict("position_sizing", True, sized.reason, dict(sized.numbers))]


def _weights_record(weights: Mapping[str, AgentWeight], base: Mapping[str, float]) -> dict[str, Any]:
    return {agent: {"weight": round(w.weight, 6), "base": base[agent],
                    "hit_rate": None if w.hit_rate is None else round(w.hit_rate, 6), "scored": w.scored}
            for agent, w in weights.items()}  # fmt: skip


def learned_consensus(params: DecisionParams, weights: Mapping[str, AgentWeight]) -> ConsensusParams:
    base = params.strategy.consensus
    return ConsensusParams(weights={agent: w.weight for agent, w in weights.items()},
                           default_weight=base.default_weight, threshold=base.threshold)  # fmt: skip


def decide_snapshot(
    snapshot: Snapshot,
    params: DecisionParams,
    llm: Mapping[str, LlmAnswer] | None = None,
    *,
    run_id: str,
    git_sha: str | None = None,
) -> list[DecisionDraft]:
    """The drafts of every symbol of ``snapshot`` to decide, in the order asked (see the module docstring).
    ``llm``: the LLM analyst's answers per symbol; a symbol without one gets a skipped LLM opinion."""
    team_vote = params.strategy.team_vote
    step = _Step(snapshot, params, run_id, git_sha)
    portfolio = snapshot.account_view.portfolio
    # the learned weights vote only in the team's vote (the SMA rule's one opinion decides alone)
    learned = learned_consensus(params, snapshot.account_view.weights) if team_vote else None
    drafts: list[DecisionDraft] = []
    for symbol in snapshot.symbols:
        features = snapshot.market.features.get(symbol)
        if symbol in snapshot.recorded or features is None:
            continue
        answer = (llm or {}).get(symbol) if team_vote else None
        draft, portfolio = _decide_symbol(step, symbol, features, answer, learned, portfolio)
        for intent in draft.decision.intents:  # the next symbol's portfolio checks see this one's exposure
            portfolio = portfolio.after(intent, portfolio.quote_rate(intent.symbol).required())
        drafts.append(draft)
    return drafts


@dataclass(frozen=True)
class _Step:
    """What every draft of one ``decide_snapshot`` call shares (the weights' record built once, on first read)."""

    snapshot: Snapshot
    params: DecisionParams
    run_id: str
    git_sha: str | None

    @_Once
    def weights_record(self) -> dict[str, Any]:
        return _weights_record(self.snapshot.account_view.weights, self.params.strategy.base_weights())


@dataclass(slots=True)
class _SymbolRead:
    """What the decision of one symbol reads from the snapshot: its feature row, headlines and scores, position and
    closes (built once per decided symbol and only read: not frozen, which would cost each field a slower set)."""

    decision_id: DecisionId
    values: dict[str, Any]
    """Every feature value (``feature_values``): those the decision reads (the technical analyst's, the close as the
    reference price, the volatility Kelly sizing reads) and the record keeps (``DraftBasis.values``), cleaned once."""
    features: Mapping[str, Any]
    ts: datetime
    """The feature row's bar time, in UTC."""
    known_at: datetime
    news: list[NewsItem]
    scores: dict[NewsId, SentimentScore]
    position_qty: Decimal
    position_avg: Decimal
    closes: Sequence[float]
    bars: Sequence[Bar]
    posts: Sequence[SocialPost] = ()
    price: Decimal = field(init=False)
    """The bar's close as the reference price (0 when there is none)."""

    def __post_init__(self) -> None:
        close = self.values["close"]
        self.price = Decimal(str(close)) if close else Decimal(0)


def _read_symbol(snapshot: Snapshot, symbol: str, features: Mapping[str, Any]) -> _SymbolRead:
    """Stage 1: what the snapshot holds for ``symbol``."""
    market = snapshot.market
    news = list(market.news.get(symbol, ()))
    scores = market.scores
    position_qty, position_avg = snapshot.account_view.positions[symbol]
    return _SymbolRead(
        decision_id=snapshot.decision_ids[symbol],
        values=feature_values(features),
        features=features,
        ts=utc(features["ts"]),
        known_at=utc(features["known_at"]),
        news=news,
        scores={item.id: scores[item.id] for item in news},
        position_qty=position_qty,
        position_avg=position_avg,
        closes=market.closes[symbol],  # read only: the stages never change it
        bars=market.bars.get(symbol, ()),
        posts=list(market.social.get(symbol, ())),
    )


def _opinions(
    snapshot: Snapshot, params: DecisionParams, symbol: str, read: _SymbolRead, answer: LlmAnswer | None
) -> tuple[AgentOpinion, ...]:
    """Stage 2: the agents' opinions (technical, news, LLM for the team vote; the SMA rule alone otherwise)."""
    strategy, as_of = params.strategy, snapshot.as_of
    if not strategy.team_vote:
        return (sma_cross_opinion(read.closes, symbol, as_of, strategy.sma_cross),)
    signals = price_signals(snapshot.market, symbol, read.closes, params)
    event = sentiment_shock([read.scores[item.id].score for item in read.news], symbol, strategy.event)
    return (
        technical_opinion(read.values, symbol, as_of, strategy.technical, signals),
        news_opinion(symbol, as_of, read.scores, strategy.news, event),
        answer.opinion if answer is not None else _skipped_llm(symbol, snapshot, params),
        *((pattern_opinion(read.bars, symbol, as_of, strategy.patterns),) if strategy.patterns.enabled else ()),
        *event_opinions(snapshot.as_of, params, symbol, read.news, read.posts, snapshot.market.social_scores),
    )


_MODEL_OF = {"earnings": "rules"}


def event_opinions(
    as_of: datetime,
    params: DecisionParams,
    symbol: str,
    news: Sequence[NewsItem],
    posts: Sequence[SocialPost],
    social_scores: Mapping[str, SentimentScore],
) -> tuple[AgentOpinion, ...]:
    """The analysts that speak only when they have something: earnings (a report among the stories known) and social
    (posts known); one with nothing to say is left out of the vote and the record."""
    if not news and not posts:  # most steps: neither is asked
        return ()
    found = (  # with no story (no post) an analyst has nothing to say: not asked
        *((earnings_opinion(symbol, as_of, news, params.strategy.earnings),) if news else ()),
        *((social_opinion(symbol, as_of, posts, social_scores, params.strategy.social),) if posts else ()),
    )  # fmt: skip
    return tuple(o for o in found if not o.skipped)


def vote(opinions: Sequence[Opinion], learned: ConsensusParams | None) -> tuple[Action, float]:
    """Stage 3: the action and its score: the weighted vote with the ``learned`` weights (the team's vote), or the one
    rule's opinion when ``learned`` is None (also a replay's sparse step's, ``agents.sparse_step``)."""
    return consensus(opinions, learned) if learned is not None else (opinions[0].action, opinions[0].confidence)


def _intents(
    snapshot: Snapshot, params: DecisionParams, symbol: Symbol, read: _SymbolRead, action: Action, portfolio: Any
) -> tuple[SizingChoice | None, list[OrderIntent]]:
    """Stage 4: the size of a position the action opens, and the order intents (none without a price)."""
    opens = opens_position(action, read.position_qty)
    sized = (
        choose_notional(params.sizing, equity=portfolio.equity, stats=snapshot.account_view.trades,
                        bar_volatility=read.values.get("realized_vol_20"), bars_per_year=params.bars_per_year)
        if opens
        else None
    )  # fmt: skip
    if read.price <= 0 or not (opens or closes_position(action, read.position_qty)):
        return sized, []  # no price, or an action ``order_intents`` makes no intent of (its market not looked up)
    intents = order_intents(
        decision_id=read.decision_id,
        account=snapshot.account,
        symbol=symbol,
        action=action,
        position_quantity=read.position_qty,
        price=read.price,
        order_notional=params.order_notional if sized is None else sized.notional,
        market=portfolio.market(symbol),
        quote_rate=portfolio.quote_rate(symbol),
    )
    return sized, intents


def _check_intents(
    snapshot: Snapshot,
    params: DecisionParams,
    symbol: Symbol,
    read: _SymbolRead,
    intents: list[OrderIntent],
    sized: SizingChoice | None,
    portfolio: Any,
) -> tuple[tuple[OrderIntent, tuple[RiskVerdict, ...]], ...]:
    """Stage 5: every risk verdict of each intent, the sizing recorded beside them."""
    return tuple(
        (
            intent,
            tuple(
                check_intent(
                    intent,
                    limits=params.limits,
                    current_quantity=read.position_qty,
                    last_price=read.price,
                    kill_switch=snapshot.account_view.kill_switch,
                    quote_rate=portfolio.quote_rate(symbol),
                    feature_age=snapshot.as_of - read.known_at,
                    max_feature_age=params.max_feature_age,
                    portfolio=portfolio,
                    risk_limits=params.risk_limits,
                )
                + _sizing_verdicts(intent, sized)
            ),
        )
        for intent in intents
    )


@dataclass(frozen=True)
class DraftBasis:
    """What a draft's audit rows are built from, when first read: the step, what the decision read, its opinions,
    the LLM answer (the past situations it was shown) and the sizing chosen."""

    step: _Step
    read: _SymbolRead
    opinions: tuple[AgentOpinion, ...]
    answer: LlmAnswer | None
    sized: SizingChoice | None

    @_Once
    def feature_key(self) -> dict[str, Any]:
        """The key of the feature row read (as ``audit.lineage`` and the records name it)."""
        f = self.read.features
        return {"exchange": f["exchange"], "symbol": f["symbol"], "timeframe": f["timeframe"],
                "ts": _utc_text(self.read.ts)}  # fmt: skip

    @property
    def values(self) -> dict[str, Any]:
        """Every feature value of the row read (``feature_values``), as the record keeps them: those the decision
        read."""
        return self.read.values

    @property
    def dbt_invocation_id(self) -> Any:
        return self.read.features.get("dbt_invocation_id")


@lru_cache(maxsize=256)
def _iso_text(ts: datetime) -> str:
    return ts.isoformat()


def _utc_text(ts: datetime) -> str:
    """``ts.isoformat()`` of a time in UTC (``agents.snapshot.utc``'s: equal times, equal texts), computed once per
    time for a ``datetime``: a step's symbols share their bar's time and when it was known."""
    return _iso_text(ts) if type(ts) is datetime else ts.isoformat()


def _decision_row(
    basis: DraftBasis, decision: Decision, verdicts: tuple[tuple[OrderIntent, tuple[RiskVerdict, ...]], ...]
) -> DecisionRow:
    """Record 1: the ``audit.decisions`` row."""
    step = basis.step
    return DecisionRow(decision.decision_id, step.run_id, decision.account, decision.symbol, decision.timeframe,
                       decision.as_of, decision.action.value, decision.score, step.params.version,
                       _inputs_record(basis, verdicts), basis.dbt_invocation_id, step.git_sha,
                       step.params.config)  # fmt: skip


def _inputs_record(
    basis: DraftBasis, verdicts: tuple[tuple[OrderIntent, tuple[RiskVerdict, ...]], ...]
) -> dict[str, Any]:
    """The decision row's ``inputs``: everything it read, with keys, and the intents with their verdict. The
    configuration is not in it: the row references it by version (``audit.decision_configs``, written once)."""
    snapshot, read, sized = basis.step.snapshot, basis.read, basis.sized
    kill_switch = snapshot.account_view.kill_switch
    record = {
        "features": {"key": basis.feature_key, "known_at": _utc_text(read.known_at),
                     "dbt_invocation_id": basis.dbt_invocation_id, "values": basis.values},
        "news": [
            {"id": item.id, "first_seen_at": item.first_seen_at.isoformat(),
             "first_seen_assumed": item.first_seen_assumed, "label": read.scores[item.id].label,
             "score": read.scores[item.id].score}
            for item in read.news
        ],
        "position": {"quantity": str(read.position_qty), "avg_price": str(read.position_avg)},
        "scorer": snapshot.scorer_name,
        "scorer_fallback": snapshot.scorer_fallback,
        "weights": basis.step.weights_record,
        "closes_read": len(read.closes),
        "sizing": None if sized is None else {"reason": sized.reason, **sized.numbers},
        "kill_switch": {"engaged": kill_switch.engaged, "reason": kill_switch.reason},
        "intents": [
            {"side": i.side.value, "quantity": str(i.quantity), "reference_price": str(i.reference_price),
             "leg": i.leg, "approved": all_approved(list(v))}
            for i, v in verdicts
        ],
    }  # fmt: skip
    if not read.posts:
        return record
    # social first, only with posts, so a decision without social posts records what it always did
    social = [
        {"id": p.id, "first_seen_at": p.first_seen_at.isoformat(), "first_seen_assumed": p.first_seen_assumed,
         "author": p.author, "score": snapshot.market.social_scores[p.id].score}
        for p in read.posts
    ]  # fmt: skip
    return {"social": social} | record


def _output_rows(basis: DraftBasis) -> tuple[AgentOutputRow, ...]:
    """Record 2: one agent output row per opinion, with what that agent read."""
    scorer = basis.step.snapshot.scorer_name
    news_ids = [item.id for item in basis.read.news]
    return tuple(
        AgentOutputRow(o.agent, _opinion_output(o),
                       o.model or _MODEL_OF.get(o.agent, scorer if o.agent in ("news", "social") else None),
                       o.prompt_hash, _input_refs(o.agent, basis, news_ids), o.skipped,
                       o.details.get("tokens"), o.details.get("latency_ms"))
        for o in basis.opinions
    )  # fmt: skip


def _input_refs(agent: str, basis: DraftBasis, news_ids: list[NewsId]) -> dict[str, Any]:
    """What ``agent`` read, as its output row records it (only the agents that spoke are asked)."""
    read, scorer = basis.read, basis.step.snapshot.scorer_name
    if agent == "technical":
        return {"features": basis.feature_key, "closes": len(read.closes)}
    if agent == "news":
        return {"news_ids": news_ids, "scorer": scorer}
    if agent == "llm":
        memories = list(basis.answer.memories) if basis.answer is not None else []
        return {"features": basis.feature_key, "news_ids": news_ids, "memories": [m.decision_id for m in memories]}
    if agent == "patterns":
        return {"features": basis.feature_key, "bars": len(read.bars),
                "first_bar": read.bars[0].ts.isoformat() if read.bars else None}  # fmt: skip
    if agent == "earnings":
        return {"news_ids": news_ids, "extractor": "rules"}
    if agent == "social":
        return {"post_ids": [p.id for p in read.posts], "scorer": scorer}
    return {}


def _lineage(basis: DraftBasis) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    """Record 3: the rows the decision was made from (feature row, bar, news), for ``audit.lineage``."""
    read, key = basis.read, basis.feature_key
    rows = (("marts.features", {**key, "dbt_invocation_id": basis.dbt_invocation_id}), ("raw.ohlcv", key))
    if not read.news and not read.posts:  # most decisions: no story, no post
        return rows
    return (
        *rows,
        *(("raw.news", {"id": item.id}) for item in read.news),
        *(("raw.social_posts", {"id": post.id}) for post in read.posts),
    )


def _decide_symbol(
    step: _Step,
    symbol: Symbol,
    features: Mapping[str, Any],
    answer: LlmAnswer | None,
    learned: ConsensusParams | None,
    portfolio: Any,
) -> tuple[DecisionDraft, Any]:
    """The symbol's draft, and the portfolio context its checks saw (prepared for the correlation and VaR checks once
    an intent needed them: the next symbols reuse it). Stages: read, opinions, vote, intents, risk; the records are
    built from the draft's basis when read (``DecisionDraft``)."""
    snapshot, params = step.snapshot, step.params
    read = _read_symbol(snapshot, symbol, features)
    opinions = _opinions(snapshot, params, symbol, read, answer)
    action, score = vote(opinions, learned)
    sized, intents = _intents(snapshot, params, symbol, read, action, portfolio)
    if intents:
        portfolio = portfolio.prepared()  # the returns history's inputs, computed once a step needs them
    # most steps hold: no intent, no verdict (nor a generator to find none)
    verdicts = _check_intents(snapshot, params, symbol, read, intents, sized, portfolio) if intents else ()
    approved = (
        tuple(a for intent, v in verdicts if (a := adjusted_intent(intent, list(v))) is not None) if verdicts else ()
    )
    decision = Decision(read.decision_id, snapshot.account, symbol, params.timeframe, snapshot.as_of, action, score,
                        opinions, approved)  # fmt: skip
    draft = DecisionDraft(decision, verdicts=verdicts, basis=DraftBasis(step, read, opinions, answer, sized))
    return draft, portfolio
