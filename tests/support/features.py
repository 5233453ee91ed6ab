"""The hand-made ``marts.features`` table (the columns dbt builds that the decision path reads), for tests that write
feature rows themselves instead of running dbt; and indicator values the rule-based team reads as a buy or a sell."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine, text

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


def write_alternating_bars(
    engine: Engine, *, exchange: str, symbols: Sequence[str], steps: int, start: datetime, invocation: str
) -> None:
    """Create the table when missing and write, per symbol and step, a bullish or a bearish hourly feature row (the
    ``n``-th symbol bearish at the steps where ``(step + n) % 3 == 0``), each known an hour after its bar closes."""
    hour = timedelta(hours=1)
    rows = []
    for n, symbol in enumerate(symbols):
        for step in range(steps + 1):
            values = BULLISH if (step + n) % 3 else BEARISH
            ts = start + step * hour
            rows.append(
                {"e": exchange, "s": symbol, "ts": ts, "k": ts + hour} | {c: values.get(c) for c in FEATURE_COLUMNS}
            )
    columns = ", ".join(FEATURE_COLUMNS)
    with engine.begin() as conn:
        conn.execute(text(FEATURES_DDL))
        conn.execute(
            text(f"""insert into marts.features (exchange, symbol, timeframe, ts, known_at, {columns}, dbt_invocation_id)
                     values (:e, :s, '1h', :ts, :k, {", ".join(":" + c for c in FEATURE_COLUMNS)}, :inv)"""),
            [row | {"inv": invocation} for row in rows],
        )  # fmt: skip
