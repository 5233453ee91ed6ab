"""Shadow mode: the paper broker runs beside a live broker on the same order requests, and the drift between what the
paper venue would have done and what the live venue did is recorded per order (``audit.shadow_drift``) and summarised
(``alphaloom drift``): fill price, slippage against the arrival price, fill rate.

``ShadowBroker`` is a ``Broker``: the live broker's answer is the answer (it is what execution records); the paper
broker sees the same request afterwards and its answer is only kept for comparison, so a paper failure never touches
the live path. ``record_drift`` writes what was observed once execution has recorded the orders.
``order_drift`` and ``summarise`` are pure.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from alphaloom.domain import AccountId, ClientOrderId, Fill, Side, Symbol
from alphaloom.errors import AlphaLoomError, VenueError
from execution.brokers.base import Broker, BrokerReport, OrderRequest, is_quoting

BPS = Decimal(10000)


@dataclass(frozen=True, slots=True)
class Observation:
    request: OrderRequest
    live: BrokerReport
    paper: BrokerReport | None
    paper_error: str = ""


@dataclass(frozen=True, slots=True)
class OrderDrift:
    """Prices are volume-weighted over the fills; slippage in bps against the arrival price, positive = worse for us
    (a buy paid more, a sell got less); ``price_drift_bps`` = live vs paper, positive = live was worse."""

    client_order_id: ClientOrderId
    account: AccountId
    symbol: Symbol
    side: Side
    quantity: Decimal
    arrival_price: Decimal
    live_price: Decimal | None
    paper_price: Decimal | None
    live_filled: Decimal
    paper_filled: Decimal
    live_slippage_bps: Decimal | None
    paper_slippage_bps: Decimal | None
    price_drift_bps: Decimal | None


def vwap(fills: Iterable[Fill]) -> tuple[Decimal, Decimal | None]:
    """(filled quantity, volume-weighted price or None when nothing filled)."""
    fills = list(fills)
    quantity = sum((f.quantity for f in fills), Decimal(0))
    if quantity == 0:
        return quantity, None
    return quantity, sum((f.quantity * f.price for f in fills), Decimal(0)) / quantity


def _bps_worse(price: Decimal | None, reference: Decimal | None, side: Side) -> Decimal | None:
    if price is None or reference is None or reference == 0:
        return None
    direction = 1 if side is Side.BUY else -1
    return direction * (price - reference) / reference * BPS


def order_drift(observation: Observation, arrival_price: Decimal | None = None) -> OrderDrift:
    request = observation.request
    arrival = arrival_price if arrival_price is not None else request.reference_price
    live_filled, live_price = vwap(observation.live.fills)
    paper_filled, paper_price = vwap(observation.paper.fills if observation.paper else ())
    return OrderDrift(
        request.client_order_id, request.account, request.symbol, request.side, request.quantity, arrival,
        live_price, paper_price, live_filled, paper_filled,
        _bps_worse(live_price, arrival, request.side), _bps_worse(paper_price, arrival, request.side),
        _bps_worse(live_price, paper_price, request.side),
    )  # fmt: skip


class ShadowBroker:
    """``live`` sends; ``paper`` (a paper broker on its own venue) shadows the same requests. ``live`` (the attribute)
    follows the live broker's, so execution's live arming applies to a shadow account as to a live one."""

    def __init__(self, live: Broker, paper: Broker) -> None:
        self.live_broker, self.paper = live, paper
        self.name = live.name
        self.live = live.live
        self.observations: list[Observation] = []
        self._lock = threading.Lock()

    def submit(self, request: OrderRequest) -> BrokerReport:
        report = self.live_broker.submit(request)  # live errors propagate: execution handles them as usual
        try:
            paper, error = self.paper.submit(request), ""
        except AlphaLoomError as exc:  # the shadow must never disturb the live path
            paper, error = None, f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.observations.append(Observation(request, report, paper, error))
        return report

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        return self.live_broker.lookup(client_order_id)

    def current_price(self, symbol: Symbol, side: Side) -> Decimal:
        """The live venue's price (``QuotingBroker``): the shadow is guarded by the market the live order meets."""
        if not is_quoting(self.live_broker):
            raise VenueError(f"{self.name} cannot quote {symbol}: no current price for the price band")
        return self.live_broker.current_price(symbol, side)

    def take_observations(self, client_order_ids: Collection[ClientOrderId] | None = None) -> list[Observation]:
        """Remove and return the observations (only those of ``client_order_ids`` when given: concurrent callers
        sharing the broker each take their own)."""
        with self._lock:
            if client_order_ids is None:
                taken, self.observations = self.observations, []
            else:
                taken = [o for o in self.observations if o.request.client_order_id in client_order_ids]
                self.observations = [o for o in self.observations if o.request.client_order_id not in client_order_ids]
        return taken


def record_drift(conn: Connection, observations: Iterable[Observation]) -> list[OrderDrift]:
    """One ``audit.shadow_drift`` row per observed order that execution recorded (arrival price from
    ``audit.orders``); an order recorded twice keeps its first row."""
    drifts = []
    for observation in observations:
        coid = observation.request.client_order_id
        arrival = conn.execute(
            text("select coalesce(arrival_price, reference_price) from audit.orders where client_order_id = :c"),
            {"c": coid},
        ).scalar()
        if arrival is None:
            continue  # execution did not record it (its transaction rolled back): nothing to compare against
        d = order_drift(observation, Decimal(arrival))
        conn.execute(
            text(
                """insert into audit.shadow_drift (client_order_id, account, symbol, side, quantity, arrival_price,
                       live_price, paper_price, live_filled, paper_filled, live_slippage_bps, paper_slippage_bps,
                       price_drift_bps)
                   values (:c, :a, :s, :side, :q, :arr, :lp, :pp, :lf, :pf, :ls, :ps, :drift)
                   on conflict (client_order_id) do nothing"""
            ),
            {"c": coid, "a": d.account, "s": d.symbol, "side": d.side.value, "q": d.quantity, "arr": d.arrival_price,
             "lp": d.live_price, "pp": d.paper_price, "lf": d.live_filled, "pf": d.paper_filled,
             "ls": d.live_slippage_bps, "ps": d.paper_slippage_bps, "drift": d.price_drift_bps},
        )  # fmt: skip
        drifts.append(d)
    return drifts


def _mean(values: Iterable[Decimal | None]) -> Decimal | None:
    present = [v for v in values if v is not None]
    return sum(present, Decimal(0)) / len(present) if present else None


def summarise(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (account, symbol): orders, mean price drift and slippages (bps), live and paper fill rates (filled /
    ordered quantity)."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["account"], row["symbol"]), []).append(row)
    summary = []
    for (account, symbol), items in sorted(groups.items()):
        ordered = sum((Decimal(r["quantity"]) for r in items), Decimal(0))
        summary.append({
            "account": account, "symbol": symbol, "orders": len(items),
            "price_drift_bps": _mean(r["price_drift_bps"] for r in items),
            "live_slippage_bps": _mean(r["live_slippage_bps"] for r in items),
            "paper_slippage_bps": _mean(r["paper_slippage_bps"] for r in items),
            "live_fill_rate": sum((Decimal(r["live_filled"]) for r in items), Decimal(0)) / ordered,
            "paper_fill_rate": sum((Decimal(r["paper_filled"]) for r in items), Decimal(0)) / ordered,
        })  # fmt: skip
    return summary


def drift_rows(conn: Connection, account: AccountId | None = None) -> list[dict[str, Any]]:
    rows = conn.execute(
        text("select * from audit.shadow_drift where cast(:a as text) is null or account = :a order by created_at"),
        {"a": account},
    ).mappings()
    return [dict(r) for r in rows]
