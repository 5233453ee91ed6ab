"""What a decision depends on beyond its inputs: the strategy parameters, the decision-relevant configuration and its
version, and ``DecisionParams``, everything the pure decision stage needs from the settings, derived once per run.

``config_version`` is a stable hash of ``decision_config``: same settings and parameters, same version, in any process
(it is part of every decision id, so a rerun of the same decision submits nothing).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from agents.consensus import ConsensusParams
from agents.earnings import EarningsParams
from agents.memory import MemoryParams
from agents.news import NewsParams
from agents.patterns.analyst import AGENT as PATTERN_AGENT
from agents.patterns.analyst import PatternParams
from agents.risk import RiskLimits
from agents.risk.sizing import SizingParams
from agents.social import SocialParams
from agents.strategies import EventParams, MeanReversionParams, MomentumParams
from agents.strategies.sma_cross import SmaCrossParams
from agents.technical import TechnicalParams
from alphaloom.domain import stable_hash, timeframe_delta
from alphaloom.errors import ConfigError
from alphaloom.guards import HardLimits
from alphaloom.settings import Settings

RULES = frozenset({"team", "sma_cross"})
AGENTS = ("technical", "news", "llm", "earnings", "social")


@dataclass(frozen=True)
class StrategyParams:
    """Everything decision-relevant beyond the settings' limits; all of it goes into the config version."""

    technical: TechnicalParams = field(default_factory=TechnicalParams)
    news: NewsParams = field(default_factory=NewsParams)
    earnings: EarningsParams = field(default_factory=EarningsParams)
    social: SocialParams = field(default_factory=SocialParams)
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
    # The chart-pattern analyst (agents.patterns): in the team only with a weight above 0 (ALPHALOOM_PATTERN_WEIGHT).
    patterns: PatternParams = field(default_factory=PatternParams)

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ConfigError(f"strategy rule {self.rule!r} is not one of {sorted(RULES)}")

    @property
    def team_vote(self) -> bool:
        """Every agent votes (else only the SMA crossover rule decides)."""
        return self.rule == "team"

    @property
    def history(self) -> int:
        """How many recent closes a decision reads."""
        if not self.team_vote:
            return self.sma_cross.slow
        return max(self.momentum.lookback, self.mean_reversion.window)

    @property
    def bars_history(self) -> int:
        """How many recent bars (OHLC) a decision reads: the pattern analyst's lookback when it votes, else none."""
        return self.patterns.lookback if self.team_vote and self.patterns.enabled else 0

    def base_weights(self) -> dict[str, float]:
        weights = {agent: self.consensus.weights.get(agent, self.consensus.default_weight) for agent in AGENTS}
        if self.team_vote and self.patterns.enabled:
            weights[PATTERN_AGENT] = self.patterns.weight
        return weights


def _dec(value: Decimal) -> str:
    return format(value.normalize(), "f")


def with_settings(settings: Settings, strategy: StrategyParams) -> StrategyParams:
    """``strategy`` with what the settings add to it: the pattern analyst's weight (``ALPHALOOM_PATTERN_WEIGHT``)
    when the strategy gives it none."""
    if settings.pattern_weight > 0 and not strategy.patterns.enabled:
        return replace(strategy, patterns=replace(strategy.patterns, weight=settings.pattern_weight))
    return strategy


def decision_config(settings: Settings, strategy: StrategyParams) -> dict[str, Any]:
    """The decision-relevant configuration. The sentiment scorer and LLM endpoint are deliberately not in it (they
    are recorded in the inputs): a FinBERT load failure must not turn a rerun into a new decision that trades again."""
    config: dict[str, Any] = {
        "exchange": settings.exchange,
        "timeframe": settings.timeframe,
        "order_notional": _dec(settings.order_notional),
        "max_order_notional": _dec(settings.risk.max_order_notional),
        "max_position_notional": _dec(settings.risk.max_position_notional),
        "price_band_pct": _dec(settings.risk.price_band_pct),
        "technical": strategy.technical.as_dict(),
        "news": strategy.news.as_dict(),
        "earnings": strategy.earnings.as_dict(),
        "social": strategy.social.as_dict(),
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
    if settings.risk.sizing_mode != "fixed":
        config["sizing"] = {
            "mode": settings.risk.sizing_mode,
            "kelly_fraction": _dec(settings.risk.kelly_fraction),
            "kelly_cap": _dec(settings.risk.kelly_cap),
            "target_volatility": settings.risk.target_volatility,
            "kelly_min_trades": settings.risk.kelly_min_trades,
            "sizing_lookback_trades": settings.risk.sizing_lookback_trades,
        }
    if strategy.team_vote and strategy.patterns.enabled:  # only then, as sizing: the versions without it stay
        config["patterns"] = strategy.patterns.as_dict()
    if strategy.rule != "team":  # only then, so the team's config version (and decision ids) stay as they were
        config |= {"rule": strategy.rule, strategy.rule: asdict(strategy.sma_cross)}
    return config


def config_version(settings: Settings, strategy: StrategyParams | None = None) -> str:
    """Stable hash of ``decision_config``: same settings and parameters, same version, in any process."""
    config = decision_config(settings, with_settings(settings, strategy or StrategyParams()))
    return stable_hash(json.dumps(config, sort_keys=True), length=16)


def sizing_params(settings: Settings) -> SizingParams:
    return SizingParams(
        mode=settings.risk.sizing_mode,
        order_notional=settings.order_notional,
        max_order_notional=settings.risk.max_order_notional,
        kelly_fraction=settings.risk.kelly_fraction,
        kelly_cap=settings.risk.kelly_cap,
        target_volatility=settings.risk.target_volatility,
        min_trades=settings.risk.kelly_min_trades,
    )


@dataclass(frozen=True)
class DecisionParams:
    """Everything the pure decision stage reads besides its ``Snapshot``, derived from the settings and the strategy
    once (a replay builds it once per run, not once per step)."""

    strategy: StrategyParams
    exchange: str
    timeframe: str
    config: dict[str, Any]
    version: str
    limits: HardLimits
    risk_limits: RiskLimits
    sizing: SizingParams
    order_notional: Decimal
    sizing_lookback_trades: int
    bars_per_year: float
    max_feature_age: timedelta
    llm_model: str | None
    llm_configured: bool

    @classmethod
    def from_settings(cls, settings: Settings, strategy: StrategyParams | None = None) -> DecisionParams:
        strategy = with_settings(settings, strategy or StrategyParams())
        bar = timeframe_delta(settings.timeframe)
        return cls(
            strategy=strategy,
            exchange=settings.exchange,
            timeframe=settings.timeframe,
            config=decision_config(settings, strategy),
            version=config_version(settings, strategy),
            limits=HardLimits.from_settings(settings),
            risk_limits=RiskLimits.from_settings(settings),
            sizing=sizing_params(settings),
            order_notional=settings.order_notional,
            sizing_lookback_trades=settings.risk.sizing_lookback_trades,
            bars_per_year=timedelta(days=365) / bar,
            max_feature_age=bar * strategy.max_feature_age_bars,
            llm_model=settings.llm.model,
            llm_configured=settings.llm.base_url is not None,
        )

    @property
    def uses_kelly(self) -> bool:
        return self.sizing.mode in ("kelly", "kelly_vol_target")
