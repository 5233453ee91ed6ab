"""Where a price file comes from: a local path or an ``http(s)://`` URL.

``is_url`` tells them apart (a URL is kept as written: it is not a path, and ``Path`` would fold ``//`` into ``/``).
``local_file_problem`` names what is wrong with a path given as an input ("no such file", "is a directory"), so the
CLI can refuse an operator's typo before any work starts. ``fetch_price_file`` GETs a URL (redirects followed, one
timeout) and raises ``SourceUnavailableError`` naming the URL and the exact failure (``HTTP 404 Not Found``,
``ConnectError: ...``); a price file fetched this way is read exactly as a local one with the same suffix.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from alphaloom.errors import SourceUnavailableError

if TYPE_CHECKING:
    from alphaloom.ingest.prices import PriceBatch
    from alphaloom.markets import MarketSpec

USER_AGENT = "AlphaLoom/0.1 (+price file reader)"


def is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def url_suffix(url: str) -> str:
    """The file suffix of a URL's path (``.csv``, ``.parquet``), lower case; ``""`` when it has none."""
    return Path(urlsplit(url).path).suffix.lower()


def local_file_problem(path: Path | str) -> str | None:
    """Why ``path`` cannot be read as an input file, or ``None`` when it is a regular file."""
    path = Path(path)
    if path.is_file():
        return None
    if path.is_dir():
        return "is a directory"
    if path.exists():
        return "not a regular file"
    return "no such file"


def fetch_price_file(url: str, *, timeout: float = 30.0) -> bytes:
    """The body of ``url``; ``SourceUnavailableError(url, "fetch", reason)`` for network trouble or an HTTP error."""
    import httpx  # only a URL input pays for it

    try:
        with httpx.Client(timeout=timeout, follow_redirects=True, headers={"User-Agent": USER_AGENT}) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        raise SourceUnavailableError(url, "fetch", f"{type(exc).__name__}: {exc}") from None
    if response.status_code >= 400:
        raise SourceUnavailableError(url, "fetch", f"HTTP {response.status_code} {response.reason_phrase}")
    return response.content


class SeriesSource(Protocol):
    """A venue's closed bars of one series at a time, resumable from ``since`` (ccxt's and OANDA's sources)."""

    def batch(self, symbol: str, timeframe: str, *, since: datetime | None) -> PriceBatch: ...

    def market_spec(self, symbol: str) -> MarketSpec: ...


def venue_price_source(exchange: str) -> SeriesSource:
    """The source of the venue series ``exchange:SYMBOL:timeframe``: OANDA's candles for ``oanda`` (with the
    credentials stored for ``ALPHALOOM_ACCOUNT``), else the ccxt exchange of that id."""
    if exchange == "oanda":
        from alphaloom.db.engine import get_engine
        from alphaloom.ingest.oanda_prices import stored_oanda_source
        from alphaloom.settings import get_settings

        with get_engine().connect() as conn:
            return stored_oanda_source(conn, get_settings())
    from alphaloom.ingest.ccxt_prices import CcxtPriceSource
    from alphaloom.venues.ccxt_exchange import make_exchange

    return CcxtPriceSource(make_exchange(exchange))
