"""A local stand-in for Alpaca's REST APIs on 127.0.0.1, answering in the shape of Alpaca's recorded responses, so the
tests drive the real alpaca-py SDK (``TradingClient``, ``StockHistoricalDataClient``, ``NewsClient``) pointed at it.

Trading (``/v2``): clock, calendar, assets, account, positions, orders (create, by client order id, list, cancel) and
``FILL`` account activities. Data: ``/v2/stocks/bars`` (paged with ``next_page_token``), ``/v1beta1/news`` and
``/v2/stocks/quotes/latest`` (the documented ``{"quotes": {symbol: {t, ax, ap, as, bx, bp, bs, c, z}}}``, sizes in
round lots: by default 3 cents above / 2 below the price, quoted now; ``quotes[symbol]`` overrides fields, e.g. an
old ``t`` or a zero ``ap``; a symbol in ``unquoted`` is left out of the answer, as Alpaca leaves out a symbol it has
no quote for).

A create (``POST /v2/orders``) is answered by the next scripted ``Outcome`` (else ``fill``):

- ``fill`` (the whole order at the asset's price), ``accept`` (new, nothing filled), ``partial`` (``fraction`` filled,
  still working), ``reject`` (``status`` and Alpaca's JSON error, e.g. 403 insufficient buying power), ``drop`` (the
  order is booked and filled, then the connection is closed without an answer: a dropped answer after accept), ``slow``
  (booked and filled, the answer held until ``release`` is set: the client's timeout fires first), ``busy`` (a 503
  and nothing booked).

A client order id already used is answered 422 "client_order_id must be unique", as Alpaca does. Every request is
recorded (method, path, query, body); the keys are checked on every request (401 otherwise)."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

KEY, SECRET = "PKTESTKEY0000000000", "test-secret-0000000000000000000000000000"


@dataclass(frozen=True)
class Outcome:
    kind: str
    fraction: Decimal = Decimal("0.5")
    status: int = 403
    code: int = 40310000
    message: str = "insufficient buying power"


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _within(stamp: str, start: str | None, end: str | None) -> bool:
    """``start <= stamp <= end`` as times (either bound may be absent), whatever ISO spelling each uses."""
    at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    low = datetime.fromisoformat(start.replace("Z", "+00:00")) if start else None
    high = datetime.fromisoformat(end.replace("Z", "+00:00")) if end else None
    if low is not None and low.tzinfo is None:
        low = low.replace(tzinfo=UTC)
    if high is not None and high.tzinfo is None:
        high = high.replace(tzinfo=UTC)
    return (low is None or low <= at) and (high is None or at <= high)


def hourly_bars(first: datetime, count: int, *, close: float = 187.0) -> list[dict[str, Any]]:
    """``count`` hourly bars from ``first`` as ``/v2/stocks/bars`` lists them (closes rising by 0.25)."""
    return [{"t": iso(first + timedelta(hours=n)).replace(".000000Z", "Z"), "o": close + n / 4 - 0.1,
             "h": close + n / 4 + 0.3, "l": close + n / 4 - 0.4, "c": close + n / 4, "v": 120_000 + n, "n": 800 + n,
             "vw": close + n / 4} for n in range(count)]  # fmt: skip


def story(story_id: int, created: datetime, symbols: list[str], headline: str = "") -> dict[str, Any]:
    """One story as ``/v1beta1/news`` lists it."""
    return {"id": story_id, "headline": headline or f"Story {story_id} about {' and '.join(symbols)}",
            "author": "Benzinga Newsdesk", "created_at": iso(created).replace(".000000Z", "Z"),
            "updated_at": iso(created).replace(".000000Z", "Z"), "summary": f"Summary of story {story_id}.",
            "content": "", "images": [], "symbols": symbols, "source": "benzinga",
            "url": f"https://www.benzinga.com/news/26/01/{story_id}/story-{story_id}"}  # fmt: skip


def asset(symbol: str, *, fractionable: bool = True, tradable: bool = True) -> dict[str, Any]:
    return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, symbol)), "class": "us_equity", "exchange": "NASDAQ",
            "symbol": symbol, "name": f"{symbol} Inc. Common Stock", "status": "active", "tradable": tradable,
            "marginable": True, "maintenance_margin_requirement": 30, "shortable": True, "easy_to_borrow": True,
            "fractionable": fractionable, "attributes": []}  # fmt: skip


def weekday_calendar(start: date, days: int) -> list[dict[str, str]]:
    """Regular sessions 09:30-16:00 New York on weekdays (no holidays), as ``/v2/calendar`` lists them."""
    out = []
    for n in range(days):
        day = start + timedelta(days=n)
        if day.weekday() < 5:
            out.append({"date": day.isoformat(), "open": "09:30", "close": "16:00", "session_open": "0400",
                        "session_close": "2000", "settlement_date": (day + timedelta(days=1)).isoformat()})  # fmt: skip
    return out


@dataclass
class AlpacaStandIn:
    """The venue's state; ``url`` is the base URL to give every client as ``url_override``."""

    url: str = ""
    prices: dict[str, Decimal] = field(default_factory=lambda: {"AAPL": Decimal("187.25"), "BRK.A": Decimal("612000")})
    assets: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        "AAPL": asset("AAPL"), "BRK.A": asset("BRK.A", fractionable=False)})  # fmt: skip
    calendar: list[dict[str, str]] = field(default_factory=lambda: weekday_calendar(date(2025, 12, 20), 60))
    cash: Decimal = Decimal("100000")
    script: list[Outcome] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # by venue id
    activities: list[dict[str, Any]] = field(default_factory=list)
    positions: dict[str, Decimal] = field(default_factory=dict)
    bars: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    news: list[dict[str, Any]] = field(default_factory=list)
    quotes: dict[str, dict[str, Any]] = field(default_factory=dict)  # per symbol: fields overriding the default quote
    unquoted: set[str] = field(default_factory=set)
    page_size: int = 2  # bars and news per page, small so that paging is exercised
    requests: list[tuple[str, str, dict[str, list[str]], Any]] = field(default_factory=list)
    now: datetime = datetime(2026, 1, 6, 15, 0, tzinfo=UTC)
    release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # -- the venue ------------------------------------------------------------------------------------------------
    def by_client_id(self, coid: str) -> dict[str, Any] | None:
        return next((o for o in self.orders.values() if o["client_order_id"] == coid), None)

    def creates(self) -> list[dict[str, Any]]:
        return [body for method, path, _, body in self.requests if (method, path) == ("POST", "/v2/orders")]

    def fill(self, order: dict[str, Any], quantity: Decimal, price: Decimal) -> None:
        """Book a fill of ``quantity`` at ``price``: the order's cumulative fields, an activity, the position."""
        filled = Decimal(order["filled_qty"]) + quantity
        total = Decimal(order["qty"])
        average = (Decimal(order["filled_avg_price"] or 0) * Decimal(order["filled_qty"]) + price * quantity) / filled
        self.now += timedelta(seconds=1)
        order.update(filled_qty=str(filled), filled_avg_price=str(average.quantize(Decimal("0.0001"))),
                     status="filled" if filled == total else "partially_filled", updated_at=iso(self.now))  # fmt: skip
        if filled == total:
            order["filled_at"] = iso(self.now)
        self.activities.append({
            "id": f"{self.now.strftime('%Y%m%d%H%M%S%f')}::{uuid.uuid4()}", "activity_type": "FILL",
            "transaction_time": iso(self.now), "type": "fill" if filled == total else "partial_fill",
            "price": str(price), "qty": str(quantity), "side": order["side"], "symbol": order["symbol"],
            "leftover_qty": str(total - filled), "cum_qty": str(filled), "order_id": order["id"],
            "order_status": order["status"]})  # fmt: skip
        signed = quantity if order["side"] == "buy" else -quantity
        self.positions[order["symbol"]] = self.positions.get(order["symbol"], Decimal(0)) + signed
        self.cash -= signed * price

    def charge_fee(self, symbol: str, amount: str, description: str) -> dict[str, Any]:
        """A regulatory fee (TAF, REG) Alpaca books as a ``FEE`` activity after a sale, taken from the cash."""
        self.now += timedelta(seconds=1)
        self.cash -= Decimal(amount)
        activity = {"id": f"{self.now.strftime('%Y%m%d%H%M%S%f')}::{uuid.uuid4()}", "activity_type": "FEE",
                    "date": self.now.date().isoformat(), "net_amount": f"-{amount}", "description": description,
                    "symbol": symbol, "qty": None, "per_share_amount": None, "status": "executed"}  # fmt: skip
        self.activities.append(activity)
        return activity

    def create(self, body: dict[str, Any]) -> tuple[int, Any]:
        if self.by_client_id(body.get("client_order_id", "")) is not None:
            return 422, {"code": 40010001, "message": "client_order_id must be unique"}
        outcome = self.script.pop(0) if self.script else Outcome("fill")
        if outcome.kind == "reject":
            return outcome.status, {"code": outcome.code, "message": outcome.message}
        if outcome.kind == "busy":
            return 503, {"code": 50300000, "message": "service unavailable"}
        self.now += timedelta(seconds=1)
        venue_id = str(uuid.uuid4())
        order = {
            "id": venue_id, "client_order_id": body["client_order_id"], "created_at": iso(self.now),
            "updated_at": iso(self.now), "submitted_at": iso(self.now), "filled_at": None, "expired_at": None,
            "canceled_at": None, "failed_at": None, "replaced_at": None, "replaced_by": None, "replaces": None,
            "asset_id": self.assets[body["symbol"]]["id"], "symbol": body["symbol"], "asset_class": "us_equity",
            "notional": None, "qty": str(body["qty"]), "filled_qty": "0", "filled_avg_price": None,
            "order_class": "", "order_type": body["type"], "type": body["type"], "side": body["side"],
            "time_in_force": body["time_in_force"], "limit_price": body.get("limit_price"), "stop_price": None,
            "status": "accepted" if outcome.kind == "accept" else "new",
            "extended_hours": bool(body.get("extended_hours")), "legs": None, "trail_percent": None,
            "trail_price": None, "hwm": None, "position_intent": "buy_to_open" if body["side"] == "buy" else
            "sell_to_close"}  # fmt: skip
        self.orders[venue_id] = order
        price = self.prices[body["symbol"]]
        if outcome.kind in ("fill", "drop", "slow"):
            self.fill(order, Decimal(order["qty"]), price)
        elif outcome.kind == "partial":
            self.fill(order, (Decimal(order["qty"]) * outcome.fraction).quantize(Decimal("0.000000001")), price)
        if outcome.kind == "drop":
            return -1, None
        if outcome.kind == "slow":
            return -2, order
        return 200, order

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        q = {k: v[-1] for k, v in query.items()}
        if (method, path) == ("GET", "/v2/clock"):
            return 200, {"timestamp": iso(self.now), "is_open": True, "next_open": iso(self.now + timedelta(days=1)),
                         "next_close": iso(self.now + timedelta(hours=1))}  # fmt: skip
        if (method, path) == ("GET", "/v2/calendar"):
            start, end = q.get("start", "0000"), q.get("end", "9999")
            return 200, [d for d in self.calendar if start <= d["date"] <= end]
        if method == "GET" and path.startswith("/v2/assets/"):
            found = self.assets.get(path.removeprefix("/v2/assets/"))
            return (200, found) if found else (404, {"code": 40410000, "message": "asset not found"})
        if (method, path) == ("GET", "/v2/account"):
            return 200, {"id": "2d1f3a57-9f0e-4a5b-8f0a-1f5d7c9e0b11", "account_number": "PA3TEST00001",
                         "status": "ACTIVE", "currency": "USD", "cash": str(self.cash),
                         "buying_power": str(self.cash), "pattern_day_trader": False}  # fmt: skip
        if (method, path) == ("GET", "/v2/positions"):
            return 200, [{"asset_id": self.assets[s]["id"], "symbol": s, "exchange": "NASDAQ",
                          "asset_class": "us_equity", "avg_entry_price": str(self.prices[s]), "qty": str(q_),
                          "side": "long" if q_ > 0 else "short", "cost_basis": str(q_ * self.prices[s])}
                         for s, q_ in sorted(self.positions.items()) if q_]  # fmt: skip
        if (method, path) == ("POST", "/v2/orders"):
            return self.create(body)
        if (method, path) == ("GET", "/v2/orders:by_client_order_id"):
            found = self.by_client_id(q.get("client_order_id", ""))
            return (200, found) if found else (404, {"code": 40410000, "message": "order not found"})
        if (method, path) == ("GET", "/v2/orders"):
            working = ("new", "accepted", "partially_filled")
            symbols = set(q["symbols"].split(",")) if q.get("symbols") else None
            return 200, [o for o in self.orders.values() if o["status"] in working
                         and (symbols is None or o["symbol"] in symbols)]  # fmt: skip
        if method == "DELETE" and path.startswith("/v2/orders/"):
            order = self.orders.get(path.removeprefix("/v2/orders/"))
            if order is None:
                return 404, {"code": 40410000, "message": "order not found"}
            if order["status"] not in ("new", "accepted", "partially_filled"):
                return 422, {"code": 42210000, "message": f'order is already in "{order["status"]}" state'}
            order.update(status="canceled", canceled_at=iso(self.now))
            return 204, None
        if (method, path) == ("GET", "/v2/account/activities/FILL"):
            after = q.get("after", "")
            rows = [a for a in self.activities
                    if a["activity_type"] == "FILL" and a["transaction_time"] > after.replace("+00:00", "Z")[:19]]  # fmt: skip
            if q.get("page_token"):
                ids = [a["id"] for a in rows]
                rows = rows[ids.index(q["page_token"]) + 1 :] if q["page_token"] in ids else []
            return 200, rows[: int(q.get("page_size", 100))]
        if (method, path) == ("GET", "/v2/account/activities/FEE"):
            after = q.get("after", "")[:10]
            rows = [a for a in self.activities if a["activity_type"] == "FEE" and a["date"] > after]
            if q.get("page_token"):
                ids = [a["id"] for a in rows]
                rows = rows[ids.index(q["page_token"]) + 1 :] if q["page_token"] in ids else []
            return 200, rows[: int(q.get("page_size", 100))]
        if (method, path) == ("GET", "/v2/stocks/quotes/latest"):
            return 200, {"quotes": {s: self.latest_quote(s) for s in q["symbols"].split(",")
                                    if s in self.prices and s not in self.unquoted}}  # fmt: skip
        if (method, path) == ("GET", "/v2/stocks/bars"):
            return 200, self.bars_page(q)
        if (method, path) == ("GET", "/v1beta1/news"):
            return 200, self.news_page(q)
        return 404, {"code": 40410000, "message": f"no route {method} {path}"}

    def latest_quote(self, symbol: str) -> dict[str, Any]:
        """One symbol's latest quote as ``/v2/stocks/quotes/latest`` lists it (see the module docstring)."""
        price = self.prices[symbol]
        return {"t": iso(self.now), "ax": "V", "ap": float(price + Decimal("0.03")), "as": 3, "bx": "V",
                "bp": float(price - Decimal("0.02")), "bs": 2, "c": ["R"], "z": "C", **self.quotes.get(symbol, {})}  # fmt: skip

    def bars_page(self, q: dict[str, str]) -> dict[str, Any]:
        rows = [(s, b) for s in q["symbols"].split(",") for b in self.bars.get(s, [])
                if _within(b["t"], q.get("start"), q.get("end"))]  # fmt: skip
        offset = int(q.get("page_token") or 0)
        page = rows[offset : offset + self.page_size]
        out: dict[str, list[dict[str, Any]]] = {}
        for symbol, bar in page:
            out.setdefault(symbol, []).append(bar)
        more = offset + self.page_size < len(rows)
        return {"bars": out, "next_page_token": str(offset + self.page_size) if more else None}

    def news_page(self, q: dict[str, str]) -> dict[str, Any]:
        wanted = set(q.get("symbols", "").split(",")) - {""}
        rows = [n for n in self.news if (not wanted or wanted & set(n["symbols"]))
                and _within(n["created_at"], q.get("start"), q.get("end"))]  # fmt: skip
        offset = int(q.get("page_token") or 0)
        more = offset + self.page_size < len(rows)
        return {"news": rows[offset : offset + self.page_size],
                "next_page_token": str(offset + self.page_size) if more else None}  # fmt: skip

    # -- the server -----------------------------------------------------------------------------------------------
    def start(self) -> AlpacaStandIn:
        state = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                query = parse_qs(parts.query)
                with state._lock:
                    state.requests.append((method, parts.path, query, body))
                    if (self.headers.get("APCA-API-KEY-ID"), self.headers.get("APCA-API-SECRET-KEY")) != (KEY, SECRET):
                        status, payload = 401, {"code": 40110000, "message": "request is not authorized"}
                    else:
                        status, payload = state.answer(method, parts.path, query, body)
                if status == -1:  # booked, then no answer: the client sees the connection drop
                    self.close_connection = True
                    return
                if status == -2:  # booked, the answer held back (outside the lock) until the test releases it
                    state.release.wait()
                    status = 200
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def standin_settings(standin: AlpacaStandIn, **changes: object) -> Any:
    """``AlpacaSettings`` pointing every client at ``standin``."""
    from alphaloom.settings import AlpacaSettings

    changes.setdefault("timeout_seconds", 5.0)
    return AlpacaSettings(trading_url=standin.url, data_url=standin.url, **changes)  # type: ignore[arg-type]


def standin_credentials(account: str = "alpaca-acct") -> Any:
    from alphaloom.ops.secrets import Credentials

    return Credentials("alpaca", account, KEY, SECRET)


def broker_on(standin: AlpacaStandIn, *, switch: Any = None, **options: Any) -> Any:
    """A fresh ``AlpacaBroker`` (no memory of earlier ones) on the real ``TradingClient``, pointed at ``standin``, its
    clock the stand-in's."""
    from alphaloom.ops.kill_switch import KillSwitchState
    from alphaloom.venues.alpaca_client import stock_data_client, trading_client
    from execution.brokers.alpaca_broker import AlpacaBroker

    state = switch or KillSwitchState(False, "", "")
    client = trading_client(standin_credentials(), standin_settings(standin))
    options.setdefault("data", stock_data_client(standin_credentials(), standin_settings(standin)))
    options.setdefault("settle_seconds", 0)
    options.setdefault("clock", lambda: standin.now)
    return AlpacaBroker(client, kill_switch=lambda: state, **options)
