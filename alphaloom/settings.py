"""AlphaLoom configuration: the one place settings are read.

Every value comes from an ``ALPHALOOM_``-prefixed environment variable or an optional ``.env`` file in the working
directory. Secrets are ``SecretStr`` so they never show up in reprs or logs.

``Settings`` holds the kernel (home, database, account, exchange, symbols, timeframe...) flat and one group per
concern: ``settings.llm`` (``LlmSettings``), ``risk``, ``paper``, ``split``, ``routing``, ``ingest`` and ``ops``. Each
group reads its own variables (``ALPHALOOM_LLM_MODEL`` is ``settings.llm.model``); a field whose variable does not
carry the group's prefix names it exactly (``validation_alias``), so every variable keeps the name it always had.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import AliasChoices, AliasPath, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DASK_SCHEME = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s/]+$")
ENV_PREFIX = "ALPHALOOM_"


LLM_TEAM_ROLES: dict[str, tuple[str, ...]] = {
    "analyst": ("analyst",),
    "compact": ("compact",),
    "debate": ("fundamental", "bull", "bear", "manager", "risk"),
}
"""The LLM roles each ``LlmSettings.team_mode`` consults, in the order they speak."""


def _config(env_prefix: str) -> SettingsConfigDict:
    """The same sources for the kernel and every group: the environment, then ``.env`` in the working directory."""
    return SettingsConfigDict(env_prefix=env_prefix, env_file=".env", extra="ignore", use_attribute_docstrings=True,
                              validate_by_name=True, validate_by_alias=True)  # fmt: skip


def _comma_list(value: object) -> object:
    """A comma-separated variable as a list (blank items dropped)."""
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    return value


def env_variable(model: type[BaseSettings], name: str) -> str:
    """The environment variable that sets field ``name`` of ``model`` (the kernel ``Settings`` or a group)."""
    alias = model.model_fields[name].validation_alias
    if isinstance(alias, str):
        return alias.upper()
    if isinstance(alias, AliasChoices | AliasPath):
        raise TypeError(f"{model.__name__}.{name}: only a plain string alias names a variable")
    return f"{model.model_config.get('env_prefix', '')}{name}".upper()


class LlmRoleEndpoint(BaseModel):
    """One LLM role's endpoint: any field left out falls back to the analyst's (``LlmSettings.base_url``, ``model``,
    ``api_key``)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    model: str | None = None
    api_key: SecretStr | None = None
    structured_output: Literal["json_schema", "json_object"] = "json_schema"


class LlmPrice(BaseModel):
    """One model's price, USD per 1M tokens: ``input`` (prompt) and ``output`` (completion)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)


class LlmSettings(BaseSettings):
    """The LLM roles (``ALPHALOOM_LLM_*``): endpoint, client behaviour, prices, budgets, training cutoffs, the team."""

    model_config = _config("ALPHALOOM_LLM_")

    base_url: str | None = None
    """OpenAI-compatible endpoint of the LLM analyst; unset: the analyst is skipped (recorded)."""
    api_key: SecretStr | None = None
    """API key of the LLM endpoint (a secret: never logged)."""
    model: str = "gpt-4o-mini"
    """Model id asked at the LLM endpoint."""
    # LLM roles: client behaviour, prices (USD per 1M tokens, per model) and budget caps.
    timeout_s: float = 30.0
    """LLM request timeout, seconds."""
    max_retries: int = 2
    """LLM retries on HTTP 429 and timeouts."""
    temperature: float = 0.0
    """LLM sampling temperature."""
    max_tokens: int = 600
    """Most completion tokens per LLM answer."""
    prices: dict[str, LlmPrice] = Field(
        default_factory=lambda: {"gpt-4o-mini": LlmPrice(input=Decimal("0.15"), output=Decimal("0.60")),
                                 "gpt-4o": LlmPrice(input=Decimal("2.50"), output=Decimal("10.00")),
                                 "gpt-4.1-mini": LlmPrice(input=Decimal("0.40"), output=Decimal("1.60")),
                                 "gpt-4.1": LlmPrice(input=Decimal("2.00"), output=Decimal("8.00"))}
    )  # fmt: skip
    """Price table (JSON): model -> {"input": USD per 1M prompt tokens, "output": USD per 1M completion tokens},
    e.g. {"llama3.1:8b": {"input": 0, "output": 0}} for a free local model. Every call's cost is stored in USD in
    audit.llm_usage; reports convert it into the account's base currency at the rate known when it was paid. A model
    in neither this table nor the two single prices below is refused (its cost, and so its budget, is unknown)."""
    price_per_1k_prompt: Decimal | None = Field(default=None, ge=0)
    """Older single price: USD per 1k prompt tokens, for every model not in ALPHALOOM_LLM_PRICES (set it together
    with ALPHALOOM_LLM_PRICE_PER_1K_COMPLETION; 0.00015 per 1k is 0.15 per 1M in the table)."""
    price_per_1k_completion: Decimal | None = Field(default=None, ge=0)
    """Older single price: USD per 1k completion tokens, for every model not in ALPHALOOM_LLM_PRICES."""
    decision_token_budget: int = 20_000
    """LLM tokens per decision (one symbol at one time, every role together): a call whose reservation (prompt
    estimate plus llm_max_tokens) would go past it is not made (skipped and recorded)."""
    decision_cost_budget: Decimal = Decimal("0.05")
    """LLM cost per decision, USD: a call whose reserved cost would go past it is not made."""
    daily_token_budget: int = 200_000
    """LLM tokens per UTC day; once reached the LLM roles are skipped (recorded)."""
    daily_cost_budget: Decimal = Decimal("1.00")
    """LLM cost per UTC day, USD; once reached the LLM roles are skipped."""
    run_token_budget: int = 50_000
    """LLM tokens per decision run."""
    run_cost_budget: Decimal = Decimal("0.25")
    """LLM cost per decision run, USD."""
    training_cutoffs: dict[str, date] = Field(
        default_factory=lambda: {"gpt-4o-mini": date(2023, 10, 1), "gpt-4o": date(2023, 10, 1),
                                 "gpt-4.1-mini": date(2024, 6, 1), "gpt-4.1": date(2024, 6, 1)}
    )  # fmt: skip
    """Training-data cutoff per model (JSON in the environment), for every LLM role's model: a backtest (or a
    decision run about the past) consulting a model over dates before its cutoff, or a model with no cutoff here,
    is refused unless allowed with --allow-exposure (the model may know what happened next), and flagged in the
    report. A decision about the present is never exposed, whatever the cutoff."""
    team_mode: Literal["analyst", "compact", "debate"] = "analyst"
    """The LLM roles consulted per decision: "analyst" (one analyst call, no tools), "compact" (one conversation
    plays bull, bear, research manager and risk reviewer, with tools) or "debate" (a fundamental analyst reads the
    earnings reports and filings known at the decision first, skipped without a call when there is none; bull and
    bear researchers argue for ``llm_debate_rounds`` rounds, a research manager writes the verdict, a risk reviewer
    may shrink or veto what the numeric risk gate approved)."""
    debate_rounds: int = Field(default=1, ge=1, le=3)
    """Rounds of the bull/bear debate (each round: one bull and one bear turn)."""
    tool_calls_per_role: int = Field(default=4, ge=0, le=12)
    """Most tool calls one LLM role may make per decision; past it, the role must answer from what it has."""
    roles: dict[str, LlmRoleEndpoint] = Field(default_factory=dict)
    """Per-role endpoint overrides (JSON in the environment), keyed by role (fundamental, bull, bear, manager, risk, compact):
    ``base_url``, ``model``, ``api_key`` (a secret: never logged or stored) and ``structured_output``
    ("json_schema" where the endpoint supports it, else "json_object": a JSON-mode prompt validated with one
    repair). A role without an entry uses ``llm_base_url``, ``llm_model`` and ``llm_api_key``."""

    @property
    def role_models(self) -> list[tuple[str, str]]:
        """(role, model) of every LLM role that may be consulted (``team_mode``, each role's ``roles`` model or
        ``model``): the one place the roles are listed (the training cutoff guard and the price check cover each;
        ``agents.llm.roles`` builds the team from it)."""
        return [(role, self.role_model(role)) for role in LLM_TEAM_ROLES[self.team_mode]]

    def role_model(self, role: str) -> str:
        """The model ``role`` asks: its ``roles`` entry's, else ``model``."""
        override = self.roles.get(role)
        return override.model if override is not None and override.model else self.model

    def price(self, model: str) -> LlmPrice | None:
        """``model``'s price per 1M tokens: its row of ``prices``, else the older single per-1k prices (x 1000),
        else None (unknown). ``ConfigError`` when only one of the two single prices is set."""
        if model in self.prices:
            return self.prices[model]
        if self.price_per_1k_prompt is None and self.price_per_1k_completion is None:
            return None
        if self.price_per_1k_prompt is None or self.price_per_1k_completion is None:
            from alphaloom.errors import ConfigError

            raise ConfigError("ALPHALOOM_LLM_PRICE_PER_1K_PROMPT and ALPHALOOM_LLM_PRICE_PER_1K_COMPLETION are set "
                              "together (or price the model in ALPHALOOM_LLM_PRICES)")  # fmt: skip
        return LlmPrice(input=self.price_per_1k_prompt * 1000, output=self.price_per_1k_completion * 1000)


class RiskSettings(BaseSettings):
    """Risk and the checks before a send (agents/risk, alphaloom.guards, execution): hard limits, drawdown, exposure,
    correlation, VaR, sizing, protective exits, fat-finger checks, reconciliation."""

    model_config = _config(ENV_PREFIX)

    # Hard limits (alphaloom.guards), enforced by risk and again by execution.
    max_position_notional: Decimal = Decimal("20000")
    """Hard limit (alphaloom.guards, checked by risk and again by execution): largest position notional, base
    currency."""
    max_order_notional: Decimal = Decimal("10000")
    """Hard limit: largest order notional, base currency."""
    price_band_pct: Decimal = Decimal("5")
    """Hard limit: an order price may differ from the reference price by at most this percent."""
    # --- Risk and execution (agents/risk, execution/) -------------------------------------------------------------
    # Drawdown controller: from peak equity, scale new exposure by ``drawdown_reduce_factor`` past the first threshold,
    # deny every new buy past the second.
    drawdown_reduce_pct: Decimal = Decimal("10")
    """Drawdown from peak equity (percent) past which new exposure is scaled by drawdown_reduce_factor."""
    drawdown_halt_pct: Decimal = Decimal("20")
    """Drawdown from peak equity (percent) past which every new buy is denied (account halt)."""
    drawdown_reduce_factor: Decimal = Decimal("0.5")
    """Scale applied to new exposure past drawdown_reduce_pct."""
    # Exposure limits as percent of equity; gross/net leverage as multiples of equity.
    max_asset_exposure_pct: Decimal = Decimal("25")
    """Largest exposure to one asset, percent of equity."""
    max_class_exposure_pct: Decimal = Decimal("60")
    """Largest exposure to one asset class or sector, percent of equity."""
    max_gross_leverage: Decimal = Decimal("1")
    """Largest gross exposure, as a multiple of equity."""
    max_net_leverage: Decimal = Decimal("1")
    """Largest net exposure, as a multiple of equity."""
    correlation_threshold: float = 0.8
    """Correlation risk: symbols whose return correlation is at least this form a cluster capped at this share."""
    max_cluster_exposure_pct: Decimal = Decimal("40")
    """Largest exposure to a cluster of correlated symbols, percent of equity."""
    correlation_lookback_bars: int = 200
    """Bars of returns the correlation clusters are computed over."""
    # Portfolio VaR limit (historical, 99%, 1 day) as percent of equity.
    max_var_pct: Decimal = Decimal("10")
    """Portfolio VaR limit (historical, 99%, 1 day), percent of equity."""
    # Sizing: fractional Kelly (fraction, capped), volatility targeting (annualised), protective exit levels.
    kelly_fraction: Decimal = Decimal("0.25")
    """Share of the full Kelly fraction used by Kelly sizing."""
    kelly_cap: Decimal = Decimal("0.2")
    """Cap of a Kelly-sized position, as a share of equity."""
    target_volatility: float = 0.4
    """Annualised volatility target of vol_target sizing."""
    sizing_mode: Literal["fixed", "kelly", "vol_target", "kelly_vol_target"] = "fixed"
    """How the trader sizes a new position: "fixed" (order_notional), "kelly" (fractional Kelly from the account's
    realised trades, once it has kelly_min_trades of them), "vol_target" (target_volatility over the symbol's
    realised volatility) or "kelly_vol_target" (the smaller). Always capped at max_order_notional."""
    kelly_min_trades: int = 20
    """Realised trades needed before Kelly sizing is used."""
    sizing_lookback_trades: int = 200
    """How many of the latest realised trades (team outcomes of buy decisions) estimate the win rate and payoff."""
    # Protective exits armed for every filled entry (execution.safety.protective.arm_entries), as percent below / above the
    # position's average entry price; unset (the default): no exit is armed.
    stop_loss_pct: Decimal | None = Field(default=None, gt=0, lt=100)
    """Protective stop-loss below the entry price, percent."""
    take_profit_pct: Decimal | None = Field(default=None, gt=0)
    """Protective take-profit above the entry price, percent."""
    # Fat-finger checks before any submit (execution): the daily loss limit halts the account.
    daily_loss_limit: Decimal = Decimal("5000")
    """Fat-finger check: a daily loss past this (base currency) halts the account."""
    max_orders_per_run: int = 50
    """Fat-finger check: most orders one decision run (one backtest step) may send."""
    live_max_decision_age_bars: int = Field(default=2, ge=0)
    """A live or shadow send is refused when its decision time is more than this many bars before the wall clock: a
    decision about a past bar is never executed at today's price."""
    reconcile_tolerance: Decimal = Decimal("0")
    """A live or shadow account is reconciled with its venue at the start of every decision run: a balance or
    position difference above this (absolute, in the currency's units) means no order is sent that run."""


class PaperSettings(BaseSettings):
    """The paper venue's costs and realism (``ALPHALOOM_PAPER_*``), in basis points or shares of a bar's volume."""

    model_config = _config("ALPHALOOM_PAPER_")

    # Paper broker costs, explicit: basis points of notional.
    fee_bps: Decimal = Decimal("10")
    """Paper broker fee, in basis points of notional."""
    slippage_bps: Decimal = Decimal("5")
    """Paper broker slippage, in basis points of price."""
    # Paper venue realism: half-spread paid, square-root impact coefficient (bps at 100% of bar volume), participation.
    spread_bps: Decimal = Decimal("2")
    """Paper venue: half-spread paid, basis points."""
    impact_bps: Decimal = Decimal("50")
    """Paper venue: square-root impact coefficient, basis points at 100% of the bar's volume."""
    max_participation: Decimal = Decimal("0.1")
    """Paper venue: largest share of a bar's volume one order may take."""


class SplitSettings(BaseSettings):
    """Child orders (``ALPHALOOM_SPLIT_*``, ``ALPHALOOM_TWAP_DURATION_MINUTES``): when and how an order is split."""

    model_config = _config("ALPHALOOM_SPLIT_")

    above_notional: Decimal | None = None
    """Child orders: execution splits an intent whose notional is above split_above_notional (unset: never) into
    split_slices equal children ("twap") or children of at most split_visible_notional each ("iceberg")."""
    method: Literal["twap", "iceberg"] = "twap"
    """How an order above split_above_notional is split: twap (equal slices over time) or iceberg (one visible
    child at a time)."""
    slices: int = 4
    """Children of a TWAP split."""
    visible_notional: Decimal = Decimal("2500")
    """Largest notional of one iceberg child."""
    twap_duration_minutes: int = Field(validation_alias="ALPHALOOM_TWAP_DURATION_MINUTES", default=60, ge=0)
    """A TWAP parent's slices are spread over this many minutes: slice k (0-based) is due at arrival + k * duration
    / N; the first goes out at once, the others are scheduled (audit.scheduled_slices) and released when due. 0:
    all at once."""


class RoutingSettings(BaseSettings):
    """Smart routing across venues (``ALPHALOOM_ROUTE_*``) and the resend after a submit timed out."""

    model_config = _config("ALPHALOOM_ROUTE_")

    venues: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Smart routing (live accounts): the venues (ccxt ids, ``alpaca``, ``oanda``; credentials stored for the account
    at each) whose order books or quotes compete for every order (``route_depth`` levels of each book are walked; a
    quote venue's best bid/ask is one level; best price after fees in the account's base currency first); empty:
    the account's own venue only. Taker fees in bps per venue override the market's published fee (your fee tier),
    as JSON, e.g. {"binance": 7.5}."""
    fee_bps: dict[str, Decimal] = Field(default_factory=dict)
    """Taker fee in bps per routing venue (JSON, e.g. {"binance": 7.5}), overriding the market's published fee."""
    depth: int = Field(default=10, ge=1, le=5000)
    """Order-book levels walked per venue by smart routing."""
    max_quote_age_seconds: float = Field(default=30.0, gt=0, le=3600)
    """Smart routing: the oldest quote (seconds) of a quote venue (Alpaca, OANDA) a plan uses; an older one leaves the
    venue out of that order's plan, recorded as a guard trip, never a guessed price."""
    currencies: dict[str, str] = Field(default_factory=dict)
    """Smart routing: the currency a book venue prices in where it is not the symbol's quote currency (JSON, e.g.
    {"binance": "USDT"}); venues in different currencies are compared at the newest stored fx rate."""
    resend_settle_seconds: float = Field(validation_alias="ALPHALOOM_RESEND_SETTLE_SECONDS", default=2.0, ge=0, le=60)
    """After a submit timed out, wait this long (seconds) for the venue's books to settle before the lookup that
    decides whether the order may be sent again (a just-filled order can take a moment to become visible there)."""

    @field_validator("venues", mode="before")
    @classmethod
    def _split_venues(cls, value: object) -> object:
        return _comma_list(value)


class IngestSettings(BaseSettings):
    """Ingest (``alphaloom ingest``, ``stream``): ccxt series, news feeds and aliases, the quote cache, data quality,
    the news point-in-time latency and the price sanity checks (``ALPHALOOM_INGEST_*``)."""

    model_config = _config(ENV_PREFIX)

    # Ingest (issue 4). ccxt price series as "exchange:BASE/QUOTE:timeframe"; a series with nothing stored starts
    # ``ccxt_backfill_days`` back. News feeds: URLs or files. Aliases: symbol -> words that tag a story with it.
    ccxt_sources: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Comma-separated ccxt series exchange:BASE/QUOTE:timeframe (e.g. binance:BTC/USDT:1h) for `ingest prices` and
    `stream`."""
    ccxt_max_concurrency: int = 4
    """ccxt exchanges fetched in parallel."""
    ccxt_backfill_days: int = 30
    """How far back a ccxt series with nothing stored starts, days."""
    feeds: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Comma-separated feed URLs or files for `ingest news` (unset: the offline sample feeds)."""
    symbol_aliases: dict[str, list[str]] = Field(default_factory=dict)
    """JSON, symbol -> words that tag a story with it: {"BTC/USDT": ["bitcoin", "btc"]}."""
    # Live quotes cache for `alphaloom stream`; unset = no cache.
    redis_url: str | None = None
    """Redis for the live quote cache of `alphaloom stream` (unset: no cache)."""
    quality_gap_tolerance_bars: int = 3
    """Data quality: a run of missing bars inside the session calendar longer than this is reported."""
    news_assumed_latency_minutes: int = 15
    """Point-in-time rule: file and backfill sources assume a story was seen this long after publication."""
    # Price ingest sanity (issue 13): a bar with a price outside [min, max] or a volume above the maximum is quarantined
    # (1e308 once passed every check and then overflowed the feature build for every symbol); so is a close more than
    # ``ingest_max_close_jump`` times, or less than 1/that, the series' previous close (stored or earlier in the input).
    # 0 turns the jump check off. A genuine move beyond it (a redenomination) needs a higher value and a re-ingest.
    min_price: float = Field(validation_alias="ALPHALOOM_INGEST_MIN_PRICE", default=1e-12, gt=0)
    """Price ingest sanity: a bar with a price below this is quarantined."""
    max_price: float = Field(validation_alias="ALPHALOOM_INGEST_MAX_PRICE", default=1e12, gt=0)
    """Price ingest sanity: a bar with a price above this is quarantined (1e308 once passed every check and then
    overflowed the feature build for every symbol)."""
    max_volume: float = Field(validation_alias="ALPHALOOM_INGEST_MAX_VOLUME", default=1e18, gt=0)
    """Price ingest sanity: a bar with a volume above this is quarantined."""
    max_close_jump: float = Field(validation_alias="ALPHALOOM_INGEST_MAX_CLOSE_JUMP", default=10.0, ge=0)
    """Price ingest sanity: a close more than this many times, or less than 1/that, the series' previous close
    (stored or earlier in the input) is quarantined; 0 turns the check off. A genuine move beyond it (a
    redenomination) needs a higher value and a re-ingest."""

    @field_validator("ccxt_sources", "feeds", mode="before")
    @classmethod
    def _split_ingest_lists(cls, value: object) -> object:
        return _comma_list(value)

    @property
    def alias_map(self) -> dict[str, str]:
        """``symbol_aliases`` inverted: alias -> symbol, as the news parser takes it."""
        return {alias: symbol for symbol, aliases in self.symbol_aliases.items() for alias in aliases}


class AlpacaSettings(BaseSettings):
    """US stocks through Alpaca (``ALPHALOOM_ALPACA_*``): which endpoint, market hours, the data feed."""

    model_config = _config("ALPHALOOM_ALPACA_")

    paper: bool = True
    """Send Alpaca orders to its paper-trading endpoint (paper keys); false: the live endpoint (live keys, real money)."""
    trading_url: str | None = None
    """Alpaca trading API base URL overriding the paper/live default (a proxy or a local stand-in)."""
    data_url: str | None = None
    """Alpaca market-data and news API base URL overriding the default (a proxy or a local stand-in)."""
    outside_session: Literal["refuse", "queue"] = "refuse"
    """An Alpaca order outside the exchange session: refuse it with the reason, or queue it for the open."""
    extended_hours: bool = False
    """Let Alpaca limit orders execute in pre- and after-market hours (off: regular session only)."""
    data_feed: Literal["iex", "sip"] = "iex"
    """Alpaca bars feed: iex (free plans) or sip (all US exchanges, paid)."""
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    """Seconds an Alpaca request may take before it counts as a timeout (a send's outcome is then looked up)."""


class OandaSettings(BaseSettings):
    """Forex through OANDA v20 (``ALPHALOOM_OANDA_*``): orders outside the forex week."""

    model_config = _config("ALPHALOOM_OANDA_")

    outside_session: Literal["refuse", "queue"] = "refuse"
    """An OANDA order outside the forex week (Friday 22:00 to Sunday 22:00 UTC): refuse it with the reason, or queue
    it for the open as a limit order within queue_band_bps of the decision's price."""
    queue_band_bps: Decimal = Decimal(50)
    """A queued OANDA market order becomes a limit order this many bps beyond the decision's price (above for a buy,
    below for a sell): it fills at the open unless the market opens further away."""


class OpsSettings(BaseSettings):
    """Operations: alerts, `alphaloom serve` and the console, stale data, Prefect, progress bars, the decision lock,
    Dask, the kill switch's cancels and the credentials key."""

    model_config = _config(ENV_PREFIX)

    # Operations (alphaloom serve / health / alerts).
    # Alerts are POSTed as JSON here (and always logged); unset: log only. May embed a token, so it is a secret.
    alert_webhook_url: SecretStr | None = None
    """Where alerts are POSTed as JSON (a secret: never logged); unset: log only."""
    alert_timeout_seconds: float = 5.0
    """Timeout of an alert POST, seconds."""
    # `alphaloom serve` binds the Prefect server here; 127.0.0.1 keeps the UI off the network unless asked.
    serve_host: str = "127.0.0.1"
    """Bind address of the embedded Prefect server (127.0.0.1 keeps the UI off the network)."""
    serve_port: int = 4200
    """Port of the embedded Prefect server (another free port when taken)."""
    serve_work_pool: str = "alphaloom-process"
    """Work pool of `alphaloom serve`'s worker and deployments."""
    # The operator console (`alphaloom console`, and beside the Prefect server in `alphaloom serve`): off loopback,
    # every page needs a login; actions always do.
    console_host: str = "127.0.0.1"
    """Bind address of the operator console (`alphaloom console`, and beside the Prefect server in `alphaloom
    serve`); off loopback every page needs a login (serve it behind HTTPS); actions always do."""
    console_port: int = 4300
    """Port of the operator console."""
    # Stale data: no new bar for a symbol within this many bar lengths.
    stale_after_bars: int = 3
    """Data is stale when no new bar arrived within this many bar lengths of session time."""
    # Per market (JSON): "exchange:asset_class", "exchange" or "asset_class" -> bars; counted in session time.
    stale_after_bars_by_market: dict[str, int] = Field(default_factory=dict)
    """Per-market stale limits (JSON): keys exchange:asset_class, exchange or asset_class (crypto, forex, stocks)
    -> bars, counted in session time, e.g. {"stocks": 2}."""
    embedded_prefect: bool = True
    """The embedded Prefect server (alphaloom.ops.prefect_server): flow commands start it on first use and reuse it;
    false (or PREFECT_API_URL set) leaves Prefect to its own configuration (a server you run, or a temporary API
    per command)."""
    progress: Literal["auto", "always", "never"] = "auto"
    """Progress bars of long commands (backtest, walk-forward) on stderr: auto draws them on a terminal only, always
    and never override that (1/true and 0/false are taken too)."""
    # Decision runs: how long a second run for the same account waits for the first before giving up.
    decision_lock_wait_seconds: float = 0.0
    """How long a second decision run for the same account waits for the first before failing."""
    # Past one machine (issue 18): where a flow's tasks run, and how many database connections each process may hold.
    dask_address: str | None = None
    """Where flows run their tasks (the decision fan-out, walk-forward windows, backtest shards): unset: in the flow's
    process (threads); `local`: a Dask `LocalCluster` of `ALPHALOOM_DASK_WORKERS` worker processes started for the
    run; `tcp://host:8786`: an existing Dask scheduler (its workers need the same `ALPHALOOM_` environment)."""
    dask_workers: int = Field(default=2, ge=1, le=256)
    """Worker processes of the `local` Dask cluster (one thread each)."""
    kill_switch_cancels_open_orders: bool = True
    """Kill switch: also cancel open orders at the venue when it is turned on."""
    secret_key: SecretStr | None = None
    """Credentials encryption key (Fernet, urlsafe base64); else kept by ``secret_key_store``: "auto" uses the OS
    keyring where a backend exists (macOS Keychain, Windows Credential Locker, Secret Service) and otherwise the
    0600 file ``home/secret.key``; "keyring" requires a backend; "file" always uses the file."""
    secret_key_store: Literal["auto", "keyring", "file"] = "auto"
    """Where the credentials key is kept when ALPHALOOM_SECRET_KEY is unset: auto (OS keyring if a backend exists,
    else the file), keyring, or file (`<home>/secret.key`, mode 0600)."""

    @field_validator("progress", mode="before")
    @classmethod
    def _progress_choice(cls, value: object) -> object:
        if isinstance(value, str):
            choice = value.strip().lower()
            return {"1": "always", "true": "always", "0": "never", "false": "never"}.get(choice, choice)
        return value

    @field_validator("dask_address", mode="before")
    @classmethod
    def _check_dask_address(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip() or None
        if value is None or value == "local" or (isinstance(value, str) and DASK_SCHEME.match(value)):
            return value
        raise ValueError(f"ALPHALOOM_DASK_ADDRESS must be unset, 'local' or a scheduler address such as "
                         f"tcp://host:8786, got {value!r}")  # fmt: skip


class Settings(BaseSettings):
    """Typed settings: the kernel flat, each concern in its group; see README "Configuration" for what each does."""

    model_config = _config(ENV_PREFIX)

    # Where AlphaLoom keeps its state (embedded database, generated data, GX docs...).
    home: Path = Field(default=PROJECT_ROOT / ".alphaloom")
    """Where AlphaLoom keeps its state (embedded PostgreSQL, Prefect home and server state, generated data, GX
    store, reports, keys). Default: the `.alphaloom` folder of the checkout AlphaLoom runs from, whatever the
    working directory."""
    # External PostgreSQL; when unset an embedded server is started under ``pgdata``.
    database_url: SecretStr | None = None
    """External PostgreSQL (postgresql://user:pass@host:5432/db); unset: the embedded server under pgdata."""
    pgdata: Path | None = None
    """Embedded PostgreSQL data directory (default `<home>/pg`; keep the path short: it also holds the socket)."""
    # Offline data used by the embedded default.
    data_dir: Path | None = None
    """Where the offline demo data is generated (default `<home>/data`)."""
    data_seed: int = 7
    """Seed of the generated offline data."""
    data_days: int = 400
    """Days of generated offline hourly bars."""
    # Trading defaults.
    account: str = "paper-main"
    """The account decisions are made for."""
    base_currency: str = "USDT"
    """Base currency of the paper account: cash, equity, P&L and every notional limit are in it."""
    exchange: str = "demo"
    """Exchange name of the traded series (the offline demo data is `demo`)."""
    timeframe: str = "1h"
    """Bar length the decision flow trades on (a ccxt timeframe such as 1h)."""
    benchmark_symbol: str = "BTC/USDT"
    """Benchmark for the rolling beta/correlation features (dbt var benchmark_symbol)."""
    symbols: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["BTC/USDT", "ETH/USDT", "SOL/USDT", "AAPL/USD", "MSFT/USD", "SPY/USD"]
    )
    """Comma-separated symbols the decision flow trades."""
    correlation_symbols: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Universe of marts.correlations (it grows with the square of the universe): empty = the traded ``symbols``;
    "*" = every stored symbol; else a comma-separated list."""
    starting_cash: Decimal = Decimal("100000")
    """Cash of a new paper account, in the base currency."""
    order_notional: Decimal = Decimal("5000")
    """Target notional of one entry order (base currency), with the fixed sizing mode."""
    pattern_weight: float = Field(default=0.0, ge=0)
    """Weight of the chart-pattern analyst in the team's vote; 0 leaves it out of the team (its parameters then stay
    out of the config version)."""
    # Sentiment and LLM.
    finbert_model: str = "ProsusAI/finbert"
    """Sentiment model (hub id or local folder); the finance lexicon stands in when it cannot load (recorded)."""
    sentiment_batch_size: int = 32
    """Headlines scored per FinBERT batch."""
    finbert_allow_download: bool = False
    """FinBERT weights come from a local folder or the local hub cache; set this to let a load download them."""
    backtest_fill_at: Literal["next_open", "close"] = "next_open"
    """Backtests: where an order decided at a bar's close fills. "next_open": the next bar's open (the decision
    bar's orders fill one bar later; the last step's expire unfilled); "close": the decision bar's close."""
    # Symbol -> sector/asset class (JSON in the environment), and symbol -> quantity step, for markets whose venue
    # gives no metadata (file sources; alphaloom.markets): a class such as "equity" trades whole units. A venue's own
    # metadata (raw.markets, from ccxt) gives the step; nothing is ever inferred from a symbol's quote currency.
    # The default describes the shipped sample data.
    asset_classes: dict[str, str] = Field(
        default_factory=lambda: {"BTC/USDT": "crypto", "ETH/USDT": "crypto", "SOL/USDT": "crypto",
                                 "AAPL/USD": "equity", "MSFT/USD": "equity", "SPY/USD": "equity"}
    )  # fmt: skip
    """JSON, symbol -> sector/asset class for markets whose venue gives no metadata (file sources;
    alphaloom.markets); a class equity/stocks/etf trades whole units; an unconfigured file symbol is unclassified, in
    1e-6 units. The same class picks the session calendar of freshness and quality gaps (equity/stock/stocks/etf:
    stock hours; forex/fx: the forex week; anything else, unclassified included: 24/7). Nothing is inferred from a
    symbol's quote currency. The default describes the shipped sample data."""
    quantity_steps: dict[str, Decimal] = Field(default_factory=dict)
    """JSON, symbol -> quantity step for markets whose venue gives no metadata (a venue's own metadata in
    raw.markets, from ccxt, gives the step)."""
    db_pool_size: int = Field(default=5, ge=1, le=100)
    """Database connections each process keeps open (SQLAlchemy pool size): each flow process and Dask worker has its
    own pool; see "Running on Dask" for the arithmetic against PostgreSQL's `max_connections`."""
    db_max_overflow: int = Field(default=5, ge=0, le=100)
    """Connections a process may open beyond `ALPHALOOM_DB_POOL_SIZE` under load (closed when returned)."""

    llm: LlmSettings = Field(default_factory=LlmSettings)
    """The LLM roles (``ALPHALOOM_LLM_*``)."""
    risk: RiskSettings = Field(default_factory=RiskSettings)
    """Risk limits, sizing and the checks before a send."""
    paper: PaperSettings = Field(default_factory=PaperSettings)
    """The paper venue's costs (``ALPHALOOM_PAPER_*``)."""
    split: SplitSettings = Field(default_factory=SplitSettings)
    """Child orders (``ALPHALOOM_SPLIT_*``)."""
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    """Smart routing (``ALPHALOOM_ROUTE_*``)."""
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    """Ingest: sources, feeds, quality and sanity checks."""
    ops: OpsSettings = Field(default_factory=OpsSettings)
    """Operations: alerts, serve, console, Prefect, Dask, the credentials key."""
    alpaca: AlpacaSettings = Field(default_factory=AlpacaSettings)
    """US stocks through Alpaca (``ALPHALOOM_ALPACA_*``)."""
    oanda: OandaSettings = Field(default_factory=OandaSettings)
    """Forex through OANDA v20 (``ALPHALOOM_OANDA_*``)."""

    @field_validator("symbols", "correlation_symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: object) -> object:
        return _comma_list(value)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with ``update`` applied: a key names a kernel field (``"timeframe"``) or a group's field
        (``"llm.model"``). An unknown key is refused (``KeyError``), never set on the side."""
        kernel: dict[str, Any] = {}
        groups: dict[str, dict[str, Any]] = {}
        for key, value in (update or {}).items():
            group, dot, name = key.partition(".")
            target = type(getattr(self, group)) if dot and group in GROUPS else type(self)
            if (name if dot else key) not in target.model_fields or (not dot and key in GROUPS):
                raise KeyError(f"{key!r} is not a setting (a group's field is named like 'llm.model')")
            if dot:
                groups.setdefault(group, {})[name] = value
            else:
                kernel[key] = value
        for group, changes in groups.items():
            kernel[group] = getattr(self, group).model_copy(update=changes, deep=deep)
        return super().model_copy(update=kernel, deep=deep)

    @property
    def correlation_universe(self) -> list[str]:
        """The dbt var ``correlation_symbols``: [] (dbt's "every symbol") for "*", else the list or the traded symbols."""
        if self.correlation_symbols == ["*"]:
            return []
        return list(self.correlation_symbols or self.symbols)

    @property
    def pgdata_dir(self) -> Path:
        return self.pgdata or self.home / "pg"

    @property
    def secret_key_file(self) -> Path:
        return self.home / "secret.key"

    @property
    def offline_data_dir(self) -> Path:
        return self.data_dir or self.home / "data"

    @property
    def dbt_project_dir(self) -> Path:
        return PROJECT_ROOT / "dbt"


GROUPS: dict[str, type[BaseSettings]] = {
    "llm": LlmSettings,
    "risk": RiskSettings,
    "paper": PaperSettings,
    "split": SplitSettings,
    "routing": RoutingSettings,
    "ingest": IngestSettings,
    "ops": OpsSettings,
    "alpaca": AlpacaSettings,
    "oanda": OandaSettings,
}
"""Each group of ``Settings``: the attribute and its class (the configuration reference lists them in this order)."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; call ``get_settings.cache_clear()`` after changing the environment."""
    return Settings()


def apply_tool_environment(settings: Settings | None = None) -> None:
    """Defaults for the tools AlphaLoom drives (Prefect, dbt, GX): project-local state, no usage analytics.

    Only sets variables the operator has not set, and must run before those tools are imported.
    """
    import os

    settings = settings or get_settings()
    defaults = {
        "PREFECT_HOME": str(settings.home / "prefect"),  # prefect_home() reads it back
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "False",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    # Prefect cannot create its home inside a folder that does not exist yet (its ephemeral API then dies with "unable
    # to open database file"): a new ALPHALOOM_HOME is created here, before any tool looks at it.
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)


def prefect_api_url() -> str | None:
    """The Prefect API this process uses: ``PREFECT_API_URL`` (set by the operator, or by the CLI once the embedded
    server answers), None when unset (Prefect then runs a temporary API). The one place it is read."""
    import os

    return os.environ.get("PREFECT_API_URL") or None


def prefect_home(settings: Settings) -> str:
    """Prefect's home for a server or worker AlphaLoom starts: ``PREFECT_HOME`` when set, else ``<home>/prefect``
    (the default ``apply_tool_environment`` sets). The one place it is read."""
    import os

    return os.environ.get("PREFECT_HOME") or str(settings.home / "prefect")


def all_variables() -> list[tuple[type[BaseSettings], str, str]]:
    """(model, field, environment variable) of every setting: the kernel's fields, then each group's."""
    kernel = [(Settings, name, env_variable(Settings, name)) for name in Settings.model_fields if name not in GROUPS]
    return kernel + [
        (model, name, env_variable(model, name)) for model in GROUPS.values() for name in model.model_fields
    ]


def _problem_of(model: type[BaseSettings]) -> str | None:
    """One line naming each bad ``ALPHALOOM_*`` variable of ``model`` (the kernel or a group), None when it reads."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    by_key = {name: env_variable(model, name) for name in model.model_fields}
    by_key |= {variable.lower(): variable for variable in by_key.values()}  # an aliased field's error names the alias
    try:
        if model is Settings:  # the kernel alone: each group is checked on its own
            Settings(llm=LlmSettings.model_construct(), risk=RiskSettings.model_construct(),
                     paper=PaperSettings.model_construct(), split=SplitSettings.model_construct(),
                     routing=RoutingSettings.model_construct(), ingest=IngestSettings.model_construct(),
                     ops=OpsSettings.model_construct())  # fmt: skip
        else:
            model()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = str(error["loc"][0]) if error["loc"] else "?"
            inside = "".join(f"[{part!r}]" for part in error["loc"][1:])  # where in a JSON value, e.g. ['gpt-4o']
            problems.append(f"{by_key.get(key, key)}{inside}={error.get('input')!r}: {error['msg']}")
        return "; ".join(problems)
    except SettingsError as exc:
        match = re.search(r'field "(\w+)"', str(exc))
        name = by_key.get(match.group(1), "an ALPHALOOM_ variable") if match else "an ALPHALOOM_ variable"
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        return f"{name} could not be read (JSON expected){cause}"
    return None


def settings_problem() -> str | None:
    """None when the environment makes valid settings, else one line naming each bad ``ALPHALOOM_*`` variable and its
    problem (for the CLI to print instead of a traceback), the kernel's and every group's."""
    models: list[type[BaseSettings]] = [Settings, *GROUPS.values()]
    problems = [problem for model in models if (problem := _problem_of(model))]
    if problems:
        return "; ".join(problems)
    get_settings()
    return None
