"""Venue charges booked into the ledger: fees a venue books on an account beside its fills (OANDA's daily financing,
Alpaca's regulatory TAF/REG fees), each once.

``book_venue_charges`` reads the charges since the newest one booked (``ChargeStart``), and books the new ones in one
statement: an ``audit.venue_charges`` row per charge (keyed by the venue's id, so a charge read again, after an
overlapping read or a restart, is skipped) and ``-fee`` on the account's ``audit.balances`` row of its currency,
only for the rows actually inserted. Reconciliation calls it before it compares balances.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import Connection, text

from alphaloom.domain import AccountId
from execution.brokers.base import ChargeStart, ChargingBroker, VenueCharge


def charge_start(conn: Connection, account: AccountId, venue: str) -> ChargeStart:
    """The newest charge booked for ``account`` at ``venue``, else the account's first order there with a venue id."""
    last = conn.execute(
        text("""select charge_id, charged_at from audit.venue_charges where account = :a and venue = :v
                order by charged_at desc, length(charge_id) desc, charge_id desc limit 1"""), {"a": account, "v": venue}).first()  # fmt: skip
    first = conn.execute(
        text("""select o.venue_order_id, min(e.event_ts) as created_at
                from audit.orders o join audit.order_events e using (client_order_id)
                where o.account = :a and o.venue = :v and o.venue_order_id is not null
                group by o.client_order_id, o.venue_order_id order by 2, o.client_order_id limit 1"""),
        {"a": account, "v": venue}).first()  # fmt: skip
    return ChargeStart(
        after=str(last.charge_id) if last else None,
        since=last.charged_at if last else (first.created_at if first else None),
        first_order_id=str(first.venue_order_id) if first else None,
    )


def record_charges(
    conn: Connection, account: AccountId, venue: str, charges: Sequence[VenueCharge], *, run_id: str | None
) -> list[VenueCharge]:
    """Book ``charges`` not booked yet (by the venue's id) and move the balances by what they cost; returns those
    booked now."""
    if not charges:
        return []
    params: dict[str, object] = {"a": account, "v": venue, "r": run_id}
    values = []
    for n, c in enumerate(charges):
        values.append(f"(:a, :v, :id{n}, :k{n}, cast(:f{n} as numeric), :c{n}, :t{n}, :r)")
        params.update({f"id{n}": c.charge_id, f"k{n}": c.kind, f"f{n}": c.fee, f"c{n}": c.currency, f"t{n}": c.at})
    rows: Sequence[str] = (
        conn.execute(
            text(
                f"""with new as (
                  insert into audit.venue_charges (account, venue, charge_id, kind, fee, currency, charged_at, run_id)
                  values {", ".join(values)}
                  on conflict (account, venue, charge_id) do nothing
                  returning charge_id, currency, fee),
                moved as (
                  insert into audit.balances (account, currency, amount, run_id)
                  select :a, currency, -sum(fee), :r from new group by currency
                  on conflict (account, currency) do update
                  set amount = audit.balances.amount + excluded.amount, run_id = excluded.run_id, updated_at = now())
                select charge_id from new"""
            ),
            params,
        )
        .scalars()
        .all()
    )
    booked = set(rows)
    return [c for c in charges if c.charge_id in booked]


def book_venue_charges(conn: Connection, broker: ChargingBroker, account: AccountId, *, run_id: str) -> Decimal:
    """Read ``broker``'s charges since the newest booked for ``account`` and book the new ones; returns what they cost
    in total (in their currencies, summed: one currency per venue account)."""
    start = charge_start(conn, account, broker.name)
    if start.after is None and start.first_order_id is None:
        return Decimal(0)  # nothing traded there yet: no position to finance, no sale to charge
    booked = record_charges(conn, account, broker.name, broker.charges_since(start), run_id=run_id)
    return sum((c.fee for c in booked), Decimal(0))
