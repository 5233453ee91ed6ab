"""OANDA candles into raw.ohlcv through the real v20 client and a local stand-in: complete mid candles only, paged,
resumed after the last stored bar, picked by the venue price source for ``oanda:`` series with the stored token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from support.oanda_standin import ACCOUNT_ID, TOKEN, OandaStandIn, v20_time

from alphaloom.audit import start_run
from alphaloom.errors import ConfigError
from alphaloom.ingest.ccxt_prices import SeriesSpec, fetch_series, resume_points
from alphaloom.ingest.oanda_prices import OandaPriceSource, granularity_of, stored_oanda_source
from alphaloom.ingest.price_sources import SeriesSource, series_source
from alphaloom.ingest.prices import merge_bars
from alphaloom.ops.secrets import Credentials, store_credentials
from alphaloom.settings import get_settings
from alphaloom.venues.oanda_client import OandaClient, OandaConfig

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def candle(hour: int, *, complete: bool = True) -> dict[str, object]:
    base = Decimal("1.07000") + Decimal(hour) / 10000
    return {"complete": complete, "volume": 100 + hour, "time": v20_time(T0 + timedelta(hours=hour)),
            "mid": {"o": f"{base:.5f}", "h": f"{base + Decimal('0.0005'):.5f}",
                    "l": f"{base - Decimal('0.0004'):.5f}", "c": f"{base + Decimal('0.0001'):.5f}"}}  # fmt: skip


def registered(venue: str) -> SeriesSource:
    """The venue's source from the registry the ingest flow asks first (ccxt's only when it has none)."""
    source = series_source(venue)
    assert source is not None, venue
    return source


@pytest.fixture
def venue() -> Iterator[OandaStandIn]:
    standin = OandaStandIn().start()
    standin.candles[("EUR_USD", "H1")] = [candle(h) for h in range(30)] + [candle(30, complete=False)]
    yield standin
    standin.stop()


def test_only_complete_candles_are_read_page_by_page(venue: OandaStandIn) -> None:
    client = OandaClient(OandaConfig(venue.url, TOKEN, ACCOUNT_ID))
    try:
        frame = OandaPriceSource(client, page_limit=7).closed_bars("EUR/USD", "1h", since=T0)
    finally:
        client.close()
    assert len(frame) == 30 and frame["ts"].iloc[-1] == T0 + timedelta(hours=29)  # the forming candle is left out
    assert (frame["exchange"].iloc[0], frame["symbol"].iloc[0], frame["open"].iloc[1]) == ("oanda", "EUR/USD",
                                                                                          "1.07010")  # fmt: skip
    pages = [r for r in venue.requests if r[1].endswith("/candles")]
    assert len(pages) == 5  # 7 + 7 + 7 + 7 + 2 complete and the forming one


def test_an_oanda_series_is_ingested_and_resumes_after_its_last_bar(engine: Engine, venue: OandaStandIn) -> None:
    settings = get_settings()
    with engine.begin() as conn:
        store_credentials(conn, settings, Credentials("oanda", settings.account, TOKEN, ACCOUNT_ID, venue.url))
    spec = SeriesSpec.parse("oanda:EUR/USD:1h")
    run_id = start_run(engine, "test_oanda", {})
    with engine.begin() as conn:
        since = resume_points(conn, [spec])
    [first] = fetch_series([spec], since, source_for=registered, default_since=T0)
    assert first.error is None and first.batch is not None and first.market is not None
    assert (first.market.asset_class, first.market.quantity_step, first.market.min_quantity) == ("forex", 1, 1)
    with engine.begin() as conn:
        assert merge_bars(conn, first.batch, run_id).inserted == 30
        since = resume_points(conn, [spec])
    assert since == {spec: T0 + timedelta(hours=30)}
    venue.candles[("EUR_USD", "H1")][-1]["complete"] = True  # the forming candle closed; another one forms
    venue.candles[("EUR_USD", "H1")].append(candle(31, complete=False))
    [second] = fetch_series([spec], since, source_for=registered)
    assert second.batch is not None
    with engine.begin() as conn:
        assert merge_bars(conn, second.batch, run_id).inserted == 1
        row = conn.execute(text("select open, close, volume from raw.ohlcv where exchange = 'oanda' and "
                                "symbol = 'EUR/USD' and timeframe = '1h' and ts = :t"),
                           {"t": T0 + timedelta(hours=30)}).one()  # fmt: skip
    assert (Decimal(row.open), Decimal(row.close), Decimal(row.volume)) == (Decimal("1.07300"), Decimal("1.07310"),
                                                                            Decimal(130))  # fmt: skip
    *_, (_, path, query) = [r for r in venue.requests if r[1].endswith("/candles")]
    assert path == "/v3/instruments/EUR_USD/candles"  # resumed at the bar after the last stored one, mid prices
    assert (query["from"], query["price"], query["granularity"]) == ("2024-05-02T06:00:00.000000000Z", "M", "H1")


def test_an_unknown_instrument_is_the_configuration_s_mistake(engine: Engine, venue: OandaStandIn) -> None:
    settings = get_settings()
    with engine.begin() as conn:
        store_credentials(conn, settings, Credentials("oanda", settings.account, TOKEN, ACCOUNT_ID, venue.url))
    spec = SeriesSpec.parse("oanda:XAU/ABC:1h")
    [result] = fetch_series([spec], {spec: None}, source_for=registered, default_since=T0)
    assert result.error_type == "ConfigError" and "XAU_ABC" in str(result.error)


def test_no_stored_token_and_an_unknown_timeframe_are_config_errors(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(ConfigError, match="alphaloom keys add oanda --account nobody"):
        stored_oanda_source(conn, get_settings(), "nobody")
    with pytest.raises(ConfigError, match="OANDA has no candles of timeframe '3h'"):
        granularity_of("3h")
