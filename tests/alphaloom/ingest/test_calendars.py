"""Session calendars: closures are not gaps, missing bars inside a session are."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest

from alphaloom.ingest.calendars import SessionCalendar, calendar_class_of, calendar_for, utc
from alphaloom.markets import UNCLASSIFIED, MarketSpec
from alphaloom.quality.quality_gate import price_frame


def test_crypto_trades_every_hour_and_reports_a_missing_one() -> None:
    crypto = calendar_for("crypto")
    assert len(crypto.expected_opens(utc(2026, 1, 3), utc(2026, 1, 4, 23), "1h")) == 48  # a weekend
    opens = [h for h in pd.date_range(utc(2026, 1, 3), periods=48, freq="1h") if not (h.day == 3 and h.hour in (5, 6))]
    (gap,) = crypto.find_gaps(opens, "1h")
    assert (gap.first_missing, gap.last_missing, gap.missing) == (utc(2026, 1, 3, 5), utc(2026, 1, 3, 6), 2)
    assert crypto.find_gaps(opens, "1h", tolerance=2) == []


def test_forex_week_runs_sunday_22_to_friday_22() -> None:
    forex = calendar_for("forex")
    week = forex.expected_opens(utc(2026, 1, 2), utc(2026, 1, 9, 23), "1h")  # Fri Jan 2 .. Fri Jan 9
    assert week[0] == pd.Timestamp(utc(2026, 1, 2)) and utc(2026, 1, 2, 21) in week and utc(2026, 1, 2, 22) not in week
    assert utc(2026, 1, 3, 12) not in week and utc(2026, 1, 4, 21) not in week and utc(2026, 1, 4, 22) in week
    # Friday evening to Sunday evening is no gap.
    assert forex.find_gaps([utc(2026, 1, 2, 21), utc(2026, 1, 4, 22)], "1h") == []


def test_stock_sessions_skip_nights_and_weekends() -> None:
    stocks = calendar_for("stocks")
    opens = stocks.expected_opens(utc(2026, 1, 2), utc(2026, 1, 5, 23), "1h")  # Fri, weekend, Mon
    assert [t.hour for t in opens] == list(range(14, 21)) * 2
    assert stocks.find_gaps([utc(2026, 1, 2, 20), utc(2026, 1, 5, 14)], "1h") == []
    missing_monday_open = [utc(2026, 1, 2, 20), utc(2026, 1, 5, 15)]
    assert [g.missing for g in stocks.find_gaps(missing_monday_open, "1h")] == [1]
    gaps = stocks.gap_before(pd.Series([utc(2026, 1, 5, 15), utc(2026, 1, 2, 20), utc(2026, 1, 5, 16)]), "1h")
    assert list(gaps) == [1, 0, 0]
    custom = SessionCalendar("stocks", open_hour=8, close_hour=16)
    assert len(custom.expected_opens(utc(2026, 1, 5), utc(2026, 1, 5, 23), "1h")) == 9


def test_the_calendar_follows_the_markets_class_never_the_symbols_spelling() -> None:
    def klass(symbol: str, asset_class: str) -> str:
        return calendar_class_of(MarketSpec(symbol, asset_class, Decimal("0.000001")))

    assert klass("BTC/USD", "crypto") == "crypto"  # a fiat quote on a crypto venue
    assert klass("TSLA/USDT", "equity") == "stocks" and klass("SPY/USD", "etf") == "stocks"
    assert klass("EUR/USD", "forex") == "forex"
    assert klass("AAPL/USD", UNCLASSIFIED) == "crypto"  # nobody said: every missing bar counts, never a guess
    with pytest.raises(ValueError, match="unknown asset class 'bonds'"):
        calendar_for("bonds")


def test_the_quality_gate_counts_gaps_by_the_markets_calendar() -> None:
    """BTC/USD bars from Friday 20:00 to Monday 14:00 on a crypto venue: the weekend is a gap; configured as a
    stock, it is not."""
    opens = [utc(2026, 1, 2, 20), utc(2026, 1, 5, 14)]
    table = pa.table({
        "exchange": ["venuecal"] * 2, "symbol": ["BTC/USD"] * 2, "timeframe": ["1h"] * 2,
        "ts": [t.isoformat() for t in opens], "open": ["1"] * 2, "high": ["1"] * 2, "low": ["1"] * 2,
        "close": ["1"] * 2, "volume": ["1"] * 2,
    })  # fmt: skip
    crypto = {("venuecal", "BTC/USD"): MarketSpec("BTC/USD", "crypto", Decimal("1E-8"), source="venue")}
    stock = {("venuecal", "BTC/USD"): MarketSpec("BTC/USD", "equity", Decimal(1), source="config")}
    assert list(price_frame(table, crypto)["gap_bars"]) == [0, 65]  # Fri 21:00 .. Mon 13:00
    assert list(price_frame(table, stock)["gap_bars"]) == [0, 0]
