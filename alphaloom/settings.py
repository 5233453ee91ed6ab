"""AlphaLoom configuration: the one place settings are read.

Every value comes from an ``ALPHALOOM_``-prefixed environment variable or an optional ``.env`` file in the working
directory. Secrets are ``SecretStr`` so they never show up in reprs or logs.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Typed settings; see README "Configuration" for what each one does."""

    model_config = SettingsConfigDict(env_prefix="ALPHALOOM_", env_file=".env", extra="ignore")

    # Where AlphaLoom keeps its state (embedded database, generated data, GX docs...).
    home: Path = Field(default=PROJECT_ROOT / ".alphaloom")
    # External PostgreSQL; when unset an embedded server is started under ``pgdata``.
    database_url: SecretStr | None = None
    pgdata: Path | None = None

    # Offline data used by the embedded default.
    data_dir: Path | None = None
    data_seed: int = 7
    data_days: int = 400

    # Point-in-time rule: file and backfill sources assume a story was seen this long after publication.
    news_assumed_latency_minutes: int = 15

    # Trading defaults.
    account: str = "paper-main"
    base_currency: str = "USDT"
    exchange: str = "demo"
    timeframe: str = "1h"
    # Benchmark for the rolling beta/correlation features (dbt var benchmark_symbol).
    benchmark_symbol: str = "BTC/USDT"
    symbols: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["BTC/USDT", "ETH/USDT", "SOL/USDT", "AAPL/USD", "MSFT/USD", "SPY/USD"]
    )
    # Universe of marts.correlations (it grows with the square of the universe): empty = the traded ``symbols``;
    # "*" = every stored symbol; else a comma-separated list.
    correlation_symbols: Annotated[list[str], NoDecode] = Field(default_factory=list)
    starting_cash: Decimal = Decimal("100000")
    order_notional: Decimal = Decimal("5000")

    # Paper broker costs, explicit: basis points of notional.
    paper_fee_bps: Decimal = Decimal("10")
    paper_slippage_bps: Decimal = Decimal("5")

    # Hard limits (alphaloom.guards), enforced by risk and again by execution.
    max_position_notional: Decimal = Decimal("20000")
    max_order_notional: Decimal = Decimal("10000")
    price_band_pct: Decimal = Decimal("5")

    # Sentiment and LLM.
    finbert_model: str = "ProsusAI/finbert"
    sentiment_batch_size: int = 32
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    # FinBERT weights come from a local folder or the local hub cache; set this to let a load download them.
    finbert_allow_download: bool = False
    # LLM analyst: client behaviour, prices (per 1k tokens, in the account's quote currency) and budget caps.
    llm_timeout_s: float = 30.0
    llm_max_retries: int = 2
    llm_temperature: float = 0.0
    llm_max_tokens: int = 600
    llm_price_per_1k_prompt: Decimal = Decimal("0.00015")
    llm_price_per_1k_completion: Decimal = Decimal("0.0006")
    llm_daily_token_budget: int = 200_000
    llm_daily_cost_budget: Decimal = Decimal("1.00")
    llm_run_token_budget: int = 50_000
    llm_run_cost_budget: Decimal = Decimal("0.25")
    # Training-data cutoff per model (JSON in the environment): a backtest consulting the LLM over dates before its
    # model's cutoff is refused unless allowed (the model may know what happened next), and flagged in the report.
    llm_training_cutoffs: dict[str, date] = Field(
        default_factory=lambda: {"gpt-4o-mini": date(2023, 10, 1), "gpt-4o": date(2023, 10, 1),
                                 "gpt-4.1-mini": date(2024, 6, 1), "gpt-4.1": date(2024, 6, 1)}
    )  # fmt: skip

    # Backtests: where an order decided at a bar's close fills. "next_open": the next bar's open (the decision bar's
    # orders fill one bar later; the last step's expire unfilled); "close": the decision bar's close.
    backtest_fill_at: Literal["next_open", "close"] = "next_open"

    # --- Risk and execution (agents/risk, execution/) -------------------------------------------------------------
    # Drawdown controller: from peak equity, scale new exposure by ``drawdown_reduce_factor`` past the first threshold,
    # deny every new buy past the second.
    drawdown_reduce_pct: Decimal = Decimal("10")
    drawdown_halt_pct: Decimal = Decimal("20")
    drawdown_reduce_factor: Decimal = Decimal("0.5")
    # Exposure limits as percent of equity; gross/net leverage as multiples of equity.
    max_asset_exposure_pct: Decimal = Decimal("25")
    max_class_exposure_pct: Decimal = Decimal("60")
    max_gross_leverage: Decimal = Decimal("1")
    max_net_leverage: Decimal = Decimal("1")
    # Symbol -> sector/asset class (JSON in the environment), and symbol -> quantity step, for markets whose venue
    # gives no metadata (file sources; alphaloom.markets): a class such as "equity" trades whole units. A venue's own
    # metadata (raw.markets, from ccxt) gives the step; nothing is ever inferred from a symbol's quote currency.
    # The default describes the shipped sample data.
    asset_classes: dict[str, str] = Field(
        default_factory=lambda: {"BTC/USDT": "crypto", "ETH/USDT": "crypto", "SOL/USDT": "crypto",
                                 "AAPL/USD": "equity", "MSFT/USD": "equity", "SPY/USD": "equity"}
    )  # fmt: skip
    quantity_steps: dict[str, Decimal] = Field(default_factory=dict)
    # Correlation risk: symbols whose return correlation is at least this form a cluster capped at this share.
    correlation_threshold: float = 0.8
    max_cluster_exposure_pct: Decimal = Decimal("40")
    correlation_lookback_bars: int = 200
    # Portfolio VaR limit (historical, 99%, 1 day) as percent of equity.
    max_var_pct: Decimal = Decimal("10")
    # Sizing: fractional Kelly (fraction, capped), volatility targeting (annualised), protective exit levels.
    kelly_fraction: Decimal = Decimal("0.25")
    kelly_cap: Decimal = Decimal("0.2")
    target_volatility: float = 0.4
    # How the trader sizes a new position: "fixed" (order_notional), "kelly" (fractional Kelly from the account's
    # realised trades, once it has kelly_min_trades of them), "vol_target" (target_volatility over the symbol's
    # realised volatility) or "kelly_vol_target" (the smaller). Always capped at max_order_notional.
    sizing_mode: Literal["fixed", "kelly", "vol_target", "kelly_vol_target"] = "fixed"
    kelly_min_trades: int = 20
    # How many of the latest realised trades (team outcomes of buy decisions) estimate the win rate and payoff.
    sizing_lookback_trades: int = 200
    # Protective exits armed for every filled entry (execution.protective.arm_entries), as percent below / above the
    # position's average entry price; unset (the default): no exit is armed.
    stop_loss_pct: Decimal | None = Field(default=None, gt=0, lt=100)
    take_profit_pct: Decimal | None = Field(default=None, gt=0)
    # Fat-finger checks before any submit (execution): the daily loss limit halts the account.
    daily_loss_limit: Decimal = Decimal("5000")
    max_orders_per_run: int = 50
    # A live or shadow send is refused when its decision time is more than this many bars before the wall clock: a
    # decision about a past bar is never executed at today's price.
    live_max_decision_age_bars: int = Field(default=2, ge=0)
    # Paper venue realism: half-spread paid, square-root impact coefficient (bps at 100% of bar volume), participation.
    paper_spread_bps: Decimal = Decimal("2")
    paper_impact_bps: Decimal = Decimal("50")
    paper_max_participation: Decimal = Decimal("0.1")
    # Child orders: execution splits an intent whose notional is above split_above_notional (unset: never) into
    # split_slices equal children ("twap") or children of at most split_visible_notional each ("iceberg").
    split_above_notional: Decimal | None = None
    split_method: Literal["twap", "iceberg"] = "twap"
    split_slices: int = 4
    split_visible_notional: Decimal = Decimal("2500")
    # A TWAP parent's slices are spread over this many minutes: slice k (0-based) is due at arrival + k * duration / N;
    # the first goes out at once, the others are scheduled (audit.scheduled_slices) and released when due. 0: all at
    # once.
    twap_duration_minutes: int = Field(default=60, ge=0)
    # A live or shadow account is reconciled with its venue at the start of every decision run: a balance or
    # position difference above this (absolute, in the currency's units) means no order is sent that run.
    reconcile_tolerance: Decimal = Decimal("0")
    # Smart routing (live accounts): the venues (ccxt ids, credentials stored for the account at each) whose order
    # books compete for every order (``route_depth`` levels of each are walked, best price after fees first); empty:
    # the account's own venue only. Taker fees in bps per venue override the market's published fee (your fee tier),
    # as JSON, e.g. {"binance": 7.5}.
    route_venues: Annotated[list[str], NoDecode] = Field(default_factory=list)
    route_fee_bps: dict[str, Decimal] = Field(default_factory=dict)
    route_depth: int = Field(default=10, ge=1, le=5000)
    # After a submit timed out, wait this long (seconds) for the venue's books to settle before the lookup that decides
    # whether the order may be sent again (a just-filled order can take a moment to become visible there).
    resend_settle_seconds: float = Field(default=2.0, ge=0, le=60)
    # Kill switch: also cancel open orders at the venue when it is turned on.
    kill_switch_cancels_open_orders: bool = True
    # Credentials encryption key (Fernet, urlsafe base64); else kept by ``secret_key_store``: "auto" uses the OS
    # keyring where a backend exists (macOS Keychain, Windows Credential Locker, Secret Service) and otherwise the
    # 0600 file ``home/secret.key``; "keyring" requires a backend; "file" always uses the file.
    secret_key: SecretStr | None = None
    secret_key_store: Literal["auto", "keyring", "file"] = "auto"

    # Ingest (issue 4). ccxt price series as "exchange:BASE/QUOTE:timeframe"; a series with nothing stored starts
    # ``ccxt_backfill_days`` back. News feeds: URLs or files. Aliases: symbol -> words that tag a story with it.
    ccxt_sources: Annotated[list[str], NoDecode] = Field(default_factory=list)
    ccxt_max_concurrency: int = 4
    ccxt_backfill_days: int = 30
    feeds: Annotated[list[str], NoDecode] = Field(default_factory=list)
    symbol_aliases: dict[str, list[str]] = Field(default_factory=dict)
    # Live quotes cache for `alphaloom stream`; unset = no cache.
    redis_url: str | None = None
    # Data quality: a run of missing bars inside the session calendar longer than this is reported.
    quality_gap_tolerance_bars: int = 3
    # Price ingest sanity (issue 13): a bar with a price outside [min, max] or a volume above the maximum is quarantined
    # (1e308 once passed every check and then overflowed the feature build for every symbol); so is a close more than
    # ``ingest_max_close_jump`` times, or less than 1/that, the series' previous close (stored or earlier in the input).
    # 0 turns the jump check off. A genuine move beyond it (a redenomination) needs a higher value and a re-ingest.
    ingest_min_price: float = Field(default=1e-12, gt=0)
    ingest_max_price: float = Field(default=1e12, gt=0)
    ingest_max_volume: float = Field(default=1e18, gt=0)
    ingest_max_close_jump: float = Field(default=10.0, ge=0)

    @field_validator("ccxt_sources", "feeds", "route_venues", mode="before")
    @classmethod
    def _split_ingest_lists(cls, value: object) -> object:
        if isinstance(value, str):
            return [s.strip() for s in value.split(",") if s.strip()]
        return value

    # Operations (alphaloom serve / health / alerts).
    # Alerts are POSTed as JSON here (and always logged); unset: log only. May embed a token, so it is a secret.
    alert_webhook_url: SecretStr | None = None
    alert_timeout_seconds: float = 5.0
    # `alphaloom serve` binds the Prefect server here; 127.0.0.1 keeps the UI off the network unless asked.
    serve_host: str = "127.0.0.1"
    serve_port: int = 4200
    serve_work_pool: str = "alphaloom-process"
    # The operator console (`alphaloom console`, and beside the Prefect server in `alphaloom serve`): off loopback,
    # every page needs a login; actions always do.
    console_host: str = "127.0.0.1"
    console_port: int = 4300
    # Stale data: no new bar for a symbol within this many bar lengths.
    stale_after_bars: int = 3
    # Per market (JSON): "exchange:asset_class", "exchange" or "asset_class" -> bars; counted in session time.
    stale_after_bars_by_market: dict[str, int] = Field(default_factory=dict)
    # The embedded Prefect server (alphaloom.prefect_server): flow commands start it on first use and reuse it; false
    # (or PREFECT_API_URL set) leaves Prefect to its own configuration (a server you run, or a temporary API per command).
    embedded_prefect: bool = True
    # Decision runs: how long a second run for the same account waits for the first before giving up.
    decision_lock_wait_seconds: float = 0.0

    @field_validator("symbols", "correlation_symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: object) -> object:
        if isinstance(value, str):
            return [s.strip() for s in value.split(",") if s.strip()]
        return value

    @property
    def correlation_universe(self) -> list[str]:
        """The dbt var ``correlation_symbols``: [] (dbt's "every symbol") for "*", else the list or the traded symbols."""
        if self.correlation_symbols == ["*"]:
            return []
        return list(self.correlation_symbols or self.symbols)

    @property
    def alias_map(self) -> dict[str, str]:
        """``symbol_aliases`` inverted: alias -> symbol, as the news parser takes it."""
        return {alias: symbol for symbol, aliases in self.symbol_aliases.items() for alias in aliases}

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
        "PREFECT_HOME": str(settings.home / "prefect"),
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


def settings_problem() -> str | None:
    """None when the environment makes valid settings, else one line naming the ``ALPHALOOM_*`` variable and the
    problem (for the CLI to print instead of a traceback)."""
    import re

    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        get_settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            problems.append(f"ALPHALOOM_{field.upper()}={error.get('input')!r}: {error['msg']}")
        return "; ".join(problems)
    except SettingsError as exc:
        match = re.search(r'field "(\w+)"', str(exc))
        name = f"ALPHALOOM_{match.group(1).upper()}" if match else "an ALPHALOOM_ variable"
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        return f"{name} could not be read (JSON expected){cause}"
    return None
