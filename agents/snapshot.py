"""The first stage of a decision: a ``Snapshot`` of everything a decision at ``as_of`` may read, point in time
(ARCHITECTURE §4, §5), and the live reader that builds it with SQL at ``as_of``.

A snapshot has two halves:

- ``MarketView`` (the same for every account): per symbol the newest ``marts.features`` row with
  ``known_at <= as_of``, the last closes known by then (oldest first, NULLs dropped), the last bars (open, high, low,
  close) known by then when the pattern analyst votes (``agents.patterns``), the stories tagged with it first
  seen in ``(as_of - news window, as_of]`` (oldest first) and every such story's sentiment score. A replay builds the
  same view from a window loaded once (``agents.replay_cursor``); tests keep the two equal.
- ``AccountView``: the kill switch, the portfolio context (equity, its peak, exposures, returns history), positions,
  the learned agent weights and the realised-trade statistics, all as of ``as_of``.

``read_snapshot`` is the live reader. Reading is not entirely free of writes, as before the split: it scores the
account's opinions realised by ``as_of`` (``agents.memory.score_outcomes``), records the account's equity mark (the
drawdown peak includes it) and stores new sentiment scores (a cache). It writes on the caller's connection and does not
commit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from time import monotonic
from typing import Any, Protocol

from sqlalchemy import Connection, text

from agents.memory import AgentWeight, insert_outcomes, load_weights, realised_trade_returns, score_outcomes
from agents.news import recent_news_by_symbol
from agents.params import DecisionParams
from agents.patterns.analyst import Bar
from agents.risk.context import MarketReader, portfolio_context
from agents.risk.portfolio import PortfolioContext
from agents.risk.sizing import TradeStats, trade_stats
from agents.sentiment import SentimentScore, SentimentScorer, score_news
from agents.social import recent_social_by_symbol, score_posts
from agents.strategies.mean_reversion import MeanReversionParams
from agents.strategies.momentum import MomentumParams
from agents.technical import TechnicalParams
from alphaloom.domain import (
    AccountId,
    Action,
    DecisionId,
    NewsId,
    NewsItem,
    Signal,
    Symbol,
    decision_ids_for,
    require_utc,
)
from alphaloom.errors import ConfigError, DataUnavailableError
from alphaloom.ingest.social_post import SocialPost
from alphaloom.ops.kill_switch import KillSwitchState, kill_switch_state
from alphaloom.records.decisions import recorded_decision_ids
from alphaloom.settings import Settings

FEATURES_RELATION = "marts.features"
FEATURE_COLUMNS = (
    "open", "high", "low", "close", "volume", "ret_1", "log_ret_1", "sma_10", "sma_20", "sma_50", "ema_10", "ema_20",
    "ema_50", "rsi_14", "macd", "macd_signal", "macd_hist", "bb_middle_20", "bb_upper_20", "bb_lower_20",
    "bb_pct_b_20", "realized_vol_20", "volume_z_20",
)  # fmt: skip

# The columns of a feature row that a snapshot holds: its key, when it became known, the values a decision reads and
# records (``FEATURE_COLUMNS``) and the dbt run that built it. The mart's other columns (the incremental build's state,
# its further indicators) are read by no decision: neither reader fetches them.
FEATURE_ROW_COLUMNS = ("exchange", "symbol", "timeframe", "ts", "known_at", *FEATURE_COLUMNS, "dbt_invocation_id")


@dataclass(frozen=True)
class MarketView:
    """What the market looked like at ``as_of`` for the symbols asked (only those with a feature row appear in
    ``features``, ``closes`` and ``news``)."""

    features: Mapping[str, Mapping[str, Any]]
    closes: Mapping[str, Sequence[float]]
    news: Mapping[str, Sequence[NewsItem]]
    scores: Mapping[NewsId, SentimentScore]
    signals: PriceSignals | None = field(default=None, compare=False)
    bars: Mapping[str, Sequence[Bar]] = field(default_factory=dict)
    """Per symbol the last ``StrategyParams.bars_history`` bars known at ``as_of`` with all four prices, oldest first
    (empty when the pattern analyst does not vote)."""
    # Community posts known per symbol (``agents.social``, same point-in-time rule as news) and their sentiment.
    social: Mapping[str, Sequence[SocialPost]] = field(default_factory=dict)
    social_scores: Mapping[str, SentimentScore] = field(default_factory=dict)
    technical: TechnicalAhead | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TechnicalAhead:
    """The technical analyst's vote per symbol with a feature row, computed ahead (a replay cursor computes its
    whole window's at load, ``agents.technical.technical_votes_of_columns``), for the parameters named: per symbol
    (``agents.technical.technical_vote`` of the row and its price signals, the decision's entry: the close read and
    its bar time, ``agents.deciding.entry_of``). A cache of pure functions of the feature row and the closes: a
    replay's sparse step (``agents.sparse_step``) uses it only when the parameters are its own."""

    technical: TechnicalParams
    momentum: MomentumParams
    mean_reversion: MeanReversionParams
    by_symbol: Mapping[str, tuple[tuple[Action, float], tuple[float | None, datetime]]]


@dataclass(frozen=True)
class PriceSignals:
    """The price strategies' signals over ``MarketView.closes``, computed ahead (a replay cursor computes its whole
    window's at load): per symbol the ``momentum`` and ``mean_reversion`` signals that are not None, in that order,
    for the parameters named. A cache of pure functions of the closes: the decision uses it only when the parameters
    are its own, and computes them from the closes otherwise (the live reader computes none)."""

    momentum: MomentumParams
    mean_reversion: MeanReversionParams
    by_symbol: Mapping[str, tuple[Signal, ...]]


class _PortfolioOnRead:
    """The ``portfolio`` field of ``AccountView``: given a context, or a function giving it on first read (a
    replay's account: a sparse step that drafts no symbol never reads it); the context given is kept. No default."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}_held"

    def __get__(self, instance: object | None, owner: type | None = None) -> PortfolioContext:
        if instance is None:  # on the class: no default (the dataclass asks for the field)
            raise AttributeError(self._slot)
        held: PortfolioContext | Callable[[], PortfolioContext] = instance.__dict__[self._slot]
        if not isinstance(held, PortfolioContext):
            held = instance.__dict__[self._slot] = held()
        return held

    def __set__(self, instance: object, value: PortfolioContext | Callable[[], PortfolioContext]) -> None:
        instance.__dict__[self._slot] = value


@dataclass(frozen=True)
class AccountView:
    """The account at ``as_of`` (``portfolio``: the context, or a function giving it when first read)."""

    kill_switch: KillSwitchState
    positions: Mapping[str, tuple[Decimal, Decimal]]
    weights: Mapping[str, AgentWeight]
    trades: TradeStats
    portfolio: _PortfolioOnRead = _PortfolioOnRead()  # required: see _PortfolioOnRead (last, for the type checker)


@dataclass(frozen=True)
class Snapshot:
    """Everything one decision step at ``as_of`` may read. ``recorded``: the symbols whose decision (same id) already
    exists, which the step does not decide again."""

    account: AccountId
    as_of: datetime
    symbols: tuple[Symbol, ...]
    decision_ids: Mapping[str, DecisionId]
    recorded: frozenset[str]
    market: MarketView
    account_view: AccountView
    scorer_name: str
    scorer_fallback: str | None


def clean(value: Any) -> Any:
    """A feature value as recorded: NaN and infinities become None."""
    if isinstance(value, float) and not math.isfinite(value):  # NaN or an infinity
        return None
    return value


def utc(value: datetime) -> datetime:
    """A warehouse timestamp in UTC (dbt may materialize one without time zone; the convention is UTC)."""
    tz = value.tzinfo
    if tz is UTC:  # the usual case (the replay cursor's keys, most drivers' values): nothing to convert
        return value
    return value.replace(tzinfo=UTC) if tz is None else value.astimezone(UTC)


# --- the live readers -------------------------------------------------------------------------------------------------


def require_features(conn: Connection) -> None:
    """Raises ``DataUnavailableError`` when the features mart has not been built at all."""
    if conn.execute(text("select to_regclass(:r)"), {"r": FEATURES_RELATION}).scalar() is None:
        raise DataUnavailableError(f"{FEATURES_RELATION} does not exist; build the features first")


def latest_features(
    conn: Connection, *, exchange: str, symbols: Sequence[str], timeframe: str, as_of: datetime
) -> dict[str, dict[str, Any]]:
    """Per symbol, the newest ``marts.features`` row known at ``as_of`` (``known_at <= as_of``; its
    ``FEATURE_ROW_COLUMNS``); a symbol with none is absent. One query for all symbols.

    Raises ``DataUnavailableError`` when the features mart has not been built at all."""
    if not symbols:
        return {}
    require_features(conn)
    rows = conn.execute(
        text(
            f"""select distinct on (symbol) {", ".join(FEATURE_ROW_COLUMNS)} from {FEATURES_RELATION}
                where exchange = :exchange and symbol = any(:symbols) and timeframe = :timeframe
                  and known_at <= :as_of
                order by symbol, ts desc"""
        ),
        {"exchange": exchange, "symbols": list(symbols), "timeframe": timeframe, "as_of": as_of},
    ).mappings()
    return {row["symbol"]: dict(row) for row in rows}


def recent_closes(
    conn: Connection, *, exchange: str, symbols: Sequence[str], timeframe: str, as_of: datetime, count: int
) -> dict[str, list[float]]:
    """Per symbol, the last ``count`` closes known at ``as_of`` (``known_at <= as_of``), oldest first; NULLs dropped.
    One query for all symbols."""
    if not symbols:
        return {}
    rows = conn.execute(
        text(
            f"""select symbol, close from (
                    select symbol, ts, close, row_number() over (partition by symbol order by ts desc) as n
                    from {FEATURES_RELATION}
                    where exchange = :exchange and symbol = any(:symbols) and timeframe = :timeframe
                      and known_at <= :as_of and close is not null
                ) recent where n <= :count order by symbol, ts"""
        ),
        {"exchange": exchange, "symbols": list(symbols), "timeframe": timeframe, "as_of": as_of, "count": count},
    ).all()
    closes: dict[str, list[float]] = {symbol: [] for symbol in symbols}
    for row in rows:
        closes[row.symbol].append(float(row.close))
    return closes


def recent_bars(
    conn: Connection, *, exchange: str, symbols: Sequence[str], timeframe: str, as_of: datetime, count: int
) -> dict[str, list[Bar]]:
    """Per symbol, the last ``count`` bars known at ``as_of`` (``known_at <= as_of``) with open, high, low and close
    all set, oldest first. One query for all symbols."""
    if not symbols or count <= 0:
        return {}
    rows = conn.execute(
        text(
            f"""select symbol, ts, open, high, low, close from (
                    select symbol, ts, open, high, low, close,
                           row_number() over (partition by symbol order by ts desc) as n
                    from {FEATURES_RELATION}
                    where exchange = :exchange and symbol = any(:symbols) and timeframe = :timeframe
                      and known_at <= :as_of and open is not null and high is not null and low is not null
                      and close is not null
                ) recent where n <= :count order by symbol, ts"""
        ),
        {"exchange": exchange, "symbols": list(symbols), "timeframe": timeframe, "as_of": as_of, "count": count},
    ).all()
    bars: dict[str, list[Bar]] = {symbol: [] for symbol in symbols}
    for row in rows:
        bars[row.symbol].append(as_bar(row.ts, row.open, row.high, row.low, row.close))
    return bars


def as_bar(ts: datetime, open_: Any, high: Any, low: Any, close: Any) -> Bar:
    """A warehouse bar as the pattern analyst reads it (UTC open time, float prices)."""
    return Bar(utc(ts), float(open_), float(high), float(low), float(close))


def current_positions(conn: Connection, account: str, symbols: Sequence[str]) -> dict[str, tuple[Decimal, Decimal]]:
    """Per symbol (quantity, avg_price) from ``audit.positions``; (0, 0) when the account never held it."""
    held = {
        row.symbol: (Decimal(row.quantity), Decimal(row.avg_price))
        for row in conn.execute(
            text("select symbol, quantity, avg_price from audit.positions where account = :a and symbol = any(:s)"),
            {"a": account, "s": list(symbols)},
        )
    }
    return {symbol: held.get(symbol, (Decimal(0), Decimal(0))) for symbol in symbols}


def recorded_decisions(conn: Connection, decision_ids: Sequence[DecisionId]) -> set[str]:
    """Which of ``decision_ids`` are already in ``audit.decisions``."""
    return recorded_decision_ids(conn, decision_ids)


def require_account(conn: Connection, account: str) -> None:
    if conn.execute(text("select 1 from audit.accounts where id = :a"), {"a": account}).first() is None:
        raise ConfigError(f"account {account!r} does not exist; create it with execution.accounts.ensure_account")


class MarketSource(MarketReader, Protocol):
    """The market half of snapshots from memory (``agents.replay_cursor.ReplayCursor``), equal to the SQL reads."""

    def market_at(self, as_of: datetime, symbols: Sequence[str] | None = None) -> MarketView: ...


class MemoryState(Protocol):
    """The account's memory kept up to date by the caller (``agents.replay_memory.ReplayMemory`` in a replay), which
    is told of every decision of the account (so it knows which are recorded)."""

    def advance(self, as_of: datetime, *, run_id: str, rows: bool = True) -> list[dict[str, Any]]: ...

    def weights(self) -> Mapping[str, AgentWeight]: ...

    def trades(self) -> TradeStats: ...

    def recorded(self, decision_ids: Sequence[DecisionId]) -> set[str]: ...


class AccountState(Protocol):
    """The account's cash and positions kept up to date by the caller (``agents.replay_account.ReplayAccount`` in a
    replay), equal to what ``portfolio_context`` and ``current_positions`` read."""

    def context(self, conn: Connection, account: str, symbols: Sequence[str], as_of: datetime) -> PortfolioContext: ...

    def context_on_read(
        self, conn: Connection, account: str, symbols: Sequence[str], as_of: datetime
    ) -> Callable[[], PortfolioContext]:
        """``context``'s effects now (its equity mark) and a function giving the context, the same one, when first
        called in the same step."""
        ...

    def positions(self, symbols: Sequence[str]) -> dict[str, tuple[Decimal, Decimal]]: ...


class KnownKillSwitch:
    """The kill switch state a replay read last (at its chunk's start, or at its last step that proposed an order):
    a step's snapshot takes it instead of reading it, and a step whose drafts propose an order reads it again
    (``refresh``) and decides again when it changed (``agents.team.decide``), so every risk verdict and every order
    sees the state read in that step; execution still reads it before each send.

    ``max_age_s``: how old the state may be before a step that proposes an order reads it again (0: every such step
    reads it). A replay whose orders stay in memory (``execution.orders.memory_store``: execution takes this state
    too) passes ``REPLAY_MAX_AGE_S``, so an order step sends no statement; the replay still reads it at each chunk's
    start (after each audit flush), so an operator's engagement stops its orders within that many seconds or the
    chunk's end, whichever comes first."""

    def __init__(self, state: KillSwitchState, max_age_s: float = 0.0) -> None:
        self.state, self.max_age_s = state, max_age_s
        self._read_at = monotonic()

    @classmethod
    def read(cls, conn: Connection, max_age_s: float = 0.0) -> KnownKillSwitch:
        return cls(kill_switch_state(conn), max_age_s)

    def refresh(self, conn: Connection) -> KillSwitchState:
        """Read the state again, unless it was read less than ``max_age_s`` ago; returns it."""
        if self.max_age_s <= 0 or monotonic() - self._read_at >= self.max_age_s:
            self.state = kill_switch_state(conn)
            self._read_at = monotonic()
        return self.state


# The trade statistics a decision reads when its sizing reads none (not Kelly): those of no trade, made once.
NO_TRADES = trade_stats([])

# How old a replay's kill switch state may be when its orders stay in memory (``KnownKillSwitch``).
REPLAY_MAX_AGE_S = 1.0


class OutcomeStore(Protocol):
    """Where a replay's outcome rows go instead of the database (``agents.audit_buffer.AuditBuffer``)."""

    @property
    def keeps_outcomes(self) -> bool:
        """Whether ``outcomes`` keeps the rows it is given (a replay's audit mode): if not, none are built."""
        ...

    def outcomes(self, records: Sequence[Mapping[str, Any]]) -> None: ...


def read_account_view(
    conn: Connection,
    *,
    account: str,
    symbols: Sequence[str],
    as_of: datetime,
    run_id: str,
    settings: Settings,
    params: DecisionParams,
    memory: MemoryState | None = None,
    source: MarketReader | None = None,
    account_state: AccountState | None = None,
    outcomes: OutcomeStore | None = None,
    kill_switch: KillSwitchState | None = None,
) -> AccountView:
    """The account half of the snapshot, from the database at ``as_of`` (memory point in time: the opinions realised
    by ``as_of`` are scored first, then the agents are weighed by those outcomes only). ``memory``: the account's
    memory advanced in memory instead (its new outcome rows are stored here, or handed to ``outcomes``); ``source``:
    marks and returns history from memory; ``account_state``: the portfolio context and positions from memory (its
    equity mark is stored here). The kill switch is read (an operator may engage it at any time) unless the caller
    passes the state it knows (``KnownKillSwitch``)."""
    kill_switch = kill_switch_state(conn) if kill_switch is None else kill_switch
    portfolio: PortfolioContext | Callable[[], PortfolioContext]
    if account_state is not None:  # built when the step reads it (a sparse step that drafts nothing does not)
        portfolio = account_state.context_on_read(conn, account, symbols, as_of)
    else:
        portfolio = portfolio_context(conn, account=AccountId(account), symbols=symbols, as_of=as_of, settings=settings,
                                      market=source)  # fmt: skip
    if memory is not None:
        records = memory.advance(as_of, run_id=run_id, rows=outcomes is None or outcomes.keeps_outcomes)
        if outcomes is not None:
            outcomes.outcomes(records)
        else:
            insert_outcomes(conn, records)
        weights, trades = memory.weights(), memory.trades() if params.uses_kelly else NO_TRADES
    else:
        weights, trades = _memory_from_database(conn, AccountId(account), as_of, run_id, params)
    positions = current_positions(conn, account, symbols) if account_state is None else account_state.positions(symbols)
    return AccountView(kill_switch, positions, weights, trades, portfolio=portfolio)


def _memory_from_database(
    conn: Connection, account: AccountId, as_of: datetime, run_id: str, params: DecisionParams
) -> tuple[dict[str, AgentWeight], TradeStats]:
    memory = params.strategy.memory
    score_outcomes(conn, account=account, as_of=as_of, timeframe=params.timeframe, run_id=run_id, params=memory)
    weights = load_weights(conn, account=account, as_of=as_of, base=params.strategy.base_weights(), params=memory)
    trades = (
        trade_stats(realised_trade_returns(conn, account=account, as_of=as_of, limit=params.sizing_lookback_trades))
        if params.uses_kelly
        else NO_TRADES
    )
    return weights, trades


def read_market_view(
    conn: Connection,
    *,
    symbols: Sequence[str],
    as_of: datetime,
    run_id: str,
    params: DecisionParams,
    scorer: SentimentScorer,
) -> MarketView:
    """The market half of the snapshot, from the database at ``as_of`` (one query per kind for all symbols)."""
    features = latest_features(conn, exchange=params.exchange, symbols=symbols, timeframe=params.timeframe, as_of=as_of)
    known = [symbol for symbol in symbols if symbol in features]
    closes = recent_closes(conn, exchange=params.exchange, symbols=known, timeframe=params.timeframe, as_of=as_of,
                           count=params.strategy.history)  # fmt: skip
    team_vote = params.strategy.team_vote
    news = recent_news_by_symbol(conn, known if team_vote else [], as_of, params.strategy.news.window)
    scores = score_news(conn, run_id, scorer, list({i.id: i for n in news.values() for i in n}.values()))
    bars = recent_bars(conn, exchange=params.exchange, symbols=known, timeframe=params.timeframe, as_of=as_of,
                       count=params.strategy.bars_history)  # fmt: skip
    social = recent_social_by_symbol(conn, known if team_vote else [], as_of, params.strategy.social.window)
    social = {s: posts for s, posts in social.items() if posts}
    social_scores = score_posts(scorer, [p for posts in social.values() for p in posts])
    return MarketView(features, closes, news, scores, bars=bars, social=social, social_scores=social_scores)


def read_snapshot(
    conn: Connection,
    *,
    account: str,
    symbols: Sequence[str],
    as_of: datetime,
    run_id: str,
    settings: Settings,
    params: DecisionParams,
    scorer: SentimentScorer,
    source: MarketSource | None = None,
    memory: MemoryState | None = None,
    account_state: AccountState | None = None,
    outcomes: OutcomeStore | None = None,
    kill_switch: KillSwitchState | None = None,
) -> Snapshot:
    """The ``Snapshot`` of a decision step at ``as_of``, read from the database (``source``: the market half from
    memory, a replay cursor, instead of SQL; ``memory``, ``account_state`` and ``outcomes``: see
    ``read_account_view``, as ``kill_switch``; with ``memory`` the decisions already recorded are the ones it was told of, and with
    ``account_state`` the account is known to exist)."""
    as_of = require_utc(as_of, "as_of")
    if account_state is None:
        require_account(conn, account)
    account_view = read_account_view(conn, account=account, symbols=symbols, as_of=as_of, run_id=run_id,
                                     settings=settings, params=params, memory=memory, source=source,
                                     account_state=account_state, outcomes=outcomes,
                                     kill_switch=kill_switch)  # fmt: skip
    decision_ids = decision_ids_for(account, symbols, params.timeframe, as_of, params.version)
    ids = list(decision_ids.values())
    existing = recorded_decisions(conn, ids) if memory is None else memory.recorded(ids)
    recorded = {s for s in symbols if decision_ids[s] in existing}
    pending = [s for s in symbols if s not in recorded]
    if source is None:
        market = read_market_view(conn, symbols=pending, as_of=as_of, run_id=run_id, params=params, scorer=scorer)
    else:
        market = source.market_at(as_of, symbols)
        if recorded:  # else every symbol asked is pending: the view holds nothing to leave out
            market = restrict(market, pending)
    # the flow's account and symbol names become typed ids here, where they enter the decision's values
    return Snapshot(AccountId(account), as_of, tuple(Symbol(s) for s in symbols), decision_ids, frozenset(recorded), market, account_view,
                    scorer.name, getattr(scorer, "fallback_reason", None))  # fmt: skip


def restrict(market: MarketView, symbols: Sequence[str]) -> MarketView:
    """``market`` for ``symbols`` only (the scores of the stories still present)."""
    wanted = set(symbols)
    news = {s: items for s, items in market.news.items() if s in wanted}
    ids = {item.id for items in news.values() for item in items}
    if _covers(market, wanted, ids):  # every symbol wanted (a replay's usual step): nothing to leave out
        return market
    return MarketView(
        {s: row for s, row in market.features.items() if s in wanted},
        {s: closes for s, closes in market.closes.items() if s in wanted},
        news,
        {i: score for i, score in market.scores.items() if i in ids},
        None
        if market.signals is None
        else replace(market.signals, by_symbol={s: v for s, v in market.signals.by_symbol.items() if s in wanted}),
        {s: bars for s, bars in market.bars.items() if s in wanted},
        social={s: posts for s, posts in market.social.items() if s in wanted},
        social_scores={
            p.id: market.social_scores[p.id] for s, posts in market.social.items() if s in wanted for p in posts
        },
        technical=None
        if market.technical is None
        else replace(market.technical, by_symbol={s: v for s, v in market.technical.by_symbol.items() if s in wanted}),
    )


def _covers(market: MarketView, wanted: set[str], ids: set[NewsId]) -> bool:
    """Whether ``restrict(market, wanted)`` would hold all of ``market``: every symbol it holds is wanted and it
    scores no story but those of its news (``ids``) and no post but those of its social posts."""
    held = (market.features, market.closes, market.news, market.bars, market.social,
            {} if market.signals is None else market.signals.by_symbol,
            {} if market.technical is None else market.technical.by_symbol)  # fmt: skip
    return (
        all(s in wanted for mapping in held for s in mapping)
        and market.scores.keys() == ids
        and market.social_scores.keys() == {p.id for posts in market.social.values() for p in posts}
    )
