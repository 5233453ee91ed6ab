"""Session calendars: closures are not gaps, missing bars inside a session are."""

from __future__ import annotations

import pandas as pd
import pytest

from alphaloom.ingest.calendars import SessionCalendar, asset_class_of, calendar_for, utc


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


def test_asset_class_guess_and_unknown_class() -> None:
    assert asset_class_of("binance", "BTC/USDT") == "crypto"
    assert asset_class_of("demo", "EUR/USD") == "forex"
    assert asset_class_of("demo", "AAPL/USD") == "stocks"
    with pytest.raises(ValueError, match="unknown asset class 'bonds'"):
        calendar_for("bonds")
