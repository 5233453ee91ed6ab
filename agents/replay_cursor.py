"""A replay cursor: the market half of the ``Snapshot`` (``agents.snapshot.MarketView``) for any ``as_of`` of a
backtest window, from inputs loaded once (ARCHITECTURE §5).

``ReplayCursor.load`` reads the window in a handful of queries: the feature rows of the symbols known by the window's
end (from far enough back that the first step sees its full close history), the stories tagged with them first seen
in ``(start - news window, end]``, and every such story's sentiment score (scored once, through the same cache the
live reader uses). ``market_at(as_of)`` then answers in memory, by binary search, with exactly what
``agents.snapshot.read_market_view`` would read at that ``as_of`` (the point-in-time rule: rows with
``known_at <= as_of``, stories with ``as_of - window < first_seen_at <= as_of``; the recent bars too when the pattern
analyst votes); tests keep the two equal.

Stories come from ``agents.news.recent_news_by_symbol`` over the whole window, so a story's time is the live
reader's (``greatest(first_seen_at, link first_known_at)``); a link is never known before its story was first seen
(it comes from one of the story's sightings), so filtering on that time is the live reader's filter.

For the team's vote it also computes ahead, for its whole window, the price strategies' signals
(``agents.snapshot.PriceSignals``) and the technical analyst's vote with the decision's entry per feature row
(``agents.snapshot.TechnicalAhead``, over arrays: ``agents.technical.technical_votes_of_columns``), which
``market_at`` hands out with the view; the decision uses them only for its own parameters.

``as_of`` may be any time in ``[start, end]``, in any order (not only bar closes); outside it ``ValueError``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate, groupby, islice, pairwise, repeat
from operator import itemgetter
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from agents.deciding import feature_values
from agents.news import recent_news_by_symbol
from agents.params import DecisionParams
from agents.patterns.analyst import Bar
from agents.risk.portfolio import ReturnsInputs
from agents.sentiment import SentimentScore, SentimentScorer, score_news
from agents.snapshot import (
    FEATURE_ROW_COLUMNS,
    FEATURES_RELATION,
    MarketView,
    PriceSignals,
    TechnicalAhead,
    as_bar,
    clean,
    require_features,
    utc,
)
from agents.social import posts_known, recent_social_by_symbol, score_posts
from agents.strategies.mean_reversion import MeanReversionParams, lazy_mean_reversion_at_ends
from agents.strategies.momentum import MomentumParams, lazy_momentum_at_ends
from agents.strategies.windows import LazySignals
from agents.technical import NEEDED as TECHNICAL_COLUMNS
from agents.technical import TechnicalParams, strategy_scores, technical_vote, technical_votes_of_columns
from alphaloom.db.copy import fetch_binary
from alphaloom.domain import Action, NewsId, NewsItem, Signal, require_utc
from alphaloom.ingest.social_post import SocialPost

# Per symbol: how far before the window the rows must reach so that the first step sees `count` closes (the newest
# row known at the start is among them, or is newer).
_LOWER_BOUNDS = f"""
select symbol, min(known_at) as since from (
    select symbol, known_at,
           row_number() over (partition by symbol order by ts desc) as n,
           row_number() over (partition by symbol, close is not null order by ts desc) as n_close,
           row_number() over (partition by symbol, ret_1 is not null order by ts desc) as n_ret,
           close is not null as has_close, ret_1 is not null as has_ret
    from {FEATURES_RELATION}
    where exchange = :exchange and symbol = any(:symbols) and timeframe = :timeframe and known_at <= :start
) ranked where n = 1 or (has_close and n_close <= :count) or (has_ret and n_ret <= :returns_bars)
group by symbol
"""

# The window's feature rows, with the live reader's columns (psycopg's placeholders: read through the driver's cursor,
# see ``ReplayCursor.load``).
_WINDOW_ROWS = f"""
select {", ".join(FEATURE_ROW_COLUMNS)} from {FEATURES_RELATION} f
where exchange = %(exchange)s and symbol = any(%(symbols)s) and timeframe = %(timeframe)s
  and known_at <= %(end)s
  and known_at >= coalesce((select since from unnest(cast(%(bound_symbols)s as text[]),
                               cast(%(bound_since)s as timestamptz[])) as b(symbol, since)
                            where b.symbol = f.symbol), %(start)s)
order by symbol, ts
"""


def _keyed(at: datetime) -> datetime:
    """``at`` with the ``UTC`` time zone object, the key every time list here is searched by: the same instant (so
    the same order), and two datetimes with the same time zone object compare without asking it for their offsets
    (a tenth of the time of a search among the database's times)."""
    return at if at.tzinfo is UTC else at.astimezone(UTC)


# The columns the load reads for the series' lists, and those kept per symbol for the technical votes and entries.
_TECHNICAL_TABLE = (*TECHNICAL_COLUMNS, "ts")
_SERIES_COLUMNS = ("symbol", "known_at", "ret_1", "close", "ts")
_BAR_COLUMNS = ("open", "high", "low")  # with the close: the bars, read only when the pattern analyst votes


def _columns_of(columns: Sequence[str], rows: Sequence[Any], names: Sequence[str]) -> dict[str, list[Any]]:
    """Per name, its value in each row (value tuples in ``columns``' order; None where the rows have no such
    column)."""
    index = {column: k for k, column in enumerate(columns)}
    return {name: [None] * len(rows) if name not in index else list(map(itemgetter(index[name]), rows))
            for name in names}  # fmt: skip


def _memoised(convert: Callable[[datetime], datetime], values: Sequence[datetime], seen: dict[datetime, datetime]
              ) -> list[datetime]:  # fmt: skip
    """``[convert(v) for v in values]``, converting each distinct time once (``seen``: those converted so far). A
    time in a fold (``fold`` 1) is converted on its own: it compares equal to the other instant of the same local
    time."""
    get = seen.get
    return [(get(v) or seen.setdefault(v, convert(v))) if not v.fold else convert(v) for v in values]


def row_entries(
    closes: Sequence[Any], times: Sequence[datetime], seen: dict[datetime, datetime]
) -> list[tuple[float | None, datetime]]:
    """``agents.deciding.entry_of`` of the rows with these ``close`` and ``ts`` values (the close as
    ``feature_values`` cleans it, the time in UTC), each distinct time converted once (``seen``: those ``utc``
    converted so far)."""
    at = _memoised(utc, times, seen)
    return [(None if (c := clean(close)) is None else float(c), t) for close, t in zip(closes, at, strict=True)]


@dataclass(frozen=True)
class _SymbolSeries:
    known_at: list[datetime]  # of every row, ascending
    rows: list[dict[str, Any]]
    close_known_at: list[datetime]  # of the rows with a close, ascending
    closes: list[float]
    ret_known_at: list[datetime]  # of the rows with a ret_1, ascending
    rets: list[tuple[datetime, float]]  # (ts, ret_1)
    bar_known_at: list[datetime] = field(default_factory=list)  # of the rows with all four prices, ascending
    bars: list[Bar] = field(default_factory=list)
    # per _TECHNICAL_TABLE column, its value in each row (when the team votes: its technical votes read them)
    table: dict[str, list[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class _WindowVotes:
    """A symbol's technical votes and entries from its ``first`` count of rows on, per count: ``market_at`` hands
    out ``((actions[k], confidences[k]), entries[k])`` (a tuple per vote held for the whole window would be a few
    hundred thousand objects for the garbage collector to walk)."""

    first: int
    actions: list[Action]
    confidences: list[float]
    entries: list[tuple[float | None, datetime]]


@dataclass(frozen=True)
class _SymbolNews:
    first_seen_at: list[datetime]
    items: list[NewsItem]


def _signals_of(trends: LazySignals, fades: LazySignals, index: int) -> tuple[Signal, ...]:
    """The price signals of one close count that are not None, momentum first (``PriceSignals``' order)."""
    return tuple(signal for signal in (trends.signal(index), fades.signal(index)) if signal is not None)


class _SignalsAt(Mapping[str, tuple[Signal, ...]]):
    """``PriceSignals.by_symbol`` of one step: per symbol its signals at its close count, built when first read (a
    replay's sparse step reads those of the symbols it drafts in full)."""

    __slots__ = ("_at",)

    def __init__(self, at: Mapping[str, tuple[LazySignals, LazySignals, int]]) -> None:
        self._at = at

    def __getitem__(self, symbol: str) -> tuple[Signal, ...]:
        return _signals_of(*self._at[symbol])

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._at

    def __iter__(self) -> Iterator[str]:
        return iter(self._at)

    def __len__(self) -> int:
        return len(self._at)


class ReplayCursor:
    """The window's market inputs, held in memory; see the module docstring."""

    def __init__(
        self,
        *,
        start: datetime,
        end: datetime,
        history: int,
        returns_bars: int,
        news_window: timedelta,
        team_vote: bool,
        series: Mapping[str, _SymbolSeries],
        news: Mapping[str, _SymbolNews],
        scores: Mapping[NewsId, SentimentScore],
        strategies: tuple[MomentumParams, MeanReversionParams] | None = None,
        bars_history: int = 0,
        social: Mapping[str, Sequence[SocialPost]] | None = None,
        social_window: timedelta = timedelta(0),
        social_scores: Mapping[str, SentimentScore] | None = None,
        technical: TechnicalParams | None = None,
    ) -> None:
        self.start, self.end, self.history, self.returns_bars = start, end, history, returns_bars
        self.bars_history = bars_history
        self._news_window, self._team_vote = news_window, team_vote
        self._series, self._news, self._scores = series, news, scores
        self._strategies = strategies if team_vote else None
        self._social, self._social_window = social or {}, social_window
        self._social_scores = social_scores or {}
        # per symbol: the first count of closes a step can see and, from it on, the price signals of each count
        self._signals: dict[str, tuple[int, LazySignals, LazySignals]] = {}
        if self._strategies is not None:
            for symbol, s in series.items():
                self._signals[symbol] = self._window_signals(symbol, s, *self._strategies)
        # per symbol: the first count of rows a step can see and, from it on, the technical vote and entry of each
        self._technical_params = technical if self._strategies is not None else None
        self._votes: dict[str, _WindowVotes] = {}
        self._utc_seen: dict[datetime, datetime] = {}  # row_entries' times, shared by the symbols
        if self._technical_params is not None:
            for symbol, s in series.items():
                self._votes[symbol] = self._window_votes(s, self._signals[symbol], self._technical_params)
        self._ret_arrays: dict[str, tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]] = {}
        self._shared: dict[tuple[str, ...], tuple[list[datetime], np.ndarray] | None] = {}  # _shared_returns
        self._column_labels: dict[tuple[str, ...], pd.Index] = {}  # immutable: shared by the frames

    @classmethod
    def load(
        cls,
        conn: Connection,
        *,
        symbols: Sequence[str],
        start: datetime,
        end: datetime,
        params: DecisionParams,
        scorer: SentimentScorer,
        run_id: str,
        history: int | None = None,
        returns_bars: int = 0,
    ) -> ReplayCursor:
        """Load the window ``[start, end]`` for ``symbols`` (``history``: closes to keep per step, default the
        strategy's; ``returns_bars``: the returns history ``returns`` may be asked for, e.g. the settings'
        ``correlation_lookback_bars``)."""
        start, end = require_utc(start, "start"), require_utc(end, "end")
        if end < start:
            raise ValueError(f"replay window ends ({end}) before it starts ({start})")
        require_features(conn)
        history = params.strategy.history if history is None else history
        bars_history = params.strategy.bars_history
        where = {"exchange": params.exchange, "symbols": list(symbols), "timeframe": params.timeframe}
        bounds = {
            r.symbol: r.since
            for r in conn.execute(
                text(_LOWER_BOUNDS),
                {**where, "start": start, "count": max(history, bars_history, 1), "returns_bars": returns_bars},
            )
        }
        series: dict[str, _SymbolSeries] = {}
        for symbol in symbols:
            series[symbol] = _SymbolSeries([], [], [], [], [], [])
        # Read with the driver's binary format (parsing floats and times from text is most of the fetch's time);
        # each column gets the Python type and value the text format gives (float, Decimal, datetime in the
        # connection's time zone, ...): the live reader's (``agents.snapshot``), tests compare them.
        columns, fetched = fetch_binary(conn, _WINDOW_ROWS, {**where, "end": end, "start": start,
                                                             "bound_symbols": list(bounds),
                                                             "bound_since": [bounds[s] for s in bounds]})  # fmt: skip
        # each row a dict of its columns (what ``.mappings()`` would give, one row at a time); the series' lists are
        # built column by column, over each symbol's run of rows (the query orders them by symbol)
        rows = list(map(dict, map(zip, repeat(columns), fetched)))
        team_vote = params.strategy.team_vote  # only the team's technical votes read the technical columns
        table = _columns_of(columns, fetched, (*_SERIES_COLUMNS, *(_BAR_COLUMNS if bars_history else ()),
                                               *(TECHNICAL_COLUMNS if team_vote else ())))  # fmt: skip
        keys: dict[datetime, datetime] = {}  # _keyed once per distinct time (the symbols share their times)
        lo = 0
        for symbol, run in groupby(table["symbol"]):
            hi = lo + sum(1 for _ in run)
            s = series[symbol]
            known = _memoised(_keyed, table["known_at"][lo:hi], keys)  # the rows keep the values read
            ts, close, ret = table["ts"][lo:hi], table["close"][lo:hi], table["ret_1"][lo:hi]
            s.known_at.extend(known)
            s.rows.extend(rows[lo:hi])
            s.close_known_at.extend([k for k, c in zip(known, close, strict=True) if c is not None])
            s.closes.extend([float(c) for c in close if c is not None])
            s.ret_known_at.extend([k for k, r in zip(known, ret, strict=True) if r is not None])
            s.rets.extend([(t, float(r)) for t, r in zip(ts, ret, strict=True) if r is not None])
            for name in _TECHNICAL_TABLE if team_vote else ():
                s.table.setdefault(name, []).extend(table[name][lo:hi])
            if bars_history:
                prices = zip(known, ts, table["open"][lo:hi], table["high"][lo:hi], table["low"][lo:hi], close,
                             strict=True)  # fmt: skip
                for k, t, o, h, low, c in prices:
                    if o is not None and h is not None and low is not None and c is not None:
                        s.bar_known_at.append(k)
                        s.bars.append(as_bar(t, o, h, low, c))
            lo = hi
        for symbol, s in series.items():
            if s.known_at != sorted(s.known_at):  # some known_at before its predecessor's
                raise ValueError(f"{FEATURES_RELATION}: known_at of {symbol} does not grow with ts")
        window = params.strategy.news.window
        news: dict[str, _SymbolNews] = {}
        scores: dict[NewsId, SentimentScore] = {}
        if params.strategy.team_vote:
            found = recent_news_by_symbol(conn, list(symbols), end, end - start + window)
            for symbol, items in found.items():
                news[symbol] = _SymbolNews([_keyed(item.first_seen_at) for item in items], list(items))
            distinct = list({item.id: item for items in found.values() for item in items}.values())
            scores = score_news(conn, run_id, scorer, distinct)
        social_window = params.strategy.social.window
        social: dict[str, list[SocialPost]] = {}
        if params.strategy.team_vote:  # the window's posts, each step takes those known then (agents.social)
            found_posts = recent_social_by_symbol(conn, list(symbols), end, end - start + social_window)
            social = {symbol: posts for symbol, posts in found_posts.items() if posts}
        return cls(start=start, end=end, history=history, returns_bars=returns_bars, news_window=window,
                   team_vote=params.strategy.team_vote, series=series, news=news, scores=scores,
                   strategies=(params.strategy.momentum, params.strategy.mean_reversion),
                   bars_history=bars_history,
                   social=social, social_window=social_window,
                   social_scores=score_posts(scorer, [p for posts in social.values() for p in posts]),
                   technical=params.strategy.technical)  # fmt: skip

    def _window_signals(
        self, symbol: str, s: _SymbolSeries, momentum: MomentumParams, reversion: MeanReversionParams
    ) -> tuple[int, LazySignals, LazySignals]:
        """The price signals of every close count a step of the window may see (from the count known at its start),
        their strengths computed at once (``agents.strategies``' ``lazy_*_at_ends``: the same values as one step at a
        time), each signal built when a step reads it."""
        first = bisect_right(s.close_known_at, self.start)
        trends = lazy_momentum_at_ends(s.closes, symbol, momentum, self.history, first)
        fades = lazy_mean_reversion_at_ends(s.closes, symbol, reversion, self.history, first)
        return first, trends, fades

    def _window_votes(
        self, s: _SymbolSeries, signals: tuple[int, LazySignals, LazySignals], params: TechnicalParams
    ) -> _WindowVotes:
        """The technical vote and the entry of every count of rows a step of the window may see (from the count
        known at its start; at least one), with the price signals of the closes among those rows, computed at once
        (``technical_votes_of_columns``: the values of ``technical_vote`` on the decision's values, which votes the
        rows it leaves)."""
        first = max(1, bisect_right(s.known_at, self.start))
        first_count, trends, fades = signals
        # per row from the first a step sees: the count of closes among the rows up to it, from the first count
        table = s.table or {name: [] for name in _TECHNICAL_TABLE}  # a symbol without rows has no columns
        seen = accumulate([c is not None for c in table["close"]], initial=-first_count)
        counts = list(islice(seen, first, None))
        rows = s.rows[first - 1 :]
        window = {name: values[first - 1 :] for name, values in table.items()}
        up, back = trends.strengths, fades.strengths
        spoken, strategy = strategy_scores([up[i] for i in counts], [back[i] for i in counts])
        actions, confidences = technical_votes_of_columns(window, spoken, strategy, params)
        for k, action in enumerate(actions):
            if action is None:  # warm-up or a value not finite: voted on the values the decision reads
                row, i = rows[k], counts[k]
                values = feature_values(row, TECHNICAL_COLUMNS)
                actions[k], confidences[k] = technical_vote(values, params, _signals_of(trends, fades, i))
        entries = row_entries(window["close"], window["ts"], self._utc_seen)
        return _WindowVotes(first, cast(list[Action], actions), confidences, entries)

    def market_at(self, as_of: datetime, symbols: Sequence[str] | None = None) -> MarketView:
        """What ``read_market_view`` reads at ``as_of`` for ``symbols`` (default: every symbol of the window)."""
        as_of = _keyed(require_utc(as_of, "as_of"))
        if not self.start <= as_of <= self.end:
            raise ValueError(f"as_of {as_of} is outside the replay window [{self.start}, {self.end}]")
        chosen = list(self._series) if symbols is None else list(symbols)
        features: dict[str, dict[str, Any]] = {}
        closes: dict[str, list[float]] = {}
        signals: dict[str, tuple[LazySignals, LazySignals, int]] = {}
        votes: dict[str, tuple[tuple[Action, float], tuple[float | None, datetime]]] = {}
        bars: dict[str, list[Bar]] = {}
        for symbol in chosen:
            s = self._series.get(symbol)
            if s is None:
                raise ValueError(f"{symbol} is not in the replay window")
            i = bisect_right(s.known_at, as_of)
            if i == 0:
                continue
            features[symbol] = s.rows[i - 1]
            j = bisect_right(s.close_known_at, as_of)
            closes[symbol] = s.closes[max(0, j - self.history) : j]
            if self._strategies is not None:
                first, trends, fades = self._signals[symbol]
                signals[symbol] = (trends, fades, j - first)
            if self._votes:
                voted = self._votes[symbol]
                k = i - voted.first
                votes[symbol] = ((voted.actions[k], voted.confidences[k]), voted.entries[k])
            if self.bars_history:
                k = bisect_right(s.bar_known_at, as_of)
                bars[symbol] = s.bars[max(0, k - self.bars_history) : k]
        news: dict[str, list[NewsItem]] = {}
        scores: dict[NewsId, SentimentScore] = {}
        if self._team_vote:
            since = as_of - self._news_window
            for symbol in features:
                held = self._news.get(symbol)
                if held is None:
                    news[symbol] = []
                    continue
                lo, hi = bisect_right(held.first_seen_at, since), bisect_right(held.first_seen_at, as_of)
                news[symbol] = held.items[lo:hi]
                for item in news[symbol]:
                    scores[item.id] = self._scores[item.id]
        ahead = None if self._strategies is None else PriceSignals(*self._strategies, by_symbol=_SignalsAt(signals))
        social: dict[str, Sequence[SocialPost]] = {}
        social_scores: dict[str, SentimentScore] = {}
        if self._social:  # none held (the SMA rule's window loads none): nothing to scan
            social = {symbol: known for symbol in features  # a symbol without posts held has none known (not scanned)
                      if (held_posts := self._social.get(symbol))
                      and (known := posts_known(held_posts, as_of, self._social_window))}  # fmt: skip
            social_scores = {p.id: self._social_scores[p.id] for posts in social.values() for p in posts}
        technical = (
            None
            if self._technical_params is None or self._strategies is None
            else TechnicalAhead(self._technical_params, *self._strategies, by_symbol=votes)
        )
        return MarketView(features, closes, news, scores, ahead, bars, social=social, social_scores=social_scores,
                          technical=technical)  # fmt: skip

    def closes_known(self, symbol: str, as_of: datetime) -> list[float]:
        """Every close of ``symbol`` loaded and known at ``as_of``, oldest first."""
        s = self._series[symbol]
        return s.closes[: bisect_right(s.close_known_at, _keyed(as_of))]

    def marks(self, symbols: Sequence[str], as_of: datetime) -> dict[str, Decimal]:
        """What ``agents.risk.context`` marks positions at: the newest row's close known at ``as_of`` per symbol."""
        found = {}
        for symbol in symbols:
            row = self.latest_row(symbol, as_of)
            if row is not None and row["close"] is not None:
                found[symbol] = Decimal(str(row["close"]))
        return found

    def returns(self, symbols: Sequence[str], as_of: datetime, bars: int) -> pd.DataFrame:
        """``agents.risk.context.returns_history`` at ``as_of``: the last ``bars`` ``ret_1`` known per symbol."""
        spans = self._returns_spans(symbols, as_of, bars)
        if not spans:
            return pd.DataFrame()
        aligned = self._aligned_returns(spans)
        if aligned is not None:
            at, names, matrix = aligned
            assert at is not None  # with its index
            labels = self._column_labels.get(names)
            if labels is None:
                labels = self._column_labels[names] = pd.Index(list(names), name="symbol")
            return pd.DataFrame(matrix, index=at, columns=labels)
        columns = {symbol: dict(self._series[symbol].rets[lo:j]) for symbol, (lo, j) in spans.items()}
        # What returns_frame's pivot builds, without the pivot (a tenth of a replay step's time otherwise).
        index = sorted(set().union(*columns.values()))
        values = np.full((len(index), len(columns)), np.nan)
        position = {ts: i for i, ts in enumerate(index)}
        for k, column in enumerate(columns.values()):
            for ts, ret in column.items():
                values[position[ts], k] = ret
        return pd.DataFrame(values, index=pd.DatetimeIndex(index, name="ts"),
                            columns=pd.Index(list(columns), name="symbol"))  # fmt: skip

    def returns_inputs(self, symbols: Sequence[str], as_of: datetime, bars: int) -> ReturnsInputs | None:
        """``agents.risk.portfolio.returns_inputs(self.returns(symbols, as_of, bars))``, equal to it bit for bit,
        from the arrays without the frame, when every symbol's span has the same bar times (the usual case); None
        otherwise (the caller prepares them from the frame). The correlations are computed when first read
        (``ReturnsInputs.correlation_values``).

        When the symbols' returns have the same bar and known times throughout the window (one row per bar each),
        their history at ``as_of`` is one slice of a matrix built once for these symbols (``_shared_returns``),
        copied in the frame's layout; else the spans are aligned at each call (``_aligned_returns``)."""
        names = tuple(sorted(set(symbols)))
        shared = self._shared_returns(names)
        if shared is None:
            spans = self._returns_spans(symbols, as_of, bars)
            aligned = self._aligned_returns(spans, with_index=False) if spans else None
            return None if aligned is None else ReturnsInputs(aligned[1], aligned[2])
        if bars > self.returns_bars:
            raise ValueError(f"the replay window holds {self.returns_bars} bars of returns, {bars} asked")
        known_at, values = shared
        j = bisect_right(known_at, _keyed(as_of))
        if not j:
            return None
        # bars x symbols, column-major (a frame's one float block), read-only: what _aligned_returns gives
        matrix = values[:, max(0, j - bars) : j].T.copy(order="F")
        matrix.flags.writeable = False
        return ReturnsInputs(names, matrix)

    def _shared_returns(self, names: tuple[str, ...]) -> tuple[list[datetime], np.ndarray] | None:
        """For ``names`` (sorted) whose returns have the same known times and the same strictly ascending bar times
        in the whole window: those known times and every return (symbols x bars, one row per symbol), made once per
        set of symbols; None otherwise (or without any return)."""
        if names in self._shared:
            return self._shared[names]
        found: tuple[list[datetime], np.ndarray] | None = None
        series = [self._series[symbol] for symbol in names]
        first = series[0] if series else None
        if (
            first is not None
            and first.rets
            and all(
                s.ret_known_at == first.ret_known_at and [ts for ts, _ in s.rets] == [ts for ts, _ in first.rets]
                for s in series[1:]
            )
        ):
            times = [ts for ts, _ in first.rets]
            if all(a < b for a, b in pairwise(times)):
                found = (first.ret_known_at, np.array([[r for _, r in s.rets] for s in series], dtype=float))
        self._shared[names] = found
        return found

    def _returns_spans(self, symbols: Sequence[str], as_of: datetime, bars: int) -> dict[str, tuple[int, int]]:
        """Per symbol with returns known at ``as_of`` (sorted): the range of its last ``bars`` returns."""
        if bars > self.returns_bars:
            raise ValueError(f"the replay window holds {self.returns_bars} bars of returns, {bars} asked")
        spans: dict[str, tuple[int, int]] = {}
        as_of = _keyed(as_of)
        for symbol in sorted(set(symbols)):
            j = bisect_right(self._series[symbol].ret_known_at, as_of)
            if j:
                spans[symbol] = (max(0, j - bars), j)
        return spans

    def _aligned_returns(
        self, spans: Mapping[str, tuple[int, int]], *, with_index: bool = True
    ) -> tuple[pd.DatetimeIndex | None, tuple[str, ...], np.ndarray] | None:
        """The index, columns and values of the frame ``returns`` builds, from arrays made once per symbol, when
        every symbol's span has the same bar times in strictly ascending order (the usual case: one row per bar);
        None otherwise (the general path). The values are laid out as a frame's (bars x symbols, column-major,
        read-only), so arithmetic on them gives the bits it gives on the frame's; the index only ``with_index``."""
        times: np.ndarray | None = None
        index, columns = None, []
        for symbol, (lo, j) in spans.items():
            held = self._ret_arrays.get(symbol)
            if held is None:
                rets = self._series[symbol].rets
                at = pd.DatetimeIndex([ts for ts, _ in rets], name="ts")
                held = self._ret_arrays[symbol] = (at, at.asi8, np.array([r for _, r in rets], dtype=float))
            if times is None:
                times, index = held[1][lo:j], held[0][lo:j] if with_index else None
                if len(times) > 1 and not bool((times[1:] > times[:-1]).all()):
                    return None
            elif j - lo != len(times) or not bool((held[1][lo:j] == times).all()):
                return None
            columns.append(held[2][lo:j])
        matrix = np.vstack(columns).T  # what a frame's one float block (symbols x bars) gives as bars x symbols
        matrix.flags.writeable = False
        return index, tuple(spans), matrix

    def latest_row(self, symbol: str, as_of: datetime) -> Mapping[str, Any] | None:
        """The newest feature row of ``symbol`` known at ``as_of`` (None before its first)."""
        s = self._series.get(symbol)
        if s is None:
            raise ValueError(f"{symbol} is not in the replay window")
        i = bisect_right(s.known_at, _keyed(as_of))
        return s.rows[i - 1] if i else None

    def latest_close(self, symbol: str, as_of: datetime) -> float | None:
        """The newest close of ``symbol`` known at ``as_of`` (what memory scoring calls the exit price)."""
        s = self._series[symbol]
        j = bisect_right(s.close_known_at, _keyed(as_of))
        return s.closes[j - 1] if j else None
