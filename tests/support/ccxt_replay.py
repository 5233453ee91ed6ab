"""A stand-in venue for ccxt's real exchange classes: recorded HTTP responses served below ccxt.

``VenueReplay`` is a ``requests`` transport adapter mounted on the exchange's own session, so everything above the socket
(ccxt's request signing, JSON parsing, HTTP status and error-body mapping, rate limiter) is the real code. Routes map a URL
path, or ``"METHOD path"`` (tried first), to a handler returning ``(status, body)``, or raising a ``requests`` exception
(a timeout, a refused connection). A handler gets the query string and form body parameters merged; ``requests`` keeps
``(method, path, params)`` of every request in order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ccxt"
Handler = Callable[[dict[str, str]], tuple[int, object]]


def recorded(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


class VenueReplay(BaseAdapter):
    def __init__(self, routes: dict[str, Handler]) -> None:
        super().__init__()
        self.routes = routes
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
        parts = urlsplit(request.url or "")
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
        if body and "x-www-form-urlencoded" in str(request.headers.get("Content-Type", "")):
            query.update({k: v[0] for k, v in parse_qs(body).items()})
        self.calls.append((parts.path, query))
        self.requests.append((request.method or "GET", parts.path, query))
        handler = self.routes.get(f"{request.method} {parts.path}") or self.routes.get(parts.path)
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


def binance_routes(klines: list[list] | None = None, *, server_time_ms: float | None = None) -> dict[str, Handler]:
    """Spot markets and a klines endpoint honouring ``startTime`` and ``limit`` over the recorded klines; with
    ``server_time_ms``, ``/api/v3/time`` answers that venue time and, like the venue, no kline opening after it is
    served (without it the venue has no time route and serves every recorded kline)."""
    info = recorded("binance_exchangeInfo.json")
    rows = klines if klines is not None else recorded("binance_klines_BTCUSDT_1h.json")

    def klines_handler(q: dict[str, str]) -> tuple[int, object]:
        if q.get("symbol") != "BTCUSDT":
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        start = int(q.get("startTime", 0))
        opened = [r for r in rows if server_time_ms is None or r[0] <= server_time_ms]
        page = [r for r in opened if r[0] >= start][: int(q.get("limit", 500))]
        return 200, page

    empty = {"timezone": "UTC", "serverTime": 1767225600000, "symbols": []}
    return {
        "/api/v3/exchangeInfo": lambda q: (200, info),
        "/fapi/v1/exchangeInfo": lambda q: (200, empty),
        "/dapi/v1/exchangeInfo": lambda q: (200, empty),
        "/api/v3/klines": klines_handler,
        **({} if server_time_ms is None else {"/api/v3/time": lambda q: (200, {"serverTime": int(server_time_ms)})}),
    }


def kraken_routes(*, server_time_s: int | None = None) -> dict[str, Handler]:
    """Kraken's public market data over the recorded OHLC; with ``server_time_s``, ``/0/public/Time`` answers it."""
    ohlc = recorded("kraken_OHLC_XBTUSD_60.json")
    time_answer = {"error": [], "result": {"unixtime": server_time_s, "rfc1123": ""}}
    return {
        **({} if server_time_s is None else {"/0/public/Time": lambda q: (200, time_answer)}),
        "/0/public/Assets": lambda q: (200, recorded("kraken_Assets.json")),
        "/0/public/AssetPairs": lambda q: (200, recorded("kraken_AssetPairs.json")),
        "/0/public/OHLC": lambda q: (200, ohlc),
    }


class BinanceSpotVenue:
    """Binance's spot order endpoints as a stateful stand-in: responses are the recorded shapes
    (``binance_order_full.json``, ``binance_order_query.json``, ``binance_myTrades.json``, ``binance_account.json``)
    with this order's values filled in. Like Binance, a client order id is unique only among open orders.

    ``prices[symbol]`` is where a market order fills (fee 0.1% of the quote, charged in the quote currency);
    ``resting`` client ids stay open as limit orders; ``timeouts[client id]`` = ``"after_accept"`` (the venue keeps
    the order, the answer is lost) or ``"before_accept"`` (lost on the way in). ``balances`` feeds ``/api/v3/account``,
    ``book`` feeds ``/api/v3/depth`` (the shape of ``binance_depth.json``).
    """

    def __init__(
        self, prices: dict[str, str], balances: dict[str, str] | None = None, *, fee_asset: str = "quote"
    ) -> None:
        self.prices = prices
        self.fee_asset = fee_asset  # "quote", "base" (binance's default for a buy) or an asset name such as "BNB"
        self.balances = balances if balances is not None else {"USDT": "10000"}
        self.orders: list[dict] = []
        self.resting: set[str] = set()
        self.timeouts: dict[str, str] = {}
        # ``book[symbol]`` = {"bids": [[price, qty], ...], "asks": [...]} (strings, best first) for ``/api/v3/depth``
        self.book: dict[str, dict[str, list[list[str]]]] = {}
        self.next_id = 1000
        self.clock_ms = 1767229200000

    def _find(self, q: dict[str, str]) -> dict | None:
        coid = q.get("origClientOrderId")
        matches = [o for o in self.orders if o["symbol"] == q.get("symbol")
                   and (o["clientOrderId"] == coid if coid else str(o["orderId"]) == q.get("orderId"))]  # fmt: skip
        return matches[-1] if matches else None

    def create(self, q: dict[str, str]) -> tuple[int, object]:
        coid = q["newClientOrderId"]
        if any(o["clientOrderId"] == coid and o["status"] in ("NEW", "PARTIALLY_FILLED") for o in self.orders):
            return 400, {"code": -2010, "msg": "Duplicate order sent."}
        fault = self.timeouts.pop(coid, None)
        if fault == "before_accept":
            raise requests.exceptions.ConnectTimeout("connect timed out")
        self.next_id += 1
        quote = "USDT" if q["symbol"].endswith("USDT") else q["symbol"][-3:]
        qty = Decimal(q["quantity"])
        price = Decimal(self.prices[q["symbol"]])
        rests = coid in self.resting or "stopPrice" in q  # a stop order rests until the market reaches it
        order = {**recorded("binance_order_query.json"), "symbol": q["symbol"], "orderId": self.next_id,
                 "clientOrderId": coid, "origQty": q["quantity"], "side": q["side"], "type": q["type"],
                 "price": q.get("price", "0.00000000"), "time": self.clock_ms, "updateTime": self.clock_ms,
                 "status": "NEW" if rests else "FILLED", "executedQty": "0" if rests else q["quantity"],
                 "cummulativeQuoteQty": "0" if rests else str(qty * price)}  # fmt: skip
        trades = [] if rests else [{**recorded("binance_myTrades.json")[0], "symbol": q["symbol"],
                                    "id": self.next_id * 10, "orderId": self.next_id, "price": str(price),
                                    "qty": q["quantity"], "quoteQty": str(qty * price),
                                    "commission": str(qty * price / 1000 if self.fee_asset == "quote"
                                                      else qty / 1000),
                                    "commissionAsset": {"quote": quote, "base": q["symbol"][: -len(quote)]}.get(
                                        self.fee_asset, self.fee_asset),
                                    "time": self.clock_ms, "isBuyer": q["side"] == "BUY"}]  # fmt: skip
        order["_trades"] = trades
        if "stopPrice" in q:
            order["stopPrice"] = q["stopPrice"]
        self.orders.append(order)
        if fault == "after_accept":
            raise requests.exceptions.ReadTimeout("read timed out")
        full = {**recorded("binance_order_full.json"), **{k: v for k, v in order.items() if k in (
            "symbol", "orderId", "clientOrderId", "origQty", "executedQty", "cummulativeQuoteQty", "status", "type",
            "side", "price")}, "transactTime": self.clock_ms,
            "fills": [{"price": t["price"], "qty": t["qty"], "commission": t["commission"],
                       "commissionAsset": t["commissionAsset"], "tradeId": t["id"]} for t in trades]}  # fmt: skip
        return 200, full

    def trigger(self, client_order_id: str, price: str) -> None:
        """The market reached a resting order's stop: it fills completely at ``price``."""
        order = next(o for o in self.orders if o["clientOrderId"] == client_order_id and o["status"] == "NEW")
        qty, fill = Decimal(order["origQty"]), Decimal(price)
        self.next_id += 1
        order.update(status="FILLED", executedQty=order["origQty"], cummulativeQuoteQty=str(qty * fill))
        order["_trades"] = [{**recorded("binance_myTrades.json")[0], "symbol": order["symbol"], "id": self.next_id,
                             "orderId": order["orderId"], "price": price, "qty": order["origQty"],
                             "quoteQty": str(qty * fill), "commission": str(qty * fill / 1000),
                             "commissionAsset": "USDT", "time": self.clock_ms, "isBuyer": order["side"] == "BUY"}]  # fmt: skip

    @staticmethod
    def _public(order: dict) -> dict:
        return {k: v for k, v in order.items() if not k.startswith("_")}

    def query(self, q: dict[str, str]) -> tuple[int, object]:
        order = self._find(q)
        return (200, self._public(order)) if order else (400, {"code": -2013, "msg": "Order does not exist."})

    def cancel(self, q: dict[str, str]) -> tuple[int, object]:
        order = self._find(q)
        if order is None or order["status"] not in ("NEW", "PARTIALLY_FILLED"):
            return 400, {"code": -2011, "msg": "Unknown order sent."}
        order["status"] = "CANCELED"
        return 200, {**self._public(order), "origClientOrderId": order["clientOrderId"]}

    def open_orders(self, q: dict[str, str]) -> tuple[int, object]:
        return 200, [self._public(o) for o in self.orders if o["status"] in ("NEW", "PARTIALLY_FILLED")
                     and o["symbol"] == q.get("symbol", o["symbol"])]  # fmt: skip

    def my_trades(self, q: dict[str, str]) -> tuple[int, object]:
        if "orderId" not in q:  # the account's trades in a symbol since startTime
            return 200, [t for o in self.orders if o["symbol"] == q.get("symbol") for t in o["_trades"]
                         if t["time"] >= int(q.get("startTime", 0))]  # fmt: skip
        return 200, [t for o in self.orders if str(o["orderId"]) == q.get("orderId") for t in o["_trades"]]

    def all_orders(self, q: dict[str, str]) -> tuple[int, object]:
        """``/api/v3/allOrders``: every order of a symbol (open, filled, cancelled) since startTime."""
        return 200, [self._public(o) for o in self.orders if o["symbol"] == q.get("symbol")
                     and o["time"] >= int(q.get("startTime", 0))]  # fmt: skip

    def depth(self, q: dict[str, str]) -> tuple[int, object]:
        book = self.book.get(q.get("symbol", ""))
        if book is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        limit = int(q.get("limit", 100))
        return 200, {**recorded("binance_depth.json"), "bids": book["bids"][:limit], "asks": book["asks"][:limit]}

    def ticker(self, q: dict[str, str]) -> tuple[int, object]:
        """``/api/v3/ticker/24hr``: the venue's current price is where a market order fills (``prices``)."""
        price = self.prices.get(q.get("symbol", ""))
        if price is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        return 200, {"symbol": q["symbol"], "lastPrice": price, "bidPrice": price, "askPrice": price,
                     "openPrice": price, "highPrice": price, "lowPrice": price, "volume": "0", "quoteVolume": "0",
                     "openTime": self.clock_ms - 86_400_000, "closeTime": self.clock_ms, "count": 0}  # fmt: skip

    def account(self, q: dict[str, str]) -> tuple[int, object]:
        balances = [{"asset": a, "free": v, "locked": "0.00000000"} for a, v in self.balances.items()]
        return 200, {**recorded("binance_account.json"), "balances": balances}

    def routes(self) -> dict[str, Handler]:
        return {**binance_routes(), "POST /api/v3/order": self.create, "GET /api/v3/order": self.query,
                "DELETE /api/v3/order": self.cancel, "/api/v3/openOrders": self.open_orders,
                "/api/v3/myTrades": self.my_trades, "/api/v3/account": self.account,
                "/api/v3/allOrders": self.all_orders,
                "/api/v3/depth": self.depth, "/api/v3/ticker/24hr": self.ticker}  # fmt: skip

    def creates(self, replay: VenueReplay) -> int:
        """How many create requests reached the transport (including those that timed out)."""
        return sum(1 for method, path, _ in replay.requests if (method, path) == ("POST", "/api/v3/order"))

    def count(self, client_order_id: str) -> int:
        return sum(1 for o in self.orders if o["clientOrderId"] == client_order_id)


class DurableBinanceSpotVenue(BinanceSpotVenue):
    """``BinanceSpotVenue`` whose book lives in a JSON file, read before and written after every request, so it
    outlives a process killed with SIGKILL exactly like a remote venue (crash-recovery tests)."""

    def __init__(self, path: Path, prices: dict[str, str]) -> None:
        super().__init__(prices)
        self.path = Path(path)

    def load(self) -> None:
        if self.path.exists():
            state = json.loads(self.path.read_text())
            self.orders, self.next_id = state["orders"], state["next_id"]

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"orders": self.orders, "next_id": self.next_id}))
        os.replace(tmp, self.path)

    def routes(self) -> dict[str, Handler]:
        def durable(handler: Handler) -> Handler:
            def run(q: dict[str, str]) -> tuple[int, object]:
                self.load()
                try:
                    return handler(q)
                finally:
                    self._save()

            return run

        return {route: durable(handler) for route, handler in super().routes().items()}
