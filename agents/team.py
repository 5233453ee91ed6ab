"""The decision team: for each symbol at ``as_of``, read what was known then, ask the agents, vote, size, gate by risk,
and record all of it (DESIGN §1, §3, §4, §6).

``decide`` is the one entry point shared by the live decision flow and the backtest. What callers can rely on:

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
  with their scores, the position, the scorer, the agent weights, the config and the intents that passed risk), one
  ``audit.agent_outputs`` row per agent (a skipped LLM included, with its tokens and latency), one ``audit.risk_checks`` row per check per intent, lineage edges to
  ``marts.features``, ``raw.ohlcv`` and ``raw.news``.
- The returned ``Decision.intents`` are only the intents every risk check approved.

It writes on the caller's connection and does not commit: the caller's transaction decides.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Connection, text

from agents.consensus import ConsensusParams, consensus
from agents.llm.schema import AnalystInputs, Headline, PastSituation
from agents.memory import (
    MemoryParams,
    load_weights,
    realised_trade_returns,
    record_weights,
    score_outcomes,
    similar_situations,
)
from agents.news import NewsParams, news_opinion, recent_news_by_symbol
from agents.recording import AgentOutputRow, DecisionRow, record_decision
from agents.risk import RiskLimits, RiskVerdict, adjusted_intent, all_approved, check_intent
from agents.risk.context import portfolio_context
from agents.risk.sizing import SizingChoice, SizingParams, choose_notional, trade_stats
from agents.sentiment import SentimentScore, SentimentScorer, load_sentiment_scorer, score_news
from agents.strategies import (
    EventParams,
    MeanReversionParams,
    MomentumParams,
    mean_reversion,
    momentum,
    sentiment_shock,
)
from agents.strategies.sma_cross import SmaCrossParams, sma_cross_opinion
from agents.technical import TechnicalParams, technical_opinion
from agents.trader import opens_position, order_intents
from alphaloom.audit import git_sha
from alphaloom.domain import (
    Action,
    AgentOpinion,
    Decision,
    DecisionId,
    NewsId,
    OrderIntent,
    Side,
    decision_id_for,
    require_utc,
    stable_hash,
    timeframe_delta,
)
from alphaloom.errors import ConfigError, DataUnavailableError
from alphaloom.guards import HardLimits, kill_switch_state
from alphaloom.settings import Settings

FEATURES_RELATION = "marts.features"
RULES = frozenset({"team", "sma_cross"})
FEATURE_COLUMNS = (
    "open", "high", "low", "close", "volume", "ret_1", "log_ret_1", "sma_10", "sma_20", "sma_50", "ema_10", "ema_20",
    "ema_50", "rsi_14", "macd", "macd_signal", "macd_hist", "bb_middle_20", "bb_upper_20", "bb_lower_20",
    "bb_pct_b_20", "realized_vol_20", "volume_z_20",
)  # fmt: skip


class LlmAgent(Protocol):
    """An LLM opinion from what the team computed (``agents.llm.LlmAnalyst``): it informs the vote, never orders."""

    def opine(self, conn: Connection, *, run_id: str, inputs: AnalystInputs) -> AgentOpinion: ...


@dataclass(frozen=True)
class Team:
    """The parts of the team that hold resources: the sentiment scorer (FinBERT or the lexicon) and the LLM analyst
    (None without an endpoint)."""

    scorer: SentimentScorer
    llm_agent: LlmAgent | None


def build_team(settings: Settings) -> Team:
    """FinBERT when it loads (else the lexicon, recorded), and the LLM analyst when ``llm_base_url`` is set."""
    from agents.llm import LlmAnalyst

    llm_agent = LlmAnalyst(settings) if settings.llm_base_url else None
    return Team(scorer=load_sentiment_scorer(settings), llm_agent=llm_agent)


@dataclass(frozen=True)
class StrategyParams:
    """Everything decision-relevant beyond the settings' limits; all of it goes into the config version."""

    technical: TechnicalParams = field(default_factory=TechnicalParams)
    news: NewsParams = field(default_factory=NewsParams)
    consensus: ConsensusParams = field(default_factory=ConsensusParams)
    momentum: MomentumParams = field(default_factory=MomentumParams)
    mean_reversion: MeanReversionParams = field(default_factory=MeanReversionParams)
    event: EventParams = field(default_factory=EventParams)
    memory: MemoryParams = field(default_factory=MemoryParams)
    max_feature_age_bars: int = 3
    trader: str = "long-only-v1"
    # "team": every agent votes; "sma_cross": only the SMA crossover rule decides (no news, no LLM), the rule the
    # vectorized fast path implements, so the two paths can be compared trade for trade.
    rule: str = "team"
    sma_cross: SmaCrossParams = field(default_factory=SmaCrossParams)

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ConfigError(f"strategy rule {self.rule!r} is not one of {sorted(RULES)}")


def _dec(value: Decimal) -> str:
    return format(value.normalize(), "f")


def decision_config(settings: Settings, strategy: StrategyParams) -> dict[str, Any]:
    """The decision-relevant configuration. The sentiment scorer and LLM endpoint are deliberately not in it (they
    are recorded in the inputs): a FinBERT load failure must not turn a rerun into a new decision that trades again."""
    config: dict[str, Any] = {
        "exchange": settings.exchange,
        "timeframe": settings.timeframe,
        "order_notional": _dec(settings.order_notional),
        "max_order_notional": _dec(settings.max_order_notional),
        "max_position_notional": _dec(settings.max_position_notional),
        "price_band_pct": _dec(settings.price_band_pct),
        "technical": strategy.technical.as_dict(),
        "news": strategy.news.as_dict(),
        "consensus": strategy.consensus.as_dict(),
        "momentum": asdict(strategy.momentum),
        "mean_reversion": asdict(strategy.mean_reversion),
        "event": asdict(strategy.event),
        "memory": strategy.memory.as_dict(),
        "max_feature_age_bars": strategy.max_feature_age_bars,
        "trader": strategy.trader,
    }
    # Only a non-default sizing joins the config: the default keeps the versions (and so the decision ids) that were
    # recorded before sizing modes existed, so a rerun of an old decision still submits nothing.
    if settings.sizing_mode != "fixed":
        config["sizing"] = {
            "mode": settings.sizing_mode,
            "kelly_fraction": _dec(settings.kelly_fraction),
            "kelly_cap": _dec(settings.kelly_cap),
            "target_volatility": settings.target_volatility,
            "kelly_min_trades": settings.kelly_min_trades,
            "sizing_lookback_trades": settings.sizing_lookback_trades,
        }
    if strategy.rule != "team":  # only then, so the team's config version (and decision ids) stay as they were
        config |= {"rule": strategy.rule, strategy.rule: asdict(strategy.sma_cross)}
    return config


def config_version(settings: Settings, strategy: StrategyParams | None = None) -> str:
    """Stable hash of ``decision_config``: same settings and parameters, same version, in any process."""
    config = decision_config(settings, strategy or StrategyParams())
    return stable_hash(json.dumps(config, sort_keys=True), length=16)


def _utc(value: datetime) -> datetime:
    # dbt may materialize a timestamp without time zone; the warehouse convention is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def latest_features(
    conn: Connection, *, exchange: str, symbols: Sequence[str], timeframe: str, as_of: datetime
) -> dict[str, dict[str, Any]]:
    """Per symbol, the newest ``marts.features`` row known at ``as_of`` (``known_at <= as_of``); a symbol with none is
    absent. One query for all symbols.

    Raises ``DataUnavailableError`` when the features mart has not been built at all."""
    if not symbols:
        return {}
    if conn.execute(text("select to_regclass(:r)"), {"r": FEATURES_RELATION}).scalar() is None:
        raise DataUnavailableError(f"{FEATURES_RELATION} does not exist; build the features first")
    rows = conn.execute(
        text(
            f"""select distinct on (symbol) * from {FEATURES_RELATION}
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


def _recorded_decisions(conn: Connection, decision_ids: Sequence[DecisionId]) -> set[str]:
    return set(
        conn.execute(
            text("select decision_id from audit.decisions where decision_id = any(:d)"), {"d": list(decision_ids)}
        ).scalars()
    )


def _llm_opinion(
    conn: Connection, run_id: str, settings: Settings, llm_agent: LlmAgent | None, inputs: AnalystInputs
) -> AgentOpinion:
    if llm_agent is None:
        reason = "no LLM endpoint configured" if settings.llm_base_url is None else "no LLM agent wired"
        return AgentOpinion(
            "llm", inputs.symbol, inputs.as_of, Action.HOLD, 0.0, reason, model=settings.llm_model, skipped=True
        )
    return llm_agent.opine(conn, run_id=run_id, inputs=inputs)


def _opinion_output(opinion: AgentOpinion) -> dict[str, Any]:
    return {
        "action": opinion.action.value,
        "confidence": opinion.confidence,
        "rationale": opinion.rationale,
        "details": opinion.details,
    }


def _existing_decision(conn: Connection, decision_id: DecisionId) -> Decision | None:
    row = conn.execute(
        text("select account, symbol, timeframe, as_of, action, score from audit.decisions where decision_id = :d"),
        {"d": decision_id},
    ).first()
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
        for o in conn.execute(
            text(
                "select agent, symbol, as_of, model, prompt_hash, skipped, output from audit.agent_outputs "
                "where decision_id = :d order by id"
            ),
            {"d": decision_id},
        )
    )
    return Decision(
        decision_id, row.account, row.symbol, row.timeframe, row.as_of, Action(row.action), row.score, opinions
    )


def sizing_params(settings: Settings) -> SizingParams:
    return SizingParams(
        mode=settings.sizing_mode,
        order_notional=settings.order_notional,
        max_order_notional=settings.max_order_notional,
        kelly_fraction=settings.kelly_fraction,
        kelly_cap=settings.kelly_cap,
        target_volatility=settings.target_volatility,
        min_trades=settings.kelly_min_trades,
    )


def _sizing_verdicts(intent: OrderIntent, sized: SizingChoice | None) -> list[RiskVerdict]:
    """The sizing of a buy that opens a position, recorded with the risk checks (it approves: size is not a limit)."""
    if sized is None or intent.side is not Side.BUY:
        return []
    return [RiskVerdict("position_sizing", True, sized.reason, dict(sized.numbers))]


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
) -> list[Decision]:
    """One ``Decision`` per symbol that had features known at ``as_of`` (see the module docstring for guarantees)."""
    as_of = require_utc(as_of, "as_of")
    strategy = strategy or StrategyParams()
    if conn.execute(text("select 1 from audit.accounts where id = :a"), {"a": account}).first() is None:
        raise ConfigError(f"account {account!r} does not exist; create it with execution.accounts.ensure_account")
    version = config_version(settings, strategy)
    config = decision_config(settings, strategy)
    limits = HardLimits.from_settings(settings)
    kill_switch = kill_switch_state(conn)
    risk_limits = RiskLimits.from_settings(settings)
    portfolio = portfolio_context(conn, account=account, symbols=symbols, as_of=as_of, settings=settings)
    # Memory, point in time: score what has been realised by as_of, then weigh the agents by those outcomes only.
    score_outcomes(conn, account=account, as_of=as_of, timeframe=settings.timeframe, run_id=run_id,
                   params=strategy.memory)  # fmt: skip
    base_weights = {agent: strategy.consensus.weights.get(agent, strategy.consensus.default_weight)
                    for agent in ("technical", "news", "llm")}  # fmt: skip
    weights = load_weights(conn, account=account, as_of=as_of, base=base_weights, params=strategy.memory)
    record_weights(conn, account=account, as_of=as_of, run_id=run_id, weights=weights)
    learned = ConsensusParams(
        weights={agent: w.weight for agent, w in weights.items()},
        default_weight=strategy.consensus.default_weight,
        threshold=strategy.consensus.threshold,
    )
    weights_record = {agent: {"weight": round(w.weight, 6), "base": base_weights[agent],
                              "hit_rate": None if w.hit_rate is None else round(w.hit_rate, 6), "scored": w.scored}
                      for agent, w in weights.items()}  # fmt: skip
    history = max(strategy.momentum.lookback, strategy.mean_reversion.window)
    team_vote = strategy.rule == "team"
    if not team_vote:
        history = strategy.sma_cross.slow
    sizing = sizing_params(settings)
    trades = (
        trade_stats(realised_trade_returns(conn, account=account, as_of=as_of, limit=settings.sizing_lookback_trades))
        if sizing.mode in ("kelly", "kelly_vol_target")
        else trade_stats([])
    )
    bars_per_year = timedelta(days=365) / timeframe_delta(settings.timeframe)
    # What the step reads per symbol, read once for all symbols (one query each, not one per symbol).
    decision_ids = {symbol: decision_id_for(account, symbol, settings.timeframe, as_of, version) for symbol in symbols}
    recorded = _recorded_decisions(conn, list(decision_ids.values()))
    pending = [symbol for symbol in symbols if decision_ids[symbol] not in recorded]
    feature_rows = latest_features(
        conn, exchange=settings.exchange, symbols=pending, timeframe=settings.timeframe, as_of=as_of
    )
    known = [symbol for symbol in pending if symbol in feature_rows]
    positions = current_positions(conn, account, known) if known else {}
    closes_by_symbol = recent_closes(conn, exchange=settings.exchange, symbols=known, timeframe=settings.timeframe,
                                     as_of=as_of, count=history)  # fmt: skip
    news_by_symbol = recent_news_by_symbol(conn, known if team_vote else [], as_of, strategy.news.window)
    news_scores = score_news(conn, run_id, scorer, list({i.id: i for n in news_by_symbol.values() for i in n}.values()))
    decisions: list[Decision] = []
    for symbol in symbols:
        decision_id = decision_ids[symbol]
        if decision_id in recorded:
            existing = _existing_decision(conn, decision_id)
            if existing is not None:
                decisions.append(existing)
            continue
        features = feature_rows.get(symbol)
        if features is None:
            continue
        values = {c: _clean(features.get(c)) for c in FEATURE_COLUMNS}
        feature_key = {
            "exchange": features["exchange"],
            "symbol": features["symbol"],
            "timeframe": features["timeframe"],
            "ts": _utc(features["ts"]).isoformat(),
        }
        news = news_by_symbol.get(symbol, [])
        scores: dict[NewsId, SentimentScore] = {item.id: news_scores[item.id] for item in news}
        position_qty, position_avg = positions[symbol]
        closes = closes_by_symbol[symbol]
        signals = [
            signal
            for signal in (
                momentum(closes, symbol, strategy.momentum),
                mean_reversion(closes, symbol, strategy.mean_reversion),
            )
            if signal is not None and team_vote
        ]
        event = sentiment_shock([scores[item.id].score for item in news], symbol, strategy.event)

        memories = (
            similar_situations(conn, account=account, as_of=as_of, values=values, params=strategy.memory)
            if llm_agent is not None and team_vote
            else []
        )
        llm_inputs = (
            AnalystInputs(
                symbol=symbol, as_of=as_of, timeframe=settings.timeframe, features=values,
                headlines=tuple(Headline(item.id, item.title, item.first_seen_at, scores[item.id].label,
                                         scores[item.id].score) for item in news),
                position_quantity=float(position_qty), position_avg_price=float(position_avg),
                memories=tuple(PastSituation(m.symbol, m.as_of, m.action, m.realised_return, m.horizon_bars,
                                             m.distance) for m in memories),
            )
        )  # fmt: skip
        opinions = (
            (
                technical_opinion(values, symbol, as_of, strategy.technical, signals),
                news_opinion(symbol, as_of, scores, strategy.news, event),
                _llm_opinion(conn, run_id, settings, llm_agent, llm_inputs),
            )
            if team_vote
            else (sma_cross_opinion(closes, symbol, as_of, strategy.sma_cross),)
        )
        action, score = consensus(opinions, learned) if team_vote else (opinions[0].action, opinions[0].confidence)
        price = Decimal(str(values["close"])) if values["close"] else Decimal(0)
        sized = (
            choose_notional(sizing, equity=portfolio.equity, stats=trades, bar_volatility=values.get("realized_vol_20"),
                            bars_per_year=bars_per_year)
            if opens_position(action, position_qty)
            else None
        )  # fmt: skip
        intents = (
            order_intents(
                decision_id=decision_id,
                account=account,
                symbol=symbol,
                action=action,
                position_quantity=position_qty,
                price=price,
                order_notional=settings.order_notional if sized is None else sized.notional,
                market=portfolio.market(symbol),
                quote_rate=portfolio.quote_rate(symbol),
            )
            if price > 0
            else []
        )
        known_at = _utc(features["known_at"])
        feature_age = as_of - known_at
        max_age = timeframe_delta(settings.timeframe) * strategy.max_feature_age_bars
        verdicts = [
            (
                intent,
                check_intent(
                    intent,
                    limits=limits,
                    current_quantity=position_qty,
                    last_price=price,
                    kill_switch=kill_switch,
                    quote_rate=portfolio.quote_rate(symbol),
                    feature_age=feature_age,
                    max_feature_age=max_age,
                    portfolio=portfolio,
                    risk_limits=risk_limits,
                )
                + _sizing_verdicts(intent, sized),
            )
            for intent in intents
        ]
        approved = tuple(a for intent, v in verdicts if (a := adjusted_intent(intent, v)) is not None)
        for intent in approved:  # the next symbol's portfolio checks see this one's exposure
            portfolio = portfolio.after(intent, portfolio.quote_rate(symbol).required())

        inputs = {
            "features": {
                "key": feature_key,
                "known_at": known_at.isoformat(),
                "dbt_invocation_id": features.get("dbt_invocation_id"),
                "values": values,
            },
            "news": [
                {
                    "id": item.id,
                    "first_seen_at": item.first_seen_at.isoformat(),
                    "first_seen_assumed": item.first_seen_assumed,
                    "label": scores[item.id].label,
                    "score": scores[item.id].score,
                }
                for item in news
            ],
            "position": {"quantity": str(position_qty), "avg_price": str(position_avg)},
            "scorer": scorer.name,
            "scorer_fallback": getattr(scorer, "fallback_reason", None),
            "weights": weights_record,
            "closes_read": len(closes),
            "sizing": None if sized is None else {"reason": sized.reason, **sized.numbers},
            "kill_switch": {"engaged": kill_switch.engaged, "reason": kill_switch.reason},
            "config": config,
            "intents": [
                {"side": i.side.value, "quantity": str(i.quantity), "reference_price": str(i.reference_price),
                 "leg": i.leg, "approved": all_approved(v)}
                for i, v in verdicts
            ],
        }  # fmt: skip
        input_refs = {
            "technical": {"features": feature_key, "closes": len(closes)},
            "news": {"news_ids": [item.id for item in news], "scorer": scorer.name},
            "llm": {"features": feature_key, "news_ids": [item.id for item in news],
                    "memories": [m.decision_id for m in memories]},
        }  # fmt: skip
        inserted = record_decision(
            conn,
            DecisionRow(decision_id, run_id, account, symbol, settings.timeframe, as_of, action.value, score, version,
                        inputs, features.get("dbt_invocation_id"), git_sha()),
            outputs=[
                AgentOutputRow(o.agent, _opinion_output(o), o.model or (scorer.name if o.agent == "news" else None),
                               o.prompt_hash, input_refs.get(o.agent, {}), o.skipped, o.details.get("tokens"),
                               o.details.get("latency_ms"))
                for o in opinions
            ],
            verdicts=verdicts,
            lineage=[
                ("marts.features", {**feature_key, "dbt_invocation_id": features.get("dbt_invocation_id")}),
                ("raw.ohlcv", feature_key),
                *(("raw.news", {"id": item.id}) for item in news),
            ],
        )  # fmt: skip
        if not inserted:  # a concurrent run recorded it first: it owns the intents
            concurrent = _existing_decision(conn, decision_id)
            if concurrent is not None:
                decisions.append(concurrent)
            continue
        decisions.append(
            Decision(decision_id, account, symbol, settings.timeframe, as_of, action, score, opinions, approved)
        )
    return decisions
