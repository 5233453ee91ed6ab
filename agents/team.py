"""The decision team: for each symbol at ``as_of``, read what was known then, ask the agents, vote, size, gate by risk,
and record all of it (DESIGN §1, §3, §4, §6).

``decide`` is the one entry point shared by the live decision flow and the backtest. What callers can rely on:

- Point in time: it reads the latest ``marts.features`` row with ``known_at <= as_of`` and news first seen in
  ``(as_of - window, as_of]``; a symbol with no such feature row is skipped (no decision, nothing recorded).
- Idempotency: ``decision_id`` = hash(account, symbol, timeframe, as_of, config version); when that decision already
  exists it is returned with no intents, so a rerun submits nothing.
- Audit: one ``audit.decisions`` row (inputs: the feature values read with their key and dbt invocation id, news ids
  with their scores, the position, the scorer, the config and the intents that passed risk), one ``audit.agent_outputs``
  row per agent (a skipped LLM included), one ``audit.risk_checks`` row per check per intent, lineage edges to
  ``marts.features``, ``raw.ohlcv`` and ``raw.news``.
- The returned ``Decision.intents`` are only the intents every risk check approved.

It writes on the caller's connection and does not commit: the caller's transaction decides.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from agents.consensus import ConsensusParams, consensus
from agents.news import NewsParams, news_opinion, recent_news
from agents.risk import RiskLimits, RiskVerdict, adjusted_intent, all_approved, check_intent
from agents.risk.context import portfolio_context
from agents.sentiment import SentimentScore, SentimentScorer, score_news
from agents.technical import TechnicalParams, technical_opinion
from agents.trader import order_intents
from alphaloom.audit import add_lineage, git_sha
from alphaloom.domain import (
    Action,
    AgentOpinion,
    Decision,
    DecisionId,
    NewsId,
    NewsItem,
    OrderIntent,
    decision_id_for,
    require_utc,
    stable_hash,
    timeframe_delta,
)
from alphaloom.errors import ConfigError, DataUnavailableError
from alphaloom.guards import HardLimits, kill_switch_state
from alphaloom.settings import Settings

FEATURES_RELATION = "marts.features"
FEATURE_COLUMNS = (
    "open", "high", "low", "close", "volume", "ret_1", "log_ret_1", "sma_10", "sma_20", "sma_50", "ema_10", "ema_20",
    "ema_50", "rsi_14", "macd", "macd_signal", "macd_hist", "bb_middle_20", "bb_upper_20", "bb_lower_20",
    "bb_pct_b_20", "realized_vol_20", "volume_z_20",
)  # fmt: skip

LlmAgent = Callable[[str, datetime, Mapping[str, float | None], Sequence[NewsItem]], AgentOpinion]
"""An LLM opinion from (symbol, as_of, feature values, news): it can inform the vote, never place an order."""


@dataclass(frozen=True)
class StrategyParams:
    """Everything decision-relevant beyond the settings' limits; all of it goes into the config version."""

    technical: TechnicalParams = field(default_factory=TechnicalParams)
    news: NewsParams = field(default_factory=NewsParams)
    consensus: ConsensusParams = field(default_factory=ConsensusParams)
    max_feature_age_bars: int = 3
    trader: str = "long-only-v1"


def _dec(value: Decimal) -> str:
    return format(value.normalize(), "f")


def decision_config(settings: Settings, strategy: StrategyParams) -> dict[str, Any]:
    """The decision-relevant configuration. The sentiment scorer and LLM endpoint are deliberately not in it (they
    are recorded in the inputs): a FinBERT load failure must not turn a rerun into a new decision that trades again."""
    return {
        "exchange": settings.exchange,
        "timeframe": settings.timeframe,
        "order_notional": _dec(settings.order_notional),
        "max_order_notional": _dec(settings.max_order_notional),
        "max_position_notional": _dec(settings.max_position_notional),
        "price_band_pct": _dec(settings.price_band_pct),
        "technical": strategy.technical.as_dict(),
        "news": strategy.news.as_dict(),
        "consensus": strategy.consensus.as_dict(),
        "max_feature_age_bars": strategy.max_feature_age_bars,
        "trader": strategy.trader,
    }


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
    conn: Connection, *, exchange: str, symbol: str, timeframe: str, as_of: datetime
) -> dict[str, Any] | None:
    """The newest ``marts.features`` row known at ``as_of`` (``known_at <= as_of``), or None.

    Raises ``DataUnavailableError`` when the features mart has not been built at all."""
    if conn.execute(text("select to_regclass(:r)"), {"r": FEATURES_RELATION}).scalar() is None:
        raise DataUnavailableError(f"{FEATURES_RELATION} does not exist; build the features first")
    row = (
        conn.execute(
            text(
                f"""select * from {FEATURES_RELATION}
                    where exchange = :exchange and symbol = :symbol and timeframe = :timeframe
                      and known_at <= :as_of
                    order by ts desc limit 1"""
            ),
            {"exchange": exchange, "symbol": symbol, "timeframe": timeframe, "as_of": as_of},
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def current_position(conn: Connection, account: str, symbol: str) -> tuple[Decimal, Decimal]:
    """(quantity, avg_price) from ``audit.positions``; (0, 0) when the account never held the symbol."""
    row = conn.execute(
        text("select quantity, avg_price from audit.positions where account = :a and symbol = :s"),
        {"a": account, "s": symbol},
    ).first()
    return (Decimal(0), Decimal(0)) if row is None else (Decimal(row.quantity), Decimal(row.avg_price))


def _llm_opinion(
    settings: Settings,
    llm_agent: LlmAgent | None,
    symbol: str,
    as_of: datetime,
    values: Mapping[str, float | None],
    news: Sequence[NewsItem],
) -> AgentOpinion:
    if settings.llm_base_url is None or llm_agent is None:
        reason = "no LLM endpoint configured" if settings.llm_base_url is None else "no LLM agent wired"
        return AgentOpinion("llm", symbol, as_of, Action.HOLD, 0.0, reason, model=settings.llm_model, skipped=True)
    return llm_agent(symbol, as_of, values, news)


def _opinion_json(opinion: AgentOpinion) -> str:
    return json.dumps(
        {
            "action": opinion.action.value,
            "confidence": opinion.confidence,
            "rationale": opinion.rationale,
            "details": opinion.details,
        },
        default=str,
    )


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


def _check_name(verdict: RiskVerdict, intent: OrderIntent) -> str:
    return verdict.check_name if intent.leg == 0 else f"{verdict.check_name}[leg {intent.leg}]"


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
    decisions: list[Decision] = []
    for symbol in symbols:
        decision_id = decision_id_for(account, symbol, settings.timeframe, as_of, version)
        existing = _existing_decision(conn, decision_id)
        if existing is not None:
            decisions.append(existing)
            continue
        features = latest_features(
            conn, exchange=settings.exchange, symbol=symbol, timeframe=settings.timeframe, as_of=as_of
        )
        if features is None:
            continue
        values = {c: _clean(features.get(c)) for c in FEATURE_COLUMNS}
        feature_key = {
            "exchange": features["exchange"],
            "symbol": features["symbol"],
            "timeframe": features["timeframe"],
            "ts": _utc(features["ts"]).isoformat(),
        }
        news = recent_news(conn, symbol, as_of, strategy.news.window)
        scores: dict[NewsId, SentimentScore] = score_news(conn, run_id, scorer, news)
        position_qty, position_avg = current_position(conn, account, symbol)

        opinions = (
            technical_opinion(values, symbol, as_of, strategy.technical),
            news_opinion(symbol, as_of, scores, strategy.news),
            _llm_opinion(settings, llm_agent, symbol, as_of, values, news),
        )
        action, score = consensus(opinions, strategy.consensus)
        price = Decimal(str(values["close"])) if values["close"] else Decimal(0)
        intents = (
            order_intents(
                decision_id=decision_id,
                account=account,
                symbol=symbol,
                action=action,
                position_quantity=position_qty,
                price=price,
                order_notional=settings.order_notional,
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
                    feature_age=feature_age,
                    max_feature_age=max_age,
                    portfolio=portfolio,
                    risk_limits=risk_limits,
                ),
            )
            for intent in intents
        ]
        approved = tuple(a for intent, v in verdicts if (a := adjusted_intent(intent, v)) is not None)
        for intent in approved:  # the next symbol's portfolio checks see this one's exposure
            portfolio = portfolio.after(intent)

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
            "kill_switch": {"engaged": kill_switch.engaged, "reason": kill_switch.reason},
            "config": config,
            "intents": [
                {"side": i.side.value, "quantity": str(i.quantity), "reference_price": str(i.reference_price),
                 "leg": i.leg, "approved": all_approved(v)}
                for i, v in verdicts
            ],
        }  # fmt: skip
        inserted = conn.execute(
            text(
                """insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action, score,
                                                config_version, dbt_invocation_id, git_sha, inputs)
                   values (:decision_id, :run_id, :account, :symbol, :timeframe, :as_of, :action, :score,
                           :config_version, :dbt_invocation_id, :git_sha, cast(:inputs as jsonb))
                   on conflict (decision_id) do nothing
                   returning decision_id"""
            ),
            {
                "decision_id": decision_id,
                "run_id": run_id,
                "account": account,
                "symbol": symbol,
                "timeframe": settings.timeframe,
                "as_of": as_of,
                "action": action.value,
                "score": score,
                "config_version": version,
                "dbt_invocation_id": features.get("dbt_invocation_id"),
                "git_sha": git_sha(),
                "inputs": json.dumps(inputs, default=str),
            },
        ).first()
        if inserted is None:  # a concurrent run recorded it first: it owns the intents
            concurrent = _existing_decision(conn, decision_id)
            if concurrent is not None:
                decisions.append(concurrent)
            continue

        input_refs = {
            "technical": {"features": feature_key},
            "news": {"news_ids": [item.id for item in news], "scorer": scorer.name},
            "llm": {"features": feature_key, "news_ids": [item.id for item in news]},
        }
        conn.execute(
            text(
                """insert into audit.agent_outputs (run_id, decision_id, agent, symbol, as_of, model, prompt_hash,
                                                    input_ref, output, skipped)
                   values (:run_id, :decision_id, :agent, :symbol, :as_of, :model, :prompt_hash,
                           cast(:input_ref as jsonb), cast(:output as jsonb), :skipped)"""
            ),
            [
                {
                    "run_id": run_id,
                    "decision_id": decision_id,
                    "agent": o.agent,
                    "symbol": symbol,
                    "as_of": as_of,
                    "model": o.model or (scorer.name if o.agent == "news" else None),
                    "prompt_hash": o.prompt_hash,
                    "input_ref": json.dumps(input_refs.get(o.agent, {}), default=str),
                    "output": _opinion_json(o),
                    "skipped": o.skipped,
                }
                for o in opinions
            ],
        )
        risk_rows = [
            {
                "run_id": run_id,
                "decision_id": decision_id,
                "account": account,
                "symbol": symbol,
                "check_name": _check_name(v, intent),
                "approved": v.approved,
                "reason": v.reason,
                "numbers": json.dumps(v.numbers),
            }
            for intent, intent_verdicts in verdicts
            for v in intent_verdicts
        ]
        if risk_rows:
            conn.execute(
                text(
                    """insert into audit.risk_checks (run_id, decision_id, account, symbol, check_name, approved,
                                                      reason, numbers)
                       values (:run_id, :decision_id, :account, :symbol, :check_name, :approved, :reason,
                               cast(:numbers as jsonb))"""
                ),
                risk_rows,
            )
        add_lineage(
            conn,
            run_id,
            "audit.decisions",
            decision_id,
            [
                ("marts.features", {**feature_key, "dbt_invocation_id": features.get("dbt_invocation_id")}),
                ("raw.ohlcv", feature_key),
                *(("raw.news", {"id": item.id}) for item in news),
            ],
        )
        decisions.append(
            Decision(decision_id, account, symbol, settings.timeframe, as_of, action, score, opinions, approved)
        )
    return decisions
