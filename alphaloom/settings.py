"""AlphaLoom configuration: the one place settings are read.

Every value comes from an ``ALPHALOOM_``-prefixed environment variable or an optional ``.env`` file in the working
directory. Secrets are ``SecretStr`` so they never show up in reprs or logs.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated

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
    symbols: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["BTC/USDT", "ETH/USDT", "SOL/USDT", "AAPL/USD", "MSFT/USD", "SPY/USD"]
    )
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

    # Operations (alphaloom serve / health / alerts).
    # Alerts are POSTed as JSON here (and always logged); unset: log only. May embed a token, so it is a secret.
    alert_webhook_url: SecretStr | None = None
    alert_timeout_seconds: float = 5.0
    # `alphaloom serve` binds the Prefect server here; 127.0.0.1 keeps the UI off the network unless asked.
    serve_host: str = "127.0.0.1"
    serve_port: int = 4200
    serve_work_pool: str = "alphaloom-process"
    # Stale data: no new bar for a symbol within this many bar lengths.
    stale_after_bars: int = 3
    # Decision runs: how long a second run for the same account waits for the first before giving up.
    decision_lock_wait_seconds: float = 0.0

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: object) -> object:
        if isinstance(value, str):
            return [s.strip() for s in value.split(",") if s.strip()]
        return value

    @property
    def pgdata_dir(self) -> Path:
        return self.pgdata or self.home / "pg"

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
