"""Data freshness per market in `alphaloom health`: only session time counts towards staleness (a stock's Friday close
is not stale on Sunday, a crypto pair's is), with per-market limits.

Bars are written under their own exchange (``freshx``) for one week of November 2026: Friday the 20th to Monday 23rd.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from alphaloom.ingest.calendars import calendar_for, utc
from alphaloom.markets import MarketSpec, store_specs
from alphaloom.ops.health import check_health, stale_limit_for
from alphaloom.settings import Settings, get_settings

EXCHANGE = "freshx"
LAST_OPEN = {"AAPL/USD": utc(2026, 11, 20, 20), "BTC/USDT": utc(2026, 11, 20, 20), "EUR/USD": utc(2026, 11, 20, 21)}
SYMBOLS = list(LAST_OPEN)


def test_session_time_skips_the_weekend_and_the_night() -> None:
    stocks, forex, crypto = calendar_for("stocks"), calendar_for("forex"), calendar_for("crypto")
    friday_close = utc(2026, 11, 20, 21)
    sunday_noon, monday = utc(2026, 11, 22, 12), utc(2026, 11, 23, 16) + timedelta(minutes=30)
    assert stocks.session_time_between(friday_close, sunday_noon, "1h") == timedelta(0)
    assert stocks.session_time_between(friday_close, monday, "1h") == timedelta(hours=2, minutes=30)  # 14:00-16:30
    assert forex.session_time_between(utc(2026, 11, 20, 22), monday, "1h") == timedelta(hours=18, minutes=30)
    assert crypto.session_time_between(friday_close, sunday_noon, "1h") == timedelta(hours=39)
    assert crypto.session_time_between(sunday_noon, friday_close, "1h") == timedelta(0)


def test_the_most_specific_market_limit_wins() -> None:
    by_market = {"stocks": 1, "freshx:stocks": 5, "binance": 2}
    assert stale_limit_for("freshx", "stocks", by_market, 3) == 5
    assert stale_limit_for("nyse", "stocks", by_market, 3) == 1
    assert stale_limit_for("binance", "crypto", by_market, 3) == 2
    assert stale_limit_for("freshx", "forex", by_market, 3) == 3


def test_per_market_limits_come_from_the_environment_as_json(monkeypatch) -> None:
    monkeypatch.setenv("ALPHALOOM_STALE_AFTER_BARS_BY_MARKET", '{"stocks": 2, "binance:crypto": 4}')
    assert Settings().ops.stale_after_bars_by_market == {"stocks": 2, "binance:crypto": 4}


@pytest.fixture(scope="module")
def bars(engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow, status) values ('freshx-seed', 'test', 'completed')"))
        for symbol, last in LAST_OPEN.items():
            for k in range(3):
                conn.execute(
                    text(
                        """insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id)
                           values (:e, :s, '1h', :ts, 10, 11, 9, 10, 5, 'freshx-seed')"""
                    ),
                    {"e": EXCHANGE, "s": symbol, "ts": last - timedelta(hours=k)},
                )


def _stale(engine, now, **ops) -> dict[str, str]:
    classes = {**get_settings().asset_classes, "EUR/USD": "forex"}  # file-sourced markets: classes are configured
    ops_update = {f"ops.{name}": value for name, value in ops.items()}
    settings = get_settings().model_copy(update={"exchange": EXCHANGE, "timeframe": "1h", "ops.stale_after_bars": 3,
                                                 "asset_classes": classes, **ops_update})  # fmt: skip
    freshness = check_health(engine, settings, now=now, symbols=SYMBOLS, prefect_api_url="").get("freshness")
    assert (freshness.status == "fail") == bool(freshness.details["stale"])
    return freshness.details["stale"]


def test_a_weekend_leaves_stocks_and_forex_fresh_and_crypto_stale(engine, bars) -> None:
    stale = _stale(engine, utc(2026, 11, 22, 12))  # Sunday noon
    assert set(stale) == {"BTC/USDT"} and "39.0 crypto session bars ago (limit 3)" in stale["BTC/USDT"]


def test_stocks_go_stale_only_after_n_bars_of_session_time(engine, bars) -> None:
    monday = utc(2026, 11, 23)
    assert set(_stale(engine, monday + timedelta(hours=16, minutes=30))) == {"BTC/USDT", "EUR/USD"}  # 2.5 bars
    late = _stale(engine, monday + timedelta(hours=17, minutes=30))  # 3.5 session bars since Friday's close
    assert set(late) == {"BTC/USDT", "EUR/USD", "AAPL/USD"} and "3.5 stocks session bars" in late["AAPL/USD"]


def test_per_market_limits_change_what_counts_as_stale(engine, bars) -> None:
    monday_1530 = utc(2026, 11, 23, 15) + timedelta(minutes=30)
    assert "AAPL/USD" not in _stale(engine, monday_1530)
    assert "AAPL/USD" in _stale(engine, monday_1530, stale_after_bars_by_market={"stocks": 1})
    sunday = utc(2026, 11, 22, 12)
    relaxed = {"crypto": 48, f"{EXCHANGE}:stocks": 5, "stocks": 1}
    assert _stale(engine, sunday, stale_after_bars_by_market=relaxed) == {}
    assert "AAPL/USD" not in _stale(engine, monday_1530, stale_after_bars_by_market=relaxed)


def test_the_calendar_is_the_markets_class_from_the_venue_or_configuration_never_the_spelling(engine) -> None:
    """BTC/USD on a crypto venue (its metadata in raw.markets, as the ccxt ingest stores it) is judged 24/7, though
    its quote is a fiat code; TSLA/USDT configured as an equity (a tokenized stock) by the stock session, though
    its quote is a stablecoin; a market nobody classified is judged 24/7."""
    venue, last = "venuecal", utc(2026, 11, 20, 20)  # Friday's last stock session bar
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow, status) values ('venuecal', 'test', 'completed')"))
        for symbol in ("BTC/USD", "TSLA/USDT", "ODD/USD"):
            conn.execute(
                text("""insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id)
                        values (:e, :s, '1h', :ts, 10, 11, 9, 10, 5, 'venuecal')"""),
                {"e": venue, "s": symbol, "ts": last},
            )  # fmt: skip
        store_specs(conn, venue, [MarketSpec("BTC/USD", "crypto", Decimal("1E-8"), instrument_type="spot",
                                             source="venue")], "venuecal")  # fmt: skip
    settings = get_settings().model_copy(update={"exchange": venue, "timeframe": "1h", "ops.stale_after_bars": 3,
                                                 "asset_classes": {"TSLA/USDT": "equity"}})  # fmt: skip
    sunday_noon = utc(2026, 11, 22, 12)
    freshness = check_health(engine, settings, now=sunday_noon, symbols=["BTC/USD", "TSLA/USDT", "ODD/USD"],
                             prefect_api_url="").get("freshness")  # fmt: skip
    stale, markets = freshness.details["stale"], freshness.details["markets"]
    assert set(stale) == {"BTC/USD", "ODD/USD"} and "39.0 crypto session bars ago" in stale["BTC/USD"]
    assert {s: (m["asset_class"], m.get("market_class")) for s, m in markets.items()} == {
        "BTC/USD": ("crypto", "crypto"),
        "TSLA/USDT": ("stocks", "equity"),
        "ODD/USD": ("crypto", "unclassified"),
    }
