"""Settings grouped by concern (issue 19 item 4): every ``ALPHALOOM_*`` variable keeps its name, a group reads the
environment and ``.env`` like the kernel, and a bad value is one line naming the variable."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from alphaloom.ops.config_reference import settings_table
from alphaloom.settings import (
    GROUPS,
    PROJECT_ROOT,
    IngestSettings,
    LlmSettings,
    RiskSettings,
    Settings,
    SplitSettings,
    all_variables,
    get_settings,
    prefect_api_url,
    prefect_home,
    settings_problem,
)

# The variables the configuration reference listed before the grouping (113, the flat ``Settings``), suffix only.
BEFORE_GROUPING = {"ALPHALOOM_" + suffix for suffix in (
    "ACCOUNT",
    "ALERT_TIMEOUT_SECONDS",
    "ALERT_WEBHOOK_URL",
    "ASSET_CLASSES",
    "BACKTEST_FILL_AT",
    "BASE_CURRENCY",
    "BENCHMARK_SYMBOL",
    "CCXT_BACKFILL_DAYS",
    "CCXT_MAX_CONCURRENCY",
    "CCXT_SOURCES",
    "CONSOLE_HOST",
    "CONSOLE_PORT",
    "CORRELATION_LOOKBACK_BARS",
    "CORRELATION_SYMBOLS",
    "CORRELATION_THRESHOLD",
    "DAILY_LOSS_LIMIT",
    "DASK_ADDRESS",
    "DASK_WORKERS",
    "DATABASE_URL",
    "DATA_DAYS",
    "DATA_DIR",
    "DATA_SEED",
    "DB_MAX_OVERFLOW",
    "DB_POOL_SIZE",
    "DECISION_LOCK_WAIT_SECONDS",
    "DRAWDOWN_HALT_PCT",
    "DRAWDOWN_REDUCE_FACTOR",
    "DRAWDOWN_REDUCE_PCT",
    "EMBEDDED_PREFECT",
    "EXCHANGE",
    "FEEDS",
    "FINBERT_ALLOW_DOWNLOAD",
    "FINBERT_MODEL",
    "HOME",
    "INGEST_MAX_CLOSE_JUMP",
    "INGEST_MAX_PRICE",
    "INGEST_MAX_VOLUME",
    "INGEST_MIN_PRICE",
    "KELLY_CAP",
    "KELLY_FRACTION",
    "KELLY_MIN_TRADES",
    "KILL_SWITCH_CANCELS_OPEN_ORDERS",
    "LIVE_MAX_DECISION_AGE_BARS",
    "LLM_API_KEY",
    "LLM_BASE_URL",
    "LLM_DAILY_COST_BUDGET",
    "LLM_DAILY_TOKEN_BUDGET",
    "LLM_DEBATE_ROUNDS",
    "LLM_DECISION_COST_BUDGET",
    "LLM_DECISION_TOKEN_BUDGET",
    "LLM_MAX_RETRIES",
    "LLM_MAX_TOKENS",
    "LLM_MODEL",
    "LLM_PRICES",
    "LLM_PRICE_PER_1K_COMPLETION",
    "LLM_PRICE_PER_1K_PROMPT",
    "LLM_ROLES",
    "LLM_RUN_COST_BUDGET",
    "LLM_RUN_TOKEN_BUDGET",
    "LLM_TEAM_MODE",
    "LLM_TEMPERATURE",
    "LLM_TIMEOUT_S",
    "LLM_TOOL_CALLS_PER_ROLE",
    "LLM_TRAINING_CUTOFFS",
    "MAX_ASSET_EXPOSURE_PCT",
    "MAX_CLASS_EXPOSURE_PCT",
    "MAX_CLUSTER_EXPOSURE_PCT",
    "MAX_GROSS_LEVERAGE",
    "MAX_NET_LEVERAGE",
    "MAX_ORDERS_PER_RUN",
    "MAX_ORDER_NOTIONAL",
    "MAX_POSITION_NOTIONAL",
    "MAX_VAR_PCT",
    "NEWS_ASSUMED_LATENCY_MINUTES",
    "ORDER_NOTIONAL",
    "PAPER_FEE_BPS",
    "PAPER_IMPACT_BPS",
    "PAPER_MAX_PARTICIPATION",
    "PAPER_SLIPPAGE_BPS",
    "PAPER_SPREAD_BPS",
    "PGDATA",
    "PRICE_BAND_PCT",
    "PROGRESS",
    "QUALITY_GAP_TOLERANCE_BARS",
    "QUANTITY_STEPS",
    "RECONCILE_TOLERANCE",
    "REDIS_URL",
    "RESEND_SETTLE_SECONDS",
    "ROUTE_DEPTH",
    "ROUTE_FEE_BPS",
    "ROUTE_VENUES",
    "SECRET_KEY",
    "SECRET_KEY_STORE",
    "SENTIMENT_BATCH_SIZE",
    "SERVE_HOST",
    "SERVE_PORT",
    "SERVE_WORK_POOL",
    "SIZING_LOOKBACK_TRADES",
    "SIZING_MODE",
    "SPLIT_ABOVE_NOTIONAL",
    "SPLIT_METHOD",
    "SPLIT_SLICES",
    "SPLIT_VISIBLE_NOTIONAL",
    "STALE_AFTER_BARS",
    "STALE_AFTER_BARS_BY_MARKET",
    "STARTING_CASH",
    "STOP_LOSS_PCT",
    "SYMBOLS",
    "SYMBOL_ALIASES",
    "TAKE_PROFIT_PCT",
    "TARGET_VOLATILITY",
    "TIMEFRAME",
    "TWAP_DURATION_MINUTES",
)}  # fmt: skip


def test_every_variable_documented_before_is_still_read_and_documented() -> None:
    variables = [variable for _, _, variable in all_variables()]
    assert len(variables) == len(set(variables)), "no two settings read the same variable"
    assert (
        set(variables) >= BEFORE_GROUPING
    )  # later settings add variables (tests/project/test_readme.py documents them)
    table = settings_table()
    assert {row.split("`")[1] for row in table.splitlines()[2:]} == set(variables)


def test_each_group_reads_its_variables_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPHALOOM_LLM_MODEL", "env-model")  # the group's prefix
    monkeypatch.setenv("ALPHALOOM_KELLY_CAP", "0.1")  # a group without a prefix of its own
    monkeypatch.setenv("ALPHALOOM_TWAP_DURATION_MINUTES", "7")  # a variable outside its group's prefix (alias)
    monkeypatch.setenv("ALPHALOOM_INGEST_MAX_PRICE", "5")
    monkeypatch.setenv("ALPHALOOM_ROUTE_VENUES", "binance, kraken")
    monkeypatch.setenv("ALPHALOOM_ROUTE_MAX_QUOTE_AGE_SECONDS", "5")
    monkeypatch.setenv("ALPHALOOM_ROUTE_CURRENCIES", '{"binance": "USDT"}')
    settings = Settings()
    assert settings.llm.model == "env-model"
    assert settings.risk.kelly_cap == Decimal("0.1")
    assert settings.split.twap_duration_minutes == 7
    assert settings.ingest.max_price == 5.0
    assert settings.routing.venues == ["binance", "kraken"]
    assert (settings.routing.max_quote_age_seconds, settings.routing.currencies) == (5.0, {"binance": "USDT"})
    assert {name for name in GROUPS} <= set(Settings.model_fields)


def test_a_group_reads_the_dot_env_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("ALPHALOOM_LLM_TEMPERATURE=0.7\nALPHALOOM_PAPER_FEE_BPS=3\n"
                                   "ALPHALOOM_INGEST_MIN_PRICE=0.5\nALPHALOOM_TIMEFRAME=4h\n")  # fmt: skip
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert (settings.llm.temperature, settings.paper.fee_bps) == (0.7, Decimal(3))
    assert (settings.ingest.min_price, settings.timeframe) == (0.5, "4h")


def test_a_group_is_built_by_field_name_in_code() -> None:
    settings = Settings(llm=LlmSettings(model="m"), risk=RiskSettings(max_orders_per_run=3),
                        split=SplitSettings(twap_duration_minutes=0),
                        ingest=IngestSettings(max_close_jump=0))  # fmt: skip
    assert (settings.llm.model, settings.risk.max_orders_per_run) == ("m", 3)
    assert (settings.split.twap_duration_minutes, settings.ingest.max_close_jump) == (0, 0)


def test_model_copy_takes_group_fields_and_refuses_unknown_names() -> None:
    settings = Settings(llm=LlmSettings(model="a"))
    copy = settings.model_copy(update={"llm.model": "b", "timeframe": "4h", "risk.kelly_cap": Decimal(1)})
    assert (copy.llm.model, copy.timeframe, copy.risk.kelly_cap) == ("b", "4h", Decimal(1))
    assert settings.llm.model == "a", "the original is unchanged"
    for stale in ("llm_model", "llm.llm_model", "nosuch.model", "llm"):
        with pytest.raises(KeyError, match="is not a setting"):
            settings.model_copy(update={stale: "x"})


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ALPHALOOM_INGEST_MAX_PRICE", "-1", "ALPHALOOM_INGEST_MAX_PRICE='-1': Input should be greater than 0"),
        ("ALPHALOOM_LLM_PRICES", "{bad", "ALPHALOOM_LLM_PRICES could not be read (JSON expected)"),
        (
            "ALPHALOOM_LLM_PRICES",
            '{"gpt-4o": {"input": -1, "output": 1}}',
            "ALPHALOOM_LLM_PRICES['gpt-4o']['input']=-1",
        ),
        ("ALPHALOOM_KELLY_CAP", "x", "ALPHALOOM_KELLY_CAP='x': Input should be a valid decimal"),
        ("ALPHALOOM_DATA_SEED", "y", "ALPHALOOM_DATA_SEED='y'"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    try:
        problem = settings_problem()
    finally:
        monkeypatch.delenv(variable)
        get_settings.cache_clear()
    assert problem is not None and expected in problem and "\n" not in problem, problem


def test_bad_values_in_two_groups_and_the_kernel_are_all_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in (("ALPHALOOM_DATA_SEED", "y"), ("ALPHALOOM_LLM_MAX_TOKENS", "z"),
                            ("ALPHALOOM_TWAP_DURATION_MINUTES", "-3")):  # fmt: skip
        monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    try:
        problem = settings_problem() or ""
    finally:
        for variable in ("ALPHALOOM_DATA_SEED", "ALPHALOOM_LLM_MAX_TOKENS", "ALPHALOOM_TWAP_DURATION_MINUTES"):
            monkeypatch.delenv(variable)
        get_settings.cache_clear()
    for variable in ("ALPHALOOM_DATA_SEED=", "ALPHALOOM_LLM_MAX_TOKENS=", "ALPHALOOM_TWAP_DURATION_MINUTES="):
        assert variable in problem, problem


def test_the_prefect_variables_are_read_in_one_place(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(home=tmp_path)
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    assert prefect_home(settings) == str(tmp_path / "prefect")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "elsewhere"))
    assert prefect_home(settings) == str(tmp_path / "elsewhere")
    monkeypatch.setenv("PREFECT_API_URL", "")
    assert prefect_api_url() is None
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert prefect_api_url() == "http://127.0.0.1:4200/api"
    names = r"(ALPHALOOM_\w+|PREFECT_API_URL|PREFECT_HOME)"
    readers = re.compile(rf"""os\.(environ\.get\(|getenv\()["']{names}["']|os\.environ\[["']{names}["']\](?!\s*=)""")
    outside = [f"{path.relative_to(PROJECT_ROOT)}: {match.group(0)}"
               for package in ("agents", "alphaloom", "execution", "flows")
               for path in (PROJECT_ROOT / package).rglob("*.py")
               if path != PROJECT_ROOT / "alphaloom" / "settings.py"
               for match in readers.finditer(path.read_text(encoding="utf-8"))]  # fmt: skip
    assert outside == [], "read these through alphaloom.settings"
