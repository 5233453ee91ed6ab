"""The hand-made ``marts.features`` table (the columns dbt builds that the decision path reads), for tests that write
feature rows themselves instead of running dbt; and indicator values the rule-based team reads as a buy or a sell."""

from __future__ import annotations

from agents.team import FEATURE_COLUMNS

FEATURES_DDL = (
    "create schema if not exists marts; create table if not exists marts.features ("
    "exchange text not null, symbol text not null, timeframe text not null, ts timestamptz not null, "
    "known_at timestamptz not null, "
    + ", ".join(f"{c} double precision" for c in FEATURE_COLUMNS)
    + ", dbt_invocation_id text, primary key (exchange, symbol, timeframe, ts))"
)

# EMA10 above EMA50, positive MACD histogram, RSI 60: the rule-based team buys.
BULLISH = {"close": 100.0, "ema_10": 105.0, "ema_50": 100.0, "macd_hist": 0.5, "rsi_14": 60.0}
# EMA10 below EMA50, negative MACD histogram, RSI 40: it sells.
BEARISH = {"close": 98.0, "ema_10": 95.0, "ema_50": 100.0, "macd_hist": -0.5, "rsi_14": 40.0}
