"""The ``ingest_prices`` flow loads an ``oanda:`` series through the OANDA source (registered beside ccxt), the quality
gate and the merge, recording the market as forex in raw.markets; a rerun resumes and adds nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, text
from support.oanda_standin import ACCOUNT_ID, TOKEN, OandaStandIn, v20_time

from alphaloom.ops.secrets import Credentials, store_credentials
from alphaloom.settings import get_settings

_WEEK_AGO = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=7)
T0 = _WEEK_AGO - timedelta(days=_WEEK_AGO.weekday() - 2)  # a Wednesday: the forex week is open all day, within backfill


def test_an_oanda_series_goes_through_the_prices_flow(prefect_harness, engine: Engine) -> None:
    from flows.ingest_prices import ingest_prices

    venue = OandaStandIn().start()
    try:
        venue.candles[("EUR_USD", "H1")] = [
            {"complete": h < 24, "volume": 50 + h, "time": v20_time(T0 + timedelta(hours=h)),
             "mid": {"o": f"{Decimal('1.07') + Decimal(h) / 10000:.5f}", "h": f"{Decimal('1.08'):.5f}",
                     "l": f"{Decimal('1.06'):.5f}", "c": f"{Decimal('1.07') + Decimal(h) / 10000:.5f}"}}
            for h in range(25)
        ]  # fmt: skip
        settings = get_settings()
        with engine.begin() as conn:
            store_credentials(conn, settings, Credentials("oanda", settings.account, TOKEN, ACCOUNT_ID, venue.url))
            _forget_eur_usd(conn)
        (first,) = ingest_prices(ccxt_sources=["oanda:EUR/USD:1h"])
        (again,) = ingest_prices(ccxt_sources=["oanda:EUR/USD:1h"])
        with engine.connect() as conn:
            klass = conn.execute(text("select asset_class from raw.markets where exchange = 'oanda' and "
                                      "symbol = 'EUR/USD'")).scalar_one()  # fmt: skip
    finally:
        venue.stop()
        with engine.begin() as conn:  # a later module's dbt build must not see bars this one removes
            _forget_eur_usd(conn)
    assert first.get("error") is None and first["inserted"] == 24 and first["quality"] is True, first
    assert again["inserted"] == 0 and again.get("error") is None, again
    assert klass == "forex"


def _forget_eur_usd(conn) -> None:
    """Remove OANDA's EUR/USD bars and any feature rows an earlier module's dbt build made from them: the session's
    database is shared, and dbt's test that ``marts.features`` has one row per staged bar fails a later module's
    build if bars go while their feature rows stay."""
    if conn.execute(text("select to_regclass('marts.features')")).scalar() is not None:
        conn.execute(text("delete from marts.features where exchange = 'oanda' and symbol = 'EUR/USD'"))
    conn.execute(text("delete from raw.ohlcv where exchange = 'oanda' and symbol = 'EUR/USD'"))
