"""US stock bars from Alpaca's market-data API through alpaca-py (``StockHistoricalDataClient.get_stock_bars``), into
``raw.ohlcv`` like the ccxt series: a series ``alpaca:AAPL:1h`` in ``ALPHALOOM_CCXT_SOURCES`` (or ``--ccxt``) is fetched
by this source (``alphaloom.ingest.price_sources.series_source``), resuming after its last stored bar.

- ``AlpacaPriceSource(data, trading).batch(symbol, timeframe, since=...)``: every bar from ``since`` (the SDK follows
  Alpaca's ``next_page_token`` pages), closed bars only: a bar is kept when it has closed by the local clock (Alpaca
  sends no server time with bars; its clock is NTP-disciplined and a bar still forming is at most one bar old, so a
  bar whose close is after ``now`` is dropped and fetched again next run). The latest bar is the newest closed one.
- Times: minute and hour bars are on the UTC grid as Alpaca stamps them; a daily bar is stamped at New York midnight
  by Alpaca and stored at that date's UTC midnight (our grid for ``1d``). Other timeframes are a ``ConfigError``.
- ``market_spec(symbol)``: the asset's metadata (``get_asset``): class ``stocks``, step 1e-9 for a fractionable asset,
  else one share; stored in ``raw.markets`` so sizing uses it.
- Errors go through the one Alpaca table (``alphaloom.venues.alpaca_errors``, column ``INGEST``): temporary trouble is
  retried with backoff (tenacity, then ``VenueTemporaryError``), an unknown symbol is a ``ConfigError``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from alphaloom.domain import bar_close
from alphaloom.errors import ConfigError
from alphaloom.ingest.ccxt_prices import Backoff
from alphaloom.ingest.prices import COLUMNS, PriceBatch, frame_from_bars
from alphaloom.markets import MarketSpec
from alphaloom.venues.alpaca_errors import Call, is_temporary, vendor_errors, venue_error
from alphaloom.venues.alpaca_sessions import EXCHANGE_TZ

if TYPE_CHECKING:
    from alpaca.data.historical import StockHistoricalDataClient
    from alpaca.trading.client import TradingClient

VENUE = "alpaca"
# our timeframe -> (amount, Alpaca unit name)
TIMEFRAMES: dict[str, tuple[int, str]] = {"1m": (1, "Minute"), "5m": (5, "Minute"), "15m": (15, "Minute"),
                                          "30m": (30, "Minute"), "1h": (1, "Hour"), "1d": (1, "Day")}  # fmt: skip
FRACTIONAL_STEP = Decimal("0.000000001")


class AlpacaPriceSource:
    """Closed bars of US stocks. ``trading`` (optional) answers ``market_spec`` from the asset's metadata."""

    def __init__(self, data: StockHistoricalDataClient, trading: TradingClient | None = None, *, feed: str = "iex",
                 backoff: Backoff | None = None, clock: Callable[[], datetime] | None = None) -> None:  # fmt: skip
        self.data = data
        self.trading = trading
        self.feed = feed
        self.venue = VENUE
        self.backoff = backoff or Backoff()
        self.clock = clock or (lambda: datetime.now(UTC))

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        retrying = Retrying(retry=retry_if_exception(is_temporary), stop=stop_after_attempt(self.backoff.attempts),
                            wait=wait_exponential(multiplier=self.backoff.initial, max=self.backoff.maximum),
                            sleep=self.backoff.sleep, reraise=True)  # fmt: skip
        try:
            return retrying(fn)
        except vendor_errors() as exc:
            spent = f": still failing after {self.backoff.attempts} attempts" if is_temporary(exc) else ""
            raise venue_error(exc, Call.INGEST, f"alpaca {what}{spent}") from exc

    def market_spec(self, symbol: str) -> MarketSpec:
        """The asset's own description (``get_asset``); without a trading client, whole shares."""
        if self.trading is None:
            return MarketSpec(symbol, "stocks", Decimal(1), Decimal(1), "us_equity", "config")
        trading = self.trading
        asset = self._call(f"asset {symbol}", lambda: trading.get_asset(symbol))
        step = FRACTIONAL_STEP if getattr(asset, "fractionable", False) else Decimal(1)
        return MarketSpec(symbol, "stocks", step, step, "us_equity", "venue")

    def closed_bars(self, symbol: str, timeframe: str, *, since: datetime | None) -> pd.DataFrame:
        """Closed bars with open time >= ``since``, oldest first, as a frame of ``COLUMNS``."""
        from alpaca.data.enums import DataFeed
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

        if timeframe not in TIMEFRAMES:
            raise ConfigError(f"alpaca bars: timeframe {timeframe!r} is not offered; use one of {' '.join(TIMEFRAMES)}")
        amount, unit = TIMEFRAMES[timeframe]
        now = self.clock()
        request = StockBarsRequest(symbol_or_symbols=symbol, timeframe=TimeFrame(amount, TimeFrameUnit[unit]),
                                   start=since, end=now, feed=DataFeed(self.feed))  # fmt: skip
        bars = self._call(f"bars {symbol} {timeframe}", lambda: self.data.get_stock_bars(request))
        rows = []
        for bar in bars.data.get(symbol, []):
            ts = _grid_time(bar.timestamp, timeframe)
            if (since is None or ts >= since) and bar_close(ts, timeframe) <= now:
                rows.append([VENUE, symbol, timeframe, ts, *(_text(v) for v in (bar.open, bar.high, bar.low,
                                                                                bar.close, bar.volume))])  # fmt: skip
        frame = pd.DataFrame(rows, columns=list(COLUMNS))
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        return frame.drop_duplicates(subset=["ts"]).sort_values("ts").reset_index(drop=True)

    def batch(self, symbol: str, timeframe: str, *, since: datetime | None) -> PriceBatch:
        """``closed_bars`` validated like a file (``frame_from_bars``), ready for quality checks and merging."""
        frame = self.closed_bars(symbol, timeframe, since=since)
        return frame_from_bars(frame, source=f"alpaca:{symbol}:{timeframe}")


def _grid_time(ts: datetime, timeframe: str) -> datetime:
    """Alpaca's bar time on our grid: a daily bar's New York date at UTC midnight; others as stamped (UTC)."""
    ts = ts.astimezone(UTC)
    if timeframe == "1d":
        day = ts.astimezone(EXCHANGE_TZ).date()
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    return ts


def _text(value: object) -> str:
    # alpaca-py parses the numbers into floats; repr gives back the shortest text that round-trips.
    return "" if value is None else repr(float(value))  # type: ignore[arg-type]


def alpaca_price_source(venue: str = VENUE) -> AlpacaPriceSource:
    """The source for ``alpaca:`` series, with the keys of ``ALPHALOOM_ACCOUNT`` (``alphaloom keys add alpaca``);
    ``ConfigError`` when none are stored (Alpaca's data API needs keys)."""
    from alphaloom.db.engine import get_engine
    from alphaloom.settings import get_settings
    from alphaloom.venues.alpaca_client import alpaca_credentials, stock_data_client, trading_client

    settings = get_settings()
    with get_engine().connect() as conn:
        credentials = alpaca_credentials(conn, settings, settings.account)
    if credentials is None:
        raise ConfigError(f"no Alpaca keys stored for account {settings.account!r}: add them with "
                          "`alphaloom keys add alpaca`")  # fmt: skip
    return AlpacaPriceSource(stock_data_client(credentials, settings.alpaca),
                             trading_client(credentials, settings.alpaca), feed=settings.alpaca.data_feed)  # fmt: skip
