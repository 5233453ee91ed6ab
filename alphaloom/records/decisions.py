"""Reads of the decision tables (``audit.decisions`` with their ``audit.agent_outputs`` and ``audit.risk_checks``)
for the core's read side. Every function takes an open connection and returns typed rows; none writes (the decision
recorder in ``agents`` owns the writes).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import Connection, text


class DecisionListing(NamedTuple):
    """A decision as a list shows it: the votes (``agent:action`` by agent), its orders' client ids (by leg, None
    for none) and the first risk check that denied it (``check: reason``, None when none did)."""

    decision_id: str
    symbol: str
    as_of: datetime
    action: str
    score: Decimal
    run_id: str
    created_at: datetime
    votes: str | None
    orders: str | None
    denied: str | None


_LISTING = """
select d.decision_id, d.symbol, d.as_of, d.action, d.score, d.run_id, d.created_at,
       (select string_agg(a.agent || ':' || coalesce(a.output->>'action', '?'), ' ' order by a.agent)
          from audit.agent_outputs a where a.decision_id = d.decision_id) as votes,
       (select string_agg(o.client_order_id, ' ' order by o.leg) from audit.orders o
          where o.decision_id = d.decision_id) as orders,
       (select r.check_name || ': ' || r.reason from audit.risk_checks r
          where r.decision_id = d.decision_id and not r.approved order by r.id limit 1) as denied
from audit.decisions d
"""


def latest_listings(conn: Connection, account: str) -> list[DecisionListing]:
    """The newest decision of ``account`` for each symbol, by symbol."""
    rows = conn.execute(
        text(
            f"""with latest as (select distinct on (symbol) decision_id from audit.decisions where account = :a
                                order by symbol, as_of desc, created_at desc)
                {_LISTING} join latest using (decision_id) order by d.symbol"""
        ),
        {"a": account},
    )
    return [DecisionListing._make(r) for r in rows]


def listings(
    conn: Connection, account: str, *, symbol: str | None = None, action: str | None = None, limit: int = 200
) -> list[DecisionListing]:
    """The decisions of ``account`` (of ``symbol`` and with ``action`` when given), newest first, at most ``limit``."""
    rows = conn.execute(
        text(
            f"""{_LISTING} where d.account = :a and (cast(:s as text) is null or d.symbol = :s)
                and (cast(:act as text) is null or d.action = :act)
                order by d.as_of desc, d.symbol limit :n"""
        ),
        {"a": account, "s": symbol or None, "act": action or None, "n": limit},
    )
    return [DecisionListing._make(r) for r in rows]


def decided_symbols(conn: Connection, account: str) -> list[str]:
    """The symbols ``account`` has decisions for, sorted."""
    return list(
        conn.execute(
            text("select distinct symbol from audit.decisions where account = :a order by symbol"), {"a": account}
        ).scalars()
    )
