"""A stand-in venue for ccxt's real exchange classes: recorded HTTP responses served below ccxt.

``VenueReplay`` is a ``requests`` transport adapter mounted on the exchange's own session, so everything above the socket
(ccxt's request signing, JSON parsing, HTTP status and error-body mapping, rate limiter) is the real code. Routes map a URL
path to a handler returning ``(status, body)``, or raising a ``requests`` exception (a timeout, a refused connection).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter

FIXTURES = Path(__file__).parent / "fixtures" / "ccxt"
Handler = Callable[[dict[str, str]], tuple[int, object]]


def recorded(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


class VenueReplay(BaseAdapter):
    def __init__(self, routes: dict[str, Handler]) -> None:
        super().__init__()
        self.routes = routes
        self.calls: list[tuple[str, dict[str, str]]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
        parts = urlsplit(request.url or "")
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.calls.append((parts.path, query))
        handler = self.routes.get(parts.path)
        status, body = handler(query) if handler else (404, {"code": -1, "msg": f"no route {parts.path}"})
        response = requests.Response()
        response.status_code = status
        response.reason = {200: "OK", 400: "Bad Request", 429: "Too Many Requests", 503: "Service Unavailable"}.get(
            status, "Error"
        )
        response._content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


def mount(exchange: object, routes: dict[str, Handler]) -> VenueReplay:
    replay = VenueReplay(routes)
    exchange.session.mount("https://", replay)  # type: ignore[attr-defined]
    return replay


def binance_routes(klines: list[list] | None = None) -> dict[str, Handler]:
    """Spot markets and a klines endpoint honouring ``startTime`` and ``limit`` over the recorded klines."""
    info = recorded("binance_exchangeInfo.json")
    rows = klines if klines is not None else recorded("binance_klines_BTCUSDT_1h.json")

    def klines_handler(q: dict[str, str]) -> tuple[int, object]:
        if q.get("symbol") != "BTCUSDT":
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        start = int(q.get("startTime", 0))
        page = [r for r in rows if r[0] >= start][: int(q.get("limit", 500))]
        return 200, page

    empty = {"timezone": "UTC", "serverTime": 1767225600000, "symbols": []}
    return {
        "/api/v3/exchangeInfo": lambda q: (200, info),
        "/fapi/v1/exchangeInfo": lambda q: (200, empty),
        "/dapi/v1/exchangeInfo": lambda q: (200, empty),
        "/api/v3/klines": klines_handler,
    }


def kraken_routes() -> dict[str, Handler]:
    ohlc = recorded("kraken_OHLC_XBTUSD_60.json")
    return {
        "/0/public/Assets": lambda q: (200, recorded("kraken_Assets.json")),
        "/0/public/AssetPairs": lambda q: (200, recorded("kraken_AssetPairs.json")),
        "/0/public/OHLC": lambda q: (200, ohlc),
    }
