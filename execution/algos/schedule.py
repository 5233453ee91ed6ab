"""TWAP schedules (``audit.scheduled_slices``): the slices of a TWAP parent with the time each is due.

``execute`` records a parent's whole schedule (the first slice included) in the caller's transaction before it sends
the first slice; ``execution.algos.release`` sends the others when due. A slice leaves ``scheduled`` once: ``released``
(its order is recorded), ``refused`` (the execution guard refused it) or ``cancelled`` (the kill switch, or a later
decision to trade the same symbol the other way). ``due_slices`` is the pure choice of what is due; the rest is I/O.

Iceberg children are rows of the same schedule, due at once but gated: a row with ``after_client_order_id`` is due
only when that earlier child's order has ``filled``; when it ended otherwise (cancelled, rejected, expired) or its
slice was refused or cancelled, ``stopped_parents`` names the parent, whose remaining children are cancelled.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, text

from alphaloom.domain import AccountId, ClientOrderId, DecisionId, OrderIntent, OrderStatus, Side, client_order_id_for


class SliceStatus(enum.StrEnum):
    """A slice's state in ``audit.scheduled_slices``: it leaves ``scheduled`` once."""

    SCHEDULED = "scheduled"
    RELEASED = "released"  # its order is recorded
    REFUSED = "refused"  # the execution guard refused it
    CANCELLED = "cancelled"  # the kill switch, a stopped iceberg, or a later decision the other way


@dataclass(frozen=True, slots=True)
class ScheduledSlice:
    client_order_id: ClientOrderId
    parent_client_order_id: ClientOrderId
    intent: OrderIntent  # the slice as scheduled: quantity, and the parent's reference price
    arrival_price: Decimal | None
    due_at: datetime
    status: SliceStatus
    after_client_order_id: ClientOrderId | None = None  # an iceberg child: due once this order has filled


_UNFILLED_FINAL = frozenset({OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED})


def due_slices(
    slices: Iterable[ScheduledSlice], now: datetime, order_status: Mapping[str, str] | None = None
) -> list[ScheduledSlice]:
    """The slices still scheduled whose time has come by ``now``, oldest due first (then by leg); an iceberg child
    only once the order before it is ``filled`` in ``order_status`` (client id -> order status)."""
    statuses = order_status or {}
    due = [
        s
        for s in slices
        if s.status == SliceStatus.SCHEDULED
        and s.due_at <= now
        and (s.after_client_order_id is None or statuses.get(s.after_client_order_id) == OrderStatus.FILLED)
    ]
    return sorted(due, key=lambda s: (s.due_at, s.intent.leg))


def stopped_parents(slices: Iterable[ScheduledSlice], order_status: Mapping[str, str]) -> dict[ClientOrderId, str]:
    """Iceberg parents whose next child can never go, with why: the child before it ended unfilled (its order
    cancelled, rejected or expired) or its slice was refused or cancelled."""
    rows = list(slices)
    by_id = {s.client_order_id: s for s in rows}
    out: dict[ClientOrderId, str] = {}
    for s in rows:
        prev = s.after_client_order_id
        if s.status != SliceStatus.SCHEDULED or prev is None or s.parent_client_order_id in out:
            continue
        if order_status.get(prev) in _UNFILLED_FINAL:
            out[s.parent_client_order_id] = f"iceberg child {prev} ended {order_status[prev]}"
        elif prev in by_id and by_id[prev].status in (SliceStatus.REFUSED, SliceStatus.CANCELLED):
            out[s.parent_client_order_id] = f"iceberg child {prev} was {by_id[prev].status}"
    return out


def siblings_by_parent(slices: Iterable[ScheduledSlice]) -> dict[ClientOrderId, list[str]]:
    """Every scheduled client id of each parent: the shape its first execution committed to."""
    out: dict[ClientOrderId, list[str]] = {}
    for s in slices:
        out.setdefault(s.parent_client_order_id, []).append(s.client_order_id)
    return out


_COLUMNS = """client_order_id, parent_client_order_id, decision_id, leg, account, symbol, side, quantity,
              reference_price, arrival_price, due_at, status, after_client_order_id"""


def _slice(row) -> ScheduledSlice:  # type: ignore[no-untyped-def]
    intent = OrderIntent(DecisionId(row.decision_id), row.account, row.symbol, Side(row.side), Decimal(row.quantity),
                         Decimal(row.reference_price), row.leg)  # fmt: skip
    return ScheduledSlice(ClientOrderId(row.client_order_id), ClientOrderId(row.parent_client_order_id), intent,
                          None if row.arrival_price is None else Decimal(row.arrival_price), row.due_at,
                          SliceStatus(row.status), None if row.after_client_order_id is None
                          else ClientOrderId(row.after_client_order_id))  # fmt: skip


def schedule_of(conn: Connection, parents: Sequence[ClientOrderId]) -> list[ScheduledSlice]:
    """The recorded slices of ``parents``, in any state, locked ``FOR UPDATE`` until the transaction ends."""
    if not parents:
        return []
    rows = conn.execute(
        text(f"select {_COLUMNS} from audit.scheduled_slices where parent_client_order_id = any(:p) "
             "order by parent_client_order_id, leg for update"),
        {"p": list(parents)},
    ).all()  # fmt: skip
    return [_slice(r) for r in rows]


def pending_parents(conn: Connection, account: AccountId, now: datetime) -> list[ClientOrderId]:
    """The parents of ``account`` with a slice still scheduled and due by ``now``."""
    parents: Sequence[str] = conn.execute(
        text("""select distinct parent_client_order_id from audit.scheduled_slices
                    where account = :a and status = 'scheduled' and due_at <= :t order by 1"""),
        {"a": account, "t": now},
    ).scalars().all()  # fmt: skip
    return [ClientOrderId(p) for p in parents]


def accounts_with_due_slices(conn: Connection, now: datetime, account: AccountId | None = None) -> list[AccountId]:
    names: Sequence[str] = (
        conn.execute(
            text("""select distinct account from audit.scheduled_slices where status = 'scheduled'
                and due_at <= :t and (cast(:a as text) is null or account = :a) order by 1"""),
            {"t": now, "a": account},
        )
        .scalars()
        .all()
    )
    return [AccountId(name) for name in names]


def order_statuses(conn: Connection, coids: Sequence[str]) -> dict[str, str]:
    """The recorded status of each of ``coids`` that is an order."""
    if not coids:
        return {}
    rows = conn.execute(
        text("select client_order_id, status from audit.orders where client_order_id = any(:c)"), {"c": list(coids)}
    ).all()
    return {r.client_order_id: r.status for r in rows}


def family_recorded(conn: Connection, parent: ClientOrderId) -> bool:
    """The parent, or children of it, are already orders (split in another shape, or all at once, before)."""
    return bool(
        conn.execute(
            text("""select exists (select 1 from audit.orders where client_order_id = :p
                                   or parent_client_order_id = :p)"""),
            {"p": parent},
        ).scalar()
    )


def record_schedule(
    conn: Connection,
    children: Sequence[OrderIntent],
    *,
    parent: ClientOrderId,
    due: Mapping[ClientOrderId, datetime],
    arrival_price: Decimal | None,
    run_id: str,
    after: Mapping[ClientOrderId, ClientOrderId] | None = None,
) -> None:
    """Insert a parent's slices as ``scheduled`` (one statement); rows that exist already are left as they are.
    ``after``: an iceberg child -> the child that must fill before it."""
    gates = after or {}
    rows = [
        {"c": client_order_id_for(c.decision_id, c.leg), "p": parent, "d": c.decision_id, "l": c.leg,
         "a": c.account, "s": c.symbol, "side": c.side.value, "q": c.quantity, "ref": c.reference_price,
         "arr": arrival_price, "due": due[client_order_id_for(c.decision_id, c.leg)], "r": run_id,
         "after": gates.get(client_order_id_for(c.decision_id, c.leg))}
        for c in children
    ]  # fmt: skip
    conn.execute(
        text("""insert into audit.scheduled_slices (client_order_id, parent_client_order_id, decision_id, leg,
                    account, symbol, side, quantity, reference_price, arrival_price, due_at, run_id,
                    after_client_order_id)
                values (:c, :p, :d, :l, :a, :s, :side, :q, :ref, :arr, :due, :r, :after)
                on conflict (client_order_id) do nothing"""),
        rows,
    )  # fmt: skip


def mark_slices(conn: Connection, coids: Sequence[str], status: SliceStatus, reason: str, run_id: str) -> None:
    """Move still-scheduled slices to ``status`` (a slice leaves ``scheduled`` once)."""
    if not coids:
        return
    conn.execute(
        text("""update audit.scheduled_slices set status = :st, reason = :why, released_run_id = :r,
                    updated_at = now()
                where client_order_id = any(:c) and status = 'scheduled'"""),
        {"st": SliceStatus(status).value, "why": reason, "r": run_id, "c": list(coids)},
    )  # fmt: skip


def cancel_parents(conn: Connection, parents: Sequence[str], reason: str, run_id: str) -> int:
    """Cancel every slice still scheduled of ``parents``; returns how many."""
    if not parents:
        return 0
    return conn.execute(
        text("""update audit.scheduled_slices set status = 'cancelled', reason = :why, released_run_id = :r,
                    updated_at = now()
                where parent_client_order_id = any(:p) and status = 'scheduled'"""),
        {"why": reason, "r": run_id, "p": list(parents)},
    ).rowcount  # fmt: skip


def cancel_all_scheduled(conn: Connection, reason: str, run_id: str, account: AccountId | None = None) -> list[str]:
    """Cancel every slice still scheduled (of ``account``, or of all accounts); returns their client ids."""
    return list(
        conn.execute(
            text("""update audit.scheduled_slices set status = 'cancelled', reason = :why, released_run_id = :r,
                        updated_at = now()
                    where status = 'scheduled' and (cast(:a as text) is null or account = :a)
                    returning client_order_id"""),
            {"why": reason, "r": run_id, "a": account},
        ).scalars()
    )  # fmt: skip
