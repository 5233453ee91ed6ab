"""Start-of-session reconciliation of a live account with its venue. First every journaled submit attempt of the
account at this venue that has no order (``audit.submit_attempts``: the process died before the decision's
transaction committed) is looked up by client order id: what the venue has is booked from the journal, an attempt the
venue confirms it never saw is settled as absent. Then each of our open orders is looked up at
the venue by client order id (``fetch_order``) and what happened meanwhile is booked through the state machine; then
what the venue charged beside its fills (OANDA's financing, Alpaca's regulatory fees: ``ChargingBroker``) is
booked once per charge (``execution.accounts.charges``); then what we hold (``audit.balances`` cash, ``audit.positions`` in each symbol's base currency, our open orders) is compared
with what the venue says (``fetch_balance`` totals, ``fetch_open_orders``). Every difference is one ``audit.reconciliations`` row (kind ``balance``, ``position`` or
``order``, with ours, the venue's and the difference); a clean account gets one ``ok`` row. An order of ours that
the venue reports further along (filled meanwhile) is booked and reported with ``details.explained`` true; while the
kill switch is on, one the venue reports still open (listed late) is cancelled there first:
``unexplained`` leaves it out. Nothing is corrected
automatically: a difference needs a human (or a later fill we have not booked yet).

``compare_holdings`` is the pure part.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from alphaloom.domain import AccountId, ClientOrderId, OrderStatus, Symbol, require_utc
from alphaloom.errors import ConfigError
from alphaloom.ops.kill_switch import kill_switch_state
from execution.accounts.charges import book_venue_charges
from execution.accounts.registry import LIVE_MODES, lock_account
from execution.brokers.base import BalanceBroker, BrokerReport, CancellingBroker, ChargingBroker
from execution.orders.journal import orphaned_attempts, resolve_attempt
from execution.orders.state import is_terminal
from execution.orders.venue_reports import apply_venue_report, book_journaled_order

OPEN = ("new", "submitted", "partially_filled")


@dataclass(frozen=True, slots=True)
class Difference:
    kind: str  # balance | position | order
    item: str  # a currency, or a client order id
    ours: Decimal | None
    venue: Decimal | None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def difference(self) -> Decimal | None:
        if self.ours is None or self.venue is None:
            return None
        return self.venue - self.ours


def base_currency_of(symbol: str) -> str:
    """``BTC/USDT`` -> ``BTC``."""
    return symbol.split("/", 1)[0]


def compare_holdings(
    cash: Mapping[str, Decimal],
    positions: Mapping[str, Decimal],
    venue: Mapping[str, Decimal],
    *,
    tolerance: Decimal = Decimal(0),
) -> list[Difference]:
    """Differences per currency between our cash (``balance``) plus positions by base currency (``position``) and
    the venue's totals; a currency only one side has counts as 0 on the other. Sorted by kind, then currency."""
    ours: dict[str, tuple[str, Decimal]] = {ccy: ("balance", amount) for ccy, amount in cash.items()}
    for symbol, quantity in positions.items():
        ccy = base_currency_of(symbol)
        kind, held = ours.get(ccy, ("position", Decimal(0)))
        ours[ccy] = (kind, held + quantity)
    differences = []
    for ccy in sorted(set(ours) | set(venue)):
        kind, held = ours.get(ccy, ("position", Decimal(0)))
        at_venue = venue.get(ccy, Decimal(0))
        if abs(at_venue - held) > tolerance:
            differences.append(Difference(kind, ccy, held, at_venue))
    return sorted(differences, key=lambda d: (d.kind, d.item))


def unexplained(differences: list[Difference]) -> list[Difference]:
    """The differences a human must look at: all but our orders brought up to date from the venue's report."""
    return [d for d in differences if not d.details.get("explained")]


def _ours(conn: Connection, account: AccountId) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    cash_rows: Sequence[tuple[str, Decimal]] = conn.execute(
        text("select currency, amount from audit.balances where account = :a"), {"a": account}).all()  # fmt: skip
    position_rows: Sequence[tuple[str, Decimal]] = conn.execute(
        text("select symbol, quantity from audit.positions where account = :a and quantity <> 0"), {"a": account},
    ).all()  # fmt: skip
    cash = {c: Decimal(a) for c, a in cash_rows}
    positions = {s: Decimal(q) for s, q in position_rows}
    return cash, positions


def reconcile_account(
    conn: Connection,
    broker: BalanceBroker,
    account: AccountId,
    *,
    run_id: str,
    tolerance: Decimal = Decimal(0),
    event_time: datetime | None = None,
) -> list[Difference]:
    """Compare ``account`` (mode live or shadow) with ``broker`` (which must offer ``balances()``), record every
    difference (or one ``ok`` row) in ``audit.reconciliations`` and return the differences."""
    event_time = require_utc(event_time, "event_time") if event_time is not None else datetime.now(UTC)
    mode = conn.execute(text("select mode from audit.accounts where id = :a"), {"a": account}).scalar()
    if mode is None:
        raise ConfigError(f"account {account!r} does not exist")
    if mode not in LIVE_MODES:
        raise ConfigError(f"account {account!r} is a {mode} account; only live and shadow accounts have a venue to "
                          "reconcile with")  # fmt: skip
    if not isinstance(broker, BalanceBroker):
        raise ConfigError(f"broker {broker.name!r} cannot report balances")
    # First every journaled attempt that has no order (a process died before its decision committed), then our open
    # orders, each looked up at the venue by client id: what the venue has, or what filled or ended meanwhile, is
    # booked (events, fills, position, cash) before the holdings are compared.
    differences: list[Difference] = _recover_orphans(conn, broker, account, run_id=run_id, event_time=event_time)
    ours_open: Sequence[tuple[ClientOrderId, str, str]] = conn.execute(
        text("select client_order_id, symbol, status from audit.orders where account = :a and status = any(:o) "
             "order by created_at"), {"a": account, "o": list(OPEN)}).all()  # fmt: skip
    still_open: dict[ClientOrderId, str] = {}
    switch = kill_switch_state(conn)
    for coid, symbol, status in ours_open:
        report = broker.lookup(coid)
        if report is None:
            differences.append(Difference("order", coid, None, None, {
                "problem": "open in our books, unknown to the venue", "symbol": symbol, "status": status}))  # fmt: skip
            continue
        new_status = apply_venue_report(conn, run_id=run_id, report=report, event_time=event_time)
        if new_status is not None and not is_terminal(new_status) and switch.engaged:
            new_status = _cancel_for_switch(conn, broker, report, Symbol(symbol), switch.reason, run_id, event_time)
        if new_status is not None and new_status.value != status:
            differences.append(Difference("order", coid, None, None, {
                "problem": f"was {status} in our books, {new_status.value} at the venue: brought up to date",
                "symbol": symbol, "fills": len(report.fills), "explained": True}))  # fmt: skip
        if new_status is not None and not is_terminal(new_status):
            still_open[coid] = symbol
    if isinstance(broker, ChargingBroker):  # fees booked beside the fills (financing, regulatory fees), each once
        book_venue_charges(conn, broker, account, run_id=run_id)
    cash, positions = _ours(conn, account)
    differences = compare_holdings(cash, positions, broker.balances(), tolerance=tolerance) + differences
    if isinstance(broker, CancellingBroker):
        venue_open = {r.client_order_id: r for r in broker.open_orders()}
        for coid in sorted(set(venue_open) - set(still_open)):
            differences.append(Difference("order", coid, None, None,
                                          {"problem": "open at the venue, not open in our books",
                                           "symbol": venue_open[coid].symbol,
                                           "venue_order_id": venue_open[coid].venue_order_id}))  # fmt: skip
    rows = differences or [Difference("ok", "all", None, None, {"currencies": sorted(cash) + sorted(positions)})]
    for d in rows:
        conn.execute(
            text(
                """insert into audit.reconciliations (run_id, account, kind, item, ours, venue, difference, details)
                   values (:r, :a, :k, :i, :o, :v, :d, cast(:det as jsonb))"""
            ),
            {"r": run_id, "a": account, "k": d.kind, "i": d.item, "o": d.ours, "v": d.venue, "d": d.difference,
             "det": json.dumps({**d.details, "venue": broker.name}, default=str)},
        )  # fmt: skip
    return differences


def _recover_orphans(
    conn: Connection, broker: BalanceBroker, account: AccountId, *, run_id: str, event_time: datetime
) -> list[Difference]:
    """Look up every journaled attempt of ``account`` at this venue that has no order, under the account lock (an
    attempt whose execution is still running holds it until it commits its order). The venue has it: the order is
    booked from the journal and the venue's report (``book_journaled_order``). The venue confirms it never saw it: the
    attempt is settled as absent (a decision recomputed later may send it). An attempt journaled without its order
    details (before migration 0013) cannot be booked: a difference for a human."""
    lock_account(conn, account)
    differences = []
    for attempt in orphaned_attempts(conn, account, broker.name):
        coid = attempt.client_order_id
        report = broker.lookup(coid)
        if report is None:
            resolve_attempt(conn, coid, "absent")
            continue
        if attempt.details is None:
            differences.append(Difference("order", coid, None, None, {
                "problem": "journaled attempt found at the venue, its order details were not journaled",
                "venue_status": report.status.value, "venue_order_id": report.venue_order_id}))  # fmt: skip
            continue
        status = book_journaled_order(conn, run_id=run_id, report=report, account=account, venue=attempt.venue,
                                      details=attempt.details, event_time=event_time)  # fmt: skip
        resolve_attempt(conn, coid, "booked")
        differences.append(Difference("order", coid, None, None, {
            "problem": f"journaled attempt with no order, {status.value} at the venue: booked",
            "symbol": attempt.details.get("symbol"), "fills": len(report.fills), "explained": True}))  # fmt: skip
    return differences


def _cancel_for_switch(
    conn: Connection,
    broker: BalanceBroker,
    report: BrokerReport,
    symbol: Symbol,
    reason: str,
    run_id: str,
    event_time: datetime,
) -> OrderStatus | None:
    """The kill switch is on and the venue now lists one of our orders open (listed late, after the switch's cancel
    pass found nothing): cancel it there, and book the venue's answer."""
    if not isinstance(broker, CancellingBroker):
        return report.status
    cancelled = broker.cancel(report.client_order_id, symbol)
    if cancelled is None:
        return report.status
    why = f"kill switch: {reason}"
    return apply_venue_report(conn, run_id=run_id, report=replace(cancelled, reason=why), event_time=event_time)


def latest_reconciliation(conn: Connection, account: AccountId) -> list[dict[str, Any]]:
    """The rows of the newest reconciliation run of ``account``."""
    rows = conn.execute(
        text(
            """select kind, item, ours, venue, difference, details, created_at from audit.reconciliations
               where account = :a and run_id = (select run_id from audit.reconciliations where account = :a
                                                order by id desc limit 1)
               order by id"""
        ),
        {"a": account},
    ).mappings()
    return [dict(r) for r in rows]
