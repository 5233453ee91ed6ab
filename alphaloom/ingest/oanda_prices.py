"""Forex bars from OANDA's v20 candles (mid prices), through the one v20 client (``alphaloom.venues.oanda_client``):
the OANDA price source of a venue series ``oanda:EUR/USD:1h`` (``oanda_price_source``, registered in
``alphaloom.ingest.price_sources.SERIES_SOURCES``).

- ``OandaPriceSource(client).closed_bars(symbol, timeframe, since=...)`` pages forward through
  ``instruments/{instrument}/candles`` (``price=M``, ``from`` and ``count``) and keeps only the candles OANDA marks
  ``complete``: a forming candle is never stored as final (closure is OANDA's judgement, not the local clock's). Daily
  and weekly candles are aligned to UTC midnight (Monday for weeks), the grid of ``raw.ohlcv``.
- It resumes like the ccxt source: the ingest asks ``resume_points`` for the bar after the last stored one.
- Failures go through the one v20 table (``alphaloom.venues.oanda_errors``, column ``INGEST``): temporary ones are
  retried with backoff, then ``VenueTemporaryError``; an unknown instrument is a ``ConfigError``.
- ``market_spec``: a forex market in whole units with OANDA's minimum trade size, for ``raw.markets``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Connection
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from alphaloom.domain import bar_close
from alphaloom.errors import ConfigError
from alphaloom.ingest.ccxt_prices import Backoff
from alphaloom.ingest.prices import COLUMNS, PriceBatch, frame_from_bars
from alphaloom.markets import MarketSpec
from alphaloom.ops.secrets import load_credentials
from alphaloom.settings import Settings
from alphaloom.venues.oanda_client import OandaApiError, OandaClient, config_from_credentials, instrument_of
from alphaloom.venues.oanda_errors import Call, is_temporary, venue_error

VENUE = "oanda"
GRANULARITY = {"1m": "M1", "5m": "M5", "15m": "M15", "30m": "M30", "1h": "H1", "2h": "H2", "4h": "H4",
               "1d": "D", "1w": "W", "1M": "M"}  # fmt: skip


def granularity_of(timeframe: str) -> str:
    """OANDA's granularity for one of our timeframes (``1h`` -> ``H1``); ``ConfigError`` for one it has not."""
    try:
        return GRANULARITY[timeframe]
    except KeyError:
        raise ConfigError(
            f"OANDA has no candles of timeframe {timeframe!r}; use one of {', '.join(GRANULARITY)}"
        ) from None


def _alignment(granularity: str) -> dict[str, str]:
    if granularity in ("D", "W", "M"):
        return {"dailyAlignment": "0", "alignmentTimezone": "UTC", "weeklyAlignment": "Monday"}
    return {}


class OandaPriceSource:
    """Complete mid-price candles of one OANDA account's instruments (see the module docstring)."""

    def __init__(self, client: OandaClient, *, page_limit: int = 500, backoff: Backoff | None = None,
                 max_pages: int = 10_000) -> None:  # fmt: skip
        self.client = client
        self.venue = VENUE
        self.page_limit = page_limit
        self.backoff = backoff or Backoff()
        self.max_pages = max_pages

    def _call(self, what: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, OandaApiError) and is_temporary(e)),
            stop=stop_after_attempt(self.backoff.attempts),
            wait=wait_exponential(multiplier=self.backoff.initial, max=self.backoff.maximum),
            sleep=self.backoff.sleep,
            reraise=True,
        )
        try:
            return retrying(fn)
        except OandaApiError as exc:
            spent = f": still failing after {self.backoff.attempts} attempts" if is_temporary(exc) else ""
            raise venue_error(exc, Call.INGEST, f"oanda {what}{spent}") from exc

    def market_spec(self, symbol: str) -> MarketSpec:
        """OANDA's description of ``symbol`` for ``raw.markets``: forex, its units step and minimum trade size."""
        name = instrument_of(symbol)
        found = self._call(f"instrument {name}", lambda: self.client.instruments([name])).get("instruments") or []
        raw = next((i for i in found if i.get("name") == name), None)
        if raw is None:
            raise ConfigError(f"oanda has no instrument {name!r}; check the configured symbol")
        step = Decimal(1).scaleb(-int(raw.get("tradeUnitsPrecision", 0)))
        return MarketSpec(symbol, "forex", step, Decimal(str(raw.get("minimumTradeSize", "1"))),
                          str(raw.get("type", "CURRENCY")).lower(), "venue")  # fmt: skip

    def _page(self, name: str, granularity: str, start: datetime | None) -> list[dict[str, Any]]:
        def fetch() -> dict[str, Any]:
            return self.client.candles(name, granularity, start=start, count=self.page_limit,
                                       extra=_alignment(granularity))  # fmt: skip

        return list(self._call(f"candles {name} {granularity}", fetch).get("candles") or [])

    def closed_bars(self, symbol: str, timeframe: str, *, since: datetime | None) -> pd.DataFrame:
        """Complete candles with open time >= ``since`` (the newest page when None), oldest first, as a frame of
        ``COLUMNS`` (prices as OANDA's decimal text)."""
        name, granularity = instrument_of(symbol), granularity_of(timeframe)
        rows: dict[datetime, list[object]] = {}
        cursor = since
        for _ in range(self.max_pages):
            page = self._page(name, granularity, cursor)
            complete = True
            for candle in page:
                if not candle.get("complete"):
                    complete = False  # the forming candle ends the series for now
                    break
                ts = pd.Timestamp(str(candle["time"])).tz_convert("UTC").to_pydatetime()
                mid = candle.get("mid") or {}
                rows[ts] = [ts, mid.get("o"), mid.get("h"), mid.get("l"), mid.get("c"), str(candle.get("volume", 0))]
            if not complete or len(page) < self.page_limit or not rows:
                break
            nxt = bar_close(max(rows), timeframe)
            if cursor is not None and nxt <= cursor:
                break
            cursor = nxt
        frame = pd.DataFrame([rows[t] for t in sorted(rows)], columns=["ts", "open", "high", "low", "close", "volume"])
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        frame.insert(0, "timeframe", timeframe)
        frame.insert(0, "symbol", symbol)
        frame.insert(0, "exchange", self.venue)
        return frame[list(COLUMNS)]

    def batch(self, symbol: str, timeframe: str, *, since: datetime | None) -> PriceBatch:
        """``closed_bars`` validated like a file, ready for the quality gate and ``merge_bars``."""
        return frame_from_bars(self.closed_bars(symbol, timeframe, since=since),
                               source=f"oanda:{symbol}:{timeframe}")  # fmt: skip


def oanda_price_source(venue: str = VENUE) -> OandaPriceSource:
    """The source of ``oanda:`` series (``alphaloom.ingest.price_sources.SERIES_SOURCES``), with the token stored for
    ``ALPHALOOM_ACCOUNT``; ``ConfigError`` when none is."""
    from alphaloom.db.engine import get_engine
    from alphaloom.settings import get_settings

    with get_engine().connect() as conn:
        return stored_oanda_source(conn, get_settings())


def stored_oanda_source(conn: Connection, settings: Settings, account: str | None = None) -> OandaPriceSource:
    """The OANDA source of ``account`` (default ``ALPHALOOM_ACCOUNT``) with its stored token; ``ConfigError`` when
    none is stored."""
    account = account or settings.account
    credentials = load_credentials(conn, settings, VENUE, account)
    if credentials is None:
        raise ConfigError(f"no OANDA credentials stored for account {account!r}: add them with "
                          f"`alphaloom keys add oanda --account {account}`")  # fmt: skip
    return OandaPriceSource(OandaClient(config_from_credentials(credentials.api_key, credentials.secret,
                                                                credentials.password)))  # fmt: skip
