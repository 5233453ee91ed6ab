"""Where prices come from: a local path or an ``http(s)://`` URL of a price file, or a venue series.

``is_url`` tells them apart (a URL is kept as written: it is not a path, and ``Path`` would fold ``//`` into ``/``).
``local_file_problem`` names what is wrong with a path given as an input ("no such file", "is a directory"), so the
CLI can refuse an operator's typo before any work starts. ``fetch_price_file`` GETs a URL (redirects followed, one
timeout) and raises ``SourceUnavailableError`` naming the URL and the exact failure (``HTTP 404 Not Found``,
``ConnectError: ...``); a price file fetched this way is read exactly as a local one with the same suffix.
"""

from __future__ import annotations

import importlib
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
    """A venue's bars: closed bars since a time as a validated batch, and the market's metadata."""

    def batch(self, symbol: str, timeframe: str, *, since: datetime | None) -> PriceBatch: ...

    def market_spec(self, symbol: str) -> MarketSpec: ...


SERIES_SOURCES: dict[str, str] = {
    "alpaca": "alphaloom.ingest.alpaca_prices:alpaca_price_source",
    "oanda": "alphaloom.ingest.oanda_prices:oanda_price_source",
}


def series_source(venue: str) -> SeriesSource | None:
    """The venue's own series source (built with its stored keys), or None when ccxt fetches its series."""
    target = SERIES_SOURCES.get(venue)
    if target is None:
        return None
    module, _, function = target.partition(":")
    source: SeriesSource = getattr(importlib.import_module(module), function)(venue)
    return source
