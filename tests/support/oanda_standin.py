"""A local stand-in for OANDA's REST v20 API on 127.0.0.1, answering the real client (``alphaloom.venues.
oanda_client``) over HTTP with recorded-looking v20 JSON: one practice account with its summary, instruments, pricing,
orders (by client id), pending orders, open positions, transactions and mid candles.

It behaves as OANDA does where our code depends on it: a client extension id in use is refused
(``CLIENT_ORDER_ID_ALREADY_EXISTS``), an order is found by ``@client id`` in any state, a market order fills at the
ask (buy) or bid (sell) at once, a limit order waits (pending). ``behaviour[client id]`` scripts what happens to one
create instead (``DEFAULT`` for all others):

- ``fill`` (market default) / ``pending`` (limit default);
- ``partial``: half the units fill, the rest is cancelled (``INSUFFICIENT_LIQUIDITY``);
- ``cancel:REASON``: created and cancelled at once (``MARKET_HALTED``, ``INSUFFICIENT_MARGIN``), HTTP 201;
- ``reject:REASON``: refused with an ``orderRejectTransaction``, HTTP 400;
- ``drop_after_accept`` / ``drop_before_accept``: the order is (is not) booked, then the connection is closed with no
  answer (a lost answer: the client sees no HTTP status); dropped before, the next create of that id goes through;
- ``hang_after_accept``: booked, then the answer is held until ``release`` is set (the client's timeout fires);
- ``unavailable``: HTTP 503, nothing booked.

Pricing (``accounts/{id}/pricing``) answers the documented ``ClientPrice`` shape: one bucket a side with its
``liquidity``, ``closeoutBid`` / ``closeoutAsk``, ``tradeable`` and the price's ``time`` (the stand-in's clock, or
``price_times[instrument]``: an old price); an instrument in ``untradeable`` is quoted ``tradeable: false``.

Every request is recorded (``requests``: method, path, and the JSON body, else the query); ``creates(client id)`` counts the create attempts.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = "standin-token-0001"
ACCOUNT_ID = "101-004-1234567-001"
T0 = datetime(2024, 5, 1, 9, tzinfo=UTC)

INSTRUMENTS = [
    {"name": "EUR_USD", "type": "CURRENCY", "displayName": "EUR/USD", "pipLocation": -4, "displayPrecision": 5,
     "tradeUnitsPrecision": 0, "minimumTradeSize": "1", "maximumOrderUnits": "100000000", "marginRate": "0.0333"},
    {"name": "USD_JPY", "type": "CURRENCY", "displayName": "USD/JPY", "pipLocation": -2, "displayPrecision": 3,
     "tradeUnitsPrecision": 0, "minimumTradeSize": "1", "maximumOrderUnits": "100000000", "marginRate": "0.04"},
]  # fmt: skip


def v20_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


@dataclass
class OandaStandIn:
    """The stand-in's state (see the module docstring); ``start()`` serves it, ``stop()`` ends it."""

    url: str = ""
    currency: str = "USD"
    balance: Decimal = Decimal("100000.0000")
    prices: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {"EUR_USD": ("1.08410", "1.08420"), "USD_JPY": ("155.120", "155.135")}
    )
    behaviour: dict[str, str] = field(default_factory=dict)
    price_times: dict[str, datetime] = field(default_factory=dict)
    untradeable: set[str] = field(default_factory=set)
    liquidity: int = 10_000_000
    financing: str = "0.0000"  # financing on each fill (negative: paid)
    commission: str = "0.0000"
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_client: dict[str, str] = field(default_factory=dict)
    transactions: list[dict[str, Any]] = field(default_factory=list)
    positions: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)  # instrument -> (net units, avg)
    candles: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    clock: datetime = T0
    _next: int = 6350
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _server: ThreadingHTTPServer | None = None

    # -- the book ------------------------------------------------------------------------------------------------
    def _txn(self, kind: str, **fields: Any) -> dict[str, Any]:
        self._next += 1
        txn = {"id": str(self._next), "time": v20_time(self.clock), "userID": 1234567, "accountID": ACCOUNT_ID,
               "batchID": str(self._next), "requestID": f"2451{self._next:010d}", "type": kind, **fields}  # fmt: skip
        self.transactions.append(txn)
        return txn

    def count(self, client_id: str) -> int:
        """Orders OANDA holds under ``client_id``."""
        return sum(1 for o in self.orders.values() if (o.get("clientExtensions") or {}).get("id") == client_id)

    def creates(self, client_id: str) -> int:
        """Create requests that carried ``client_id``."""
        return sum(1 for m, p, b in self.requests
                   if m == "POST" and p.endswith("/orders") and b["order"]["clientExtensions"]["id"] == client_id)  # fmt: skip

    def _fill(self, order: dict[str, Any], units: Decimal) -> dict[str, Any]:
        bid, ask = self.prices[order["instrument"]]
        price = Decimal(ask if units > 0 else bid)
        held, avg = self.positions.get(order["instrument"], (Decimal(0), Decimal(0)))
        total = held + units
        new_avg = ((held * avg + units * price) / total).quantize(Decimal("0.000001")) if total else Decimal(0)
        self.positions[order["instrument"]] = (total, new_avg)
        self.balance += Decimal(self.financing) - Decimal(self.commission)
        fill = self._txn("ORDER_FILL", orderID=order["id"], clientOrderID=order["clientExtensions"]["id"],
                         instrument=order["instrument"], units=str(units), price=str(price),
                         fullVWAP=str(price), reason="MARKET_ORDER" if order["type"] == "MARKET" else "LIMIT_ORDER",
                         pl="0.0000", financing=self.financing, commission=self.commission,
                         guaranteedExecutionFee="0.0000", accountBalance=str(self.balance),
                         halfSpreadCost="0.0500",
                         tradeOpened={"tradeID": str(self._next + 1), "units": str(units), "price": str(price)})  # fmt: skip
        return fill

    def charge_financing(self, amount: str) -> dict[str, Any]:
        """OANDA's daily rollover: financing on the open positions (negative: paid), booked to the balance."""
        self.balance += Decimal(amount)
        return self._txn("DAILY_FINANCING", financing=amount, accountBalance=str(self.balance),
                         accountFinancingMode="DAILY", positionFinancings=[
                             {"instrument": i, "financing": amount} for i in self.positions][:1])  # fmt: skip

    def _cancel(self, order: dict[str, Any], reason: str) -> dict[str, Any]:
        cancel = self._txn("ORDER_CANCEL", orderID=order["id"], clientOrderID=order["clientExtensions"]["id"],
                           reason=reason)  # fmt: skip
        order.update(state="CANCELLED", cancellingTransactionID=cancel["id"], cancelledTime=cancel["time"])
        return cancel

    def create(self, spec: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        """Book one create; (status, answer), answer None for a connection closed without one."""
        client_id = spec["clientExtensions"]["id"]
        what = self.behaviour.get(client_id) or ("fill" if spec["type"] == "MARKET" else "pending")
        kind = f"{spec['type']}_ORDER"
        if what == "drop_before_accept":  # once: the resend after a confirmed absence goes through
            del self.behaviour[client_id]
            return 0, None
        if what == "unavailable":
            return 503, {"errorMessage": "Service unavailable, please try again later."}
        if what.startswith("reject:") or client_id in self.by_client:
            reason = "CLIENT_ORDER_ID_ALREADY_EXISTS" if client_id in self.by_client else what.partition(":")[2]
            reject = self._txn(f"{kind}_REJECT", instrument=spec["instrument"], units=spec["units"],
                               rejectReason=reason, clientExtensions=spec["clientExtensions"])  # fmt: skip
            return 400, {"orderRejectTransaction": reject, "relatedTransactionIDs": [reject["id"]],
                         "lastTransactionID": reject["id"], "errorCode": reason,
                         "errorMessage": f"The order request was rejected: {reason}"}  # fmt: skip
        create = self._txn(kind, instrument=spec["instrument"], units=spec["units"],
                           timeInForce=spec["timeInForce"], positionFill=spec["positionFill"], reason="CLIENT_ORDER",
                           clientExtensions=spec["clientExtensions"], **({"price": spec["price"]} if "price" in spec
                                                                         else {}))  # fmt: skip
        order = {"id": create["id"], "createTime": create["time"], "type": spec["type"], "instrument": spec["instrument"],
                 "units": spec["units"], "timeInForce": spec["timeInForce"], "positionFill": spec["positionFill"],
                 "state": "PENDING", "clientExtensions": spec["clientExtensions"],
                 **({"price": spec["price"]} if "price" in spec else {})}  # fmt: skip
        self.orders[order["id"]] = order
        self.by_client[client_id] = order["id"]
        answer: dict[str, Any] = {"orderCreateTransaction": create}
        units = Decimal(spec["units"])
        if what in ("fill", "drop_after_accept", "hang_after_accept"):
            answer["orderFillTransaction"] = self._fill(order, units)
            order.update(state="FILLED", fillingTransactionID=answer["orderFillTransaction"]["id"],
                         filledTime=answer["orderFillTransaction"]["time"])  # fmt: skip
        elif what == "partial":
            answer["orderFillTransaction"] = self._fill(order, units / 2)
            answer["orderCancelTransaction"] = self._cancel(order, "INSUFFICIENT_LIQUIDITY")
        elif what.startswith("cancel:"):
            answer["orderCancelTransaction"] = self._cancel(order, what.partition(":")[2])
        related = [t["id"] for t in answer.values()]
        answer.update(relatedTransactionIDs=related, lastTransactionID=related[-1])
        if what == "drop_after_accept":
            return 0, None
        if what == "hang_after_accept":
            return -1, answer  # the handler holds it back, outside the lock, until ``release``
        return 201, answer

    # -- routes --------------------------------------------------------------------------------------------------
    def answer(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, dict[str, Any] | None]:
        account = f"/v3/accounts/{ACCOUNT_ID}"
        last = {"lastTransactionID": self.transactions[-1]["id"] if self.transactions else "6350"}
        if path.startswith("/v3/instruments/") and path.endswith("/candles"):
            return self._candles(path.split("/")[3], query)
        if not path.startswith(account):
            return 403, {"errorMessage": "The provided request was forbidden."}
        rest = path[len(account) :]
        if rest == "/summary":
            return 200, {"account": {"id": ACCOUNT_ID, "alias": "Primary", "currency": self.currency,
                                     "balance": str(self.balance), "NAV": str(self.balance),
                                     "marginRate": "0.0333", "openPositionCount": len(self.positions),
                                     "pendingOrderCount": len(self._pending())}, **last}  # fmt: skip
        if rest == "/instruments":
            names = set(query.get("instruments", "").split(",")) - {""}
            return 200, {"instruments": [i for i in INSTRUMENTS if not names or i["name"] in names], **last}
        if rest == "/pricing":
            names = query.get("instruments", "").split(",")
            return 200, {"prices": [self._price(n) for n in names if n in self.prices], "time": v20_time(self.clock)}
        if rest == "/openPositions":
            return 200, {"positions": [self._position(i, u, a) for i, (u, a) in self.positions.items() if u], **last}
        if rest == "/orders" and method == "POST":
            return self.create(body["order"])
        if rest == "/pendingOrders":
            return 200, {"orders": self._pending(), **last}
        if rest.startswith("/orders/@"):
            client_id, _, action = unquote(rest[len("/orders/@") :]).partition("/")
            order = self.orders.get(self.by_client.get(client_id, ""))
            if action == "cancel" and method == "PUT":
                if order is None or order["state"] != "PENDING":
                    reject = self._txn("ORDER_CANCEL_REJECT", rejectReason="ORDER_DOESNT_EXIST",
                                       clientOrderID=client_id)  # fmt: skip
                    return 404, {"orderCancelRejectTransaction": reject, "errorCode": "ORDER_DOESNT_EXIST",
                                 "errorMessage": "The Order specified does not exist"}  # fmt: skip
                cancel = self._cancel(order, "CLIENT_REQUEST")
                return 200, {"orderCancelTransaction": cancel, "relatedTransactionIDs": [cancel["id"]], **last}
            if order is None:
                return 404, {"errorCode": "ORDER_DOESNT_EXIST", "errorMessage": "The Order specified does not exist"}
            return 200, {"order": order, **last}
        if rest == "/transactions/idrange":
            low, high = int(query["from"]), int(query["to"])
            return 200, {"transactions": [t for t in self.transactions if low <= int(t["id"]) <= high], **last}
        if rest == "/transactions/sinceid":
            since = int(query["id"])
            return 200, {"transactions": [t for t in self.transactions if int(t["id"]) > since], **last}
        return 404, {"errorMessage": f"no route {method} {path}"}

    def _price(self, instrument: str) -> dict[str, Any]:
        bid, ask = self.prices[instrument]
        tradeable = instrument not in self.untradeable
        return {"type": "PRICE", "instrument": instrument, "time": v20_time(self.price_times.get(instrument, self.clock)),
                "status": "tradeable" if tradeable else "non-tradeable", "tradeable": tradeable,
                "bids": [{"price": bid, "liquidity": self.liquidity}], "asks": [{"price": ask, "liquidity": self.liquidity}],
                "closeoutBid": bid, "closeoutAsk": ask}  # fmt: skip

    def _pending(self) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["state"] == "PENDING"]

    @staticmethod
    def _position(instrument: str, units: Decimal, avg: Decimal) -> dict[str, Any]:
        held = {"units": str(units), "averagePrice": str(avg), "pl": "0.0000", "unrealizedPL": "0.0000"}
        empty = {"units": "0", "pl": "0.0000", "unrealizedPL": "0.0000"}
        return {"instrument": instrument, "long": held if units > 0 else empty, "short": held if units < 0 else empty,
                "pl": "0.0000", "unrealizedPL": "0.0000", "financing": "0.0000"}  # fmt: skip

    def _candles(self, instrument: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        granularity = query.get("granularity", "S5")
        if instrument not in self.prices:
            return 400, {"errorMessage": f"Invalid value specified for 'instrument': {instrument}"}
        series = self.candles.get((instrument, granularity), [])
        start = query.get("from")
        chosen = [c for c in series if start is None or c["time"] >= start][: int(query.get("count", "500"))]
        return 200, {"instrument": instrument, "granularity": granularity, "candles": chosen}

    # -- serving -------------------------------------------------------------------------------------------------
    def start(self) -> OandaStandIn:
        state = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                size = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(size)) if size else None
                with state._lock:
                    state.requests.append((method, parts.path, body if body is not None else query))
                    if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                        status, answer = 401, {"errorMessage": "Insufficient authorization to perform request."}
                    else:
                        status, answer = state.answer(method, parts.path, query, body)
                if status == -1:
                    state.release.wait(30)
                    status = 201
                if answer is None:  # the connection ends with no answer
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PUT(self) -> None:
                self._serve("PUT")

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
