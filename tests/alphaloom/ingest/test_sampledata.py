"""The offline sample data: reproducible, internally consistent, and realistic enough to test strategies on."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphaloom.ingest import sampledata
from alphaloom.ingest.sampledata import CRYPTO_SYMBOLS, CSV_HEADER, STOCK_SYMBOLS, SYMBOLS, SampleData, generate

SHORT_DAYS = 30


def _read_bars(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"open": str, "high": str, "low": str, "close": str, "volume": str})


def _numeric(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in ("open", "high", "low", "close", "volume"):
        out[col] = out[col].astype(float)
    out["ts"] = pd.to_datetime(out["ts"], utc=True)
    return out.set_index("ts")


def _file_bytes(data: SampleData) -> dict[str, bytes]:
    return {str(p.relative_to(data.out_dir)): p.read_bytes() for p in data.files}


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> SampleData:
    """The default-size sample (400 days), generated once for the statistical tests."""
    return generate(tmp_path_factory.mktemp("full"))


@pytest.fixture(scope="module")
def full_closes(full: SampleData) -> pd.DataFrame:
    return pd.DataFrame({s: _numeric(_read_bars(full.price_file(s)))["close"] for s in SYMBOLS})


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> SampleData:
    return generate(tmp_path_factory.mktemp("short"), days=SHORT_DAYS)


def test_layout_and_formats(short: SampleData) -> None:
    assert short.symbols == SYMBOLS
    assert [p.name for p in short.price_files] == [
        "BTC-USDT.csv",
        "ETH-USDT.csv",
        "SOL-USDT.csv",
        "AAPL-USD.csv",
        "MSFT-USD.csv",
        "SPY-USD.csv",
    ]
    assert [p.relative_to(short.out_dir).as_posix() for p in short.news_files] == ["news/wire.rss", "news/markets.atom"]
    assert short.end == datetime(2026, 11, 1, tzinfo=UTC)
    for symbol in SYMBOLS:
        path = short.price_file(symbol)
        assert path.read_text().splitlines()[0] == CSV_HEADER
        df = _read_bars(path)
        assert set(df["exchange"]) == {"demo"} and set(df["symbol"]) == {symbol} and set(df["timeframe"]) == {"1h"}
        assert df["ts"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:00:00Z").all()
        for col in ("open", "high", "low", "close", "volume"):
            assert df[col].str.fullmatch(r"\d+(\.\d+)?").all(), f"{symbol}.{col} is not a plain decimal"


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path, short: SampleData) -> None:
    again = generate(tmp_path / "again", days=SHORT_DAYS)
    assert _file_bytes(again) == _file_bytes(short)
    other = generate(tmp_path / "other", days=SHORT_DAYS, seed=8)
    assert _file_bytes(other)["prices/BTC-USDT.csv"] != _file_bytes(short)["prices/BTC-USDT.csv"]
    assert _file_bytes(other)["news/wire.rss"] != _file_bytes(short)["news/wire.rss"]


def test_regenerating_in_place_leaves_files_untouched(tmp_path: Path) -> None:
    first = generate(tmp_path, days=SHORT_DAYS)
    mtimes = {p: p.stat().st_mtime_ns for p in first.files}
    second = generate(tmp_path, days=SHORT_DAYS)
    assert second == first
    assert {p: p.stat().st_mtime_ns for p in second.files} == mtimes
    assert not list(tmp_path.rglob("*.tmp"))


def _assert_valid_ohlc(df: pd.DataFrame, symbol: str) -> None:
    num = _numeric(df)
    assert (num[["open", "high", "low", "close", "volume"]] > 0).all().all(), symbol
    assert (num["high"] >= num[["open", "close"]].max(axis=1)).all(), symbol
    assert (num["low"] <= num[["open", "close"]].min(axis=1)).all(), symbol
    assert num.index.is_monotonic_increasing and num.index.is_unique, symbol


def test_ohlc_invariants_on_every_row(full: SampleData) -> None:
    for symbol in SYMBOLS:
        _assert_valid_ohlc(_read_bars(full.price_file(symbol)), symbol)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10_000), days=st.integers(min_value=2, max_value=12))
def test_any_seed_gives_valid_bars(tmp_path_factory: pytest.TempPathFactory, seed: int, days: int) -> None:
    data = generate(tmp_path_factory.mktemp("prop"), seed=seed, days=days)
    for symbol in SYMBOLS:
        _assert_valid_ohlc(_read_bars(data.price_file(symbol)), symbol)
    for feed in data.news_files:
        assert not feedparser.parse(str(feed)).bozo


def test_crypto_bars_are_continuous_and_open_at_the_previous_close(short: SampleData) -> None:
    for symbol in CRYPTO_SYMBOLS:
        df = _read_bars(short.price_file(symbol))
        ts = pd.to_datetime(df["ts"], utc=True)
        assert len(df) == SHORT_DAYS * 24
        assert ts.iloc[0] == short.start and ts.iloc[-1] == short.end - timedelta(hours=1)
        assert (ts.diff().dropna() == pd.Timedelta(hours=1)).all()
        assert (df["open"].iloc[1:].to_numpy() == df["close"].iloc[:-1].to_numpy()).all()


def test_stock_bars_only_in_weekday_session_hours(full: SampleData) -> None:
    for symbol in STOCK_SYMBOLS:
        ts = pd.to_datetime(_read_bars(full.price_file(symbol))["ts"], utc=True)
        assert (ts.dt.day_of_week < 5).all()
        assert set(ts.dt.hour) == set(range(14, 21))
        assert (ts.dt.date.value_counts() == 7).all()
        weekdays = pd.date_range(full.start, full.end - timedelta(hours=1), freq="D").day_of_week < 5
        assert len(ts) == 7 * weekdays.sum()
        assert all(sampledata.is_session_hour(t.to_pydatetime()) for t in ts[:50])


def test_price_levels_are_plausible(full_closes: pd.DataFrame) -> None:
    nominal = {"BTC/USDT": 60_000, "ETH/USDT": 3_000, "SOL/USDT": 150, "AAPL/USD": 190, "MSFT/USD": 420, "SPY/USD": 520}
    for symbol, level in nominal.items():
        closes = full_closes[symbol].dropna()
        assert level / 4 < closes.min() and closes.max() < level * 4, symbol
        assert level * 0.8 < closes.median() < level * 1.25 or symbol in CRYPTO_SYMBOLS, symbol


def test_daily_returns_are_correlated_within_groups_more_than_across(full_closes: pd.DataFrame) -> None:
    # Daily closes at the stock close (bar opening 20:00 UTC) so both groups cover the same windows.
    daily = np.log(full_closes[full_closes.index.hour == 20].dropna()).diff().dropna()
    corr = daily.corr()
    assert corr.loc["BTC/USDT", "ETH/USDT"] > 0.6
    assert corr.loc["AAPL/USD", "MSFT/USD"] > 0.4
    assert corr.loc["BTC/USDT", "ETH/USDT"] > corr.loc["BTC/USDT", "AAPL/USD"] + 0.3
    assert abs(corr.loc["BTC/USDT", "AAPL/USD"]) < 0.5


def test_calm_and_turbulent_regimes_both_occur(full_closes: pd.DataFrame) -> None:
    returns = np.log(full_closes["BTC/USDT"]).diff()
    rolling_vol = returns.rolling(5 * 24).std().dropna()
    assert rolling_vol.quantile(0.95) > 2 * rolling_vol.quantile(0.05)


def test_volume_rises_with_the_size_of_the_move(full: SampleData) -> None:
    df = _numeric(_read_bars(full.price_file("BTC/USDT")))
    move = np.abs(np.log(df["close"] / df["open"]))
    big = df["volume"][move > move.quantile(0.9)].median()
    small = df["volume"][move < move.quantile(0.1)].median()
    assert big > 2 * small


def test_feeds_parse_and_overlap(full: SampleData) -> None:
    wire, markets = (feedparser.parse(str(p)) for p in full.news_files)
    assert not wire.bozo and not markets.bozo
    assert wire.version == "rss20" and markets.version == "atom10"
    total = len(wire.entries) + len(markets.entries)
    assert 300 <= full.news_items <= 2000
    wire_links = {e.link for e in wire.entries}
    shared = [e for e in markets.entries if e.link.split("?")[0] in wire_links]
    assert all("utm_source=markets" in e.link for e in shared)
    assert 0.10 <= len(shared) / full.news_items <= 0.20
    assert total == full.news_items + len(shared)
    link = re.compile(r"https://news\.alphaloom\.example/\d{4}/\d\d/[a-z0-9-]+-\d+")
    assert all(link.fullmatch(e.link) for e in wire.entries)
    assert {t.term for e in wire.entries for t in e.get("tags", [])} <= set(SYMBOLS)
    wire_ids = {e.id for e in wire.entries}
    assert not wire_ids & {e.id for e in markets.entries}


def _tone(title: str) -> int:
    words = set(re.findall(r"[a-z]+", title.lower()))
    positive = bool(words & set(sampledata.POSITIVE_WORDS))
    negative = bool(words & set(sampledata.NEGATIVE_WORDS))
    return int(positive) - int(negative)


def test_news_tone_matches_the_move_around_publication(full: SampleData, full_closes: pd.DataFrame) -> None:
    agree = disagree = 0
    for feed in full.news_files:
        for entry in feedparser.parse(str(feed)).entries:
            tone = _tone(entry.title)
            if tone == 0:
                continue
            (symbol,) = [t.term for t in entry.tags]
            published = pd.Timestamp(datetime(*entry.published_parsed[:6], tzinfo=UTC))
            # The bars a decision at publication could see: known (open time + 1h) by then.
            closes = full_closes[symbol].dropna()
            seen = int(np.searchsorted(closes.index + pd.Timedelta(hours=1), published, side="right"))
            last_known = closes.index[seen - 1] + pd.Timedelta(hours=1)
            assert published - last_known <= pd.Timedelta(hours=1), "story published long after the move"
            window = 7 if symbol in STOCK_SYMBOLS else 24
            move = closes.iloc[seen - 1] / closes.iloc[seen - 1 - window] - 1
            agree += int(np.sign(move) == tone)
            disagree += int(np.sign(move) != tone)
    assert agree >= 150
    assert agree / (agree + disagree) > 0.9


def test_full_size_generation_is_quick(tmp_path: Path) -> None:
    started = datetime.now(UTC)
    generate(tmp_path)
    assert datetime.now(UTC) - started < timedelta(seconds=5)


def test_a_weekend_only_sample_has_no_stock_bars(tmp_path: Path) -> None:
    data = generate(tmp_path, days=2, end=datetime(2026, 11, 2, tzinfo=UTC))  # Saturday and Sunday
    assert data.price_file("AAPL/USD").read_text() == CSV_HEADER + "\n"
    assert len(_read_bars(data.price_file("BTC/USDT"))) == 48


def test_end_must_be_aware_and_days_sensible(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        generate(tmp_path, days=3, end=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="days"):
        generate(tmp_path, days=1)
    data = generate(tmp_path, days=3, end=datetime(2026, 1, 7, 12, 30, tzinfo=UTC))
    assert data.end == datetime(2026, 1, 7, 12, tzinfo=UTC)
    with pytest.raises(KeyError):
        data.price_file("DOGE/USDT")
