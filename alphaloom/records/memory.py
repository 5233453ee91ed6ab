"""The team memory's repository (``audit.opinion_outcomes``, ``audit.agent_weights``): the statements that score
opinions (the candidates read from ``audit.decisions``, ``audit.agent_outputs`` and ``marts.features``), store outcomes
and weights, and read them back point in time (ARCHITECTURE §4: never an outcome with ``realised_at`` after
``as_of``). Every function takes the caller's connection; the scoring and weighing logic is ``agents.memory``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, text

from alphaloom.db.batch import insert_arrays
from alphaloom.domain import AccountId

# the columns (with their SQL types) of an outcome and of a weight row, in the order both writers (these and the replay's bulk
# ``agents.audit_buffer``) give their values
OUTCOME_TYPES = (("decision_id", "text"), ("agent", "text"), ("account", "text"), ("symbol", "text"),
                 ("as_of", "timestamptz"), ("realised_at", "timestamptz"), ("horizon_bars", "integer"),
                 ("action", "text"), ("confidence", "double precision"), ("entry_price", "double precision"),
                 ("exit_price", "double precision"), ("realised_return", "double precision"), ("hit", "boolean"),
                 ("score", "double precision"), ("run_id", "text"))  # fmt: skip
WEIGHT_TYPES = (("account", "text"), ("agent", "text"), ("as_of", "timestamptz"), ("weight", "double precision"),
                ("hit_rate", "double precision"), ("scored", "integer"), ("run_id", "text"))  # fmt: skip
OUTCOME_COLUMNS = tuple(name for name, _ in OUTCOME_TYPES)
WEIGHT_COLUMNS = tuple(name for name, _ in WEIGHT_TYPES)
outcome_values = itemgetter(*OUTCOME_COLUMNS)  # an outcome row's values in OUTCOME_COLUMNS order, as a tuple

_CANDIDATES = """
with recent as (  -- no jsonb here: detoasting every decision's inputs on every step is what costs
    select d.decision_id, d.account, d.symbol, d.timeframe, d.as_of, d.action, d.score
    from audit.decisions d
    where d.account = :account and d.as_of < :as_of and d.as_of >= :since
), opinions as (
    select o.decision_id, o.agent, o.output->>'action' as action,
           coalesce((o.output->>'confidence')::float, 0) as confidence,
           coalesce((o.output->'details'->>'horizon_bars')::int, :horizon) as horizon_bars
    from audit.agent_outputs o join recent r on r.decision_id = o.decision_id
    where not o.skipped
    union all
    select r.decision_id, 'team', r.action, abs(r.score), :horizon from recent r
), due as (
    select p.*, r.account, r.symbol, r.timeframe, r.as_of,
           (r.as_of at time zone 'UTC' + cast(:bar as interval) * p.horizon_bars) at time zone 'UTC' as realised_at
    from opinions p join recent r on r.decision_id = p.decision_id
    where (r.as_of at time zone 'UTC' + cast(:bar as interval) * p.horizon_bars) at time zone 'UTC' <= :as_of
      and not exists (select 1 from audit.opinion_outcomes x where x.decision_id = p.decision_id and x.agent = p.agent)
), entries as (
    select d.decision_id,
           (d.inputs->'features'->'values'->>'close')::float as entry_price,
           d.inputs->'features'->'key'->>'exchange' as exchange,
           (d.inputs->'features'->'key'->>'ts')::timestamptz as entry_ts
    from audit.decisions d where d.decision_id in (select decision_id from due)
), exits as (  -- one lookup per (symbol, realised_at), not per opinion
    select k.*, f.close as exit_price, f.ts as exit_ts
    from (select distinct e.exchange, u.symbol, u.timeframe, u.realised_at
          from due u join entries e on e.decision_id = u.decision_id) k
    cross join lateral (
        select close, ts from marts.features f
        where f.exchange = k.exchange and f.symbol = k.symbol and f.timeframe = k.timeframe
          and f.known_at <= k.realised_at
        order by f.ts desc limit 1
    ) f
)
select u.*, e.entry_price, e.entry_ts, x.exit_price, x.exit_ts
from due u
join entries e on e.decision_id = u.decision_id
join exits x on x.exchange = e.exchange and x.symbol = u.symbol and x.timeframe = u.timeframe
            and x.realised_at = u.realised_at
where e.entry_price > 0 and x.exit_price > 0
order by u.decision_id, u.agent  -- a fixed insert order, so concurrent per-symbol tasks cannot deadlock on it
"""


def features_table_exists(conn: Connection) -> bool:
    """Whether ``marts.features`` exists yet (no outcome can be scored before the first dbt build)."""
    return conn.execute(text("select to_regclass('marts.features')")).scalar() is not None


def outcome_candidates(
    conn: Connection, *, account: AccountId, as_of: datetime, horizon: int, bar: str, since: datetime
) -> Sequence[Row[Any]]:
    """The account's unscored opinions (decisions after ``since``) realised by ``as_of`` (``bar``: the timeframe's
    SQL interval, ``horizon``: the default horizon in bars), with entry and exit closes, by decision and agent."""
    return conn.execute(
        text(_CANDIDATES),
        {"account": account, "as_of": as_of, "horizon": horizon, "bar": bar, "since": since},
    ).all()


def insert_outcomes(conn: Connection, records: Sequence[Mapping[str, Any]]) -> None:
    """Store outcome rows (``OUTCOME_COLUMNS`` keys) with one statement, in order; a row already scored for its
    (decision, agent) is kept (also the first of two in ``records``)."""
    # one statement, not one per row: the table's references are checked once per statement (migration 0030)
    insert_arrays(conn, "audit.opinion_outcomes", OUTCOME_TYPES, [outcome_values(r) for r in records],
                suffix="on conflict (decision_id, agent) do nothing")  # fmt: skip


def buy_returns(conn: Connection, *, account: AccountId, agent: str, as_of: datetime, limit: int) -> list[float]:
    """Realised returns of ``agent``'s latest ``limit`` scored buys of ``account`` realised by ``as_of``, newest
    first."""
    rows: Iterable[Any] = conn.execute(
        text(
            """select realised_return from audit.opinion_outcomes
               where account = :account and agent = :team and action = 'buy' and hit is not null
                 and realised_at <= :as_of
               order by realised_at desc, symbol desc, as_of desc limit :limit"""
        ),
        {"account": account, "team": agent, "as_of": as_of, "limit": limit},
    ).scalars()
    return [float(r) for r in rows]


class ScoredHit(NamedTuple):
    """One scored, directional outcome: the agent, when it was realised, whether it hit."""

    agent: str
    realised_at: datetime
    hit: bool


def scored_hits(conn: Connection, *, account: AccountId, as_of: datetime, agents: Sequence[str]) -> list[ScoredHit]:
    """The account's directional outcomes of ``agents`` realised by ``as_of``, oldest first (ties in a fixed order)."""
    rows = conn.execute(
        text(
            """select agent, realised_at, hit from audit.opinion_outcomes
               where account = :account and realised_at <= :as_of and hit is not null and agent = any(:agents)
               order by realised_at, symbol, as_of -- ties in a fixed order that does not depend on the account"""
        ),
        {"account": account, "as_of": as_of, "agents": list(agents)},
    )
    return [ScoredHit._make(r) for r in rows]


def insert_weights(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """The weights in force at a time (rows in ``WEIGHT_COLUMNS`` order), with one statement; the first record for a
    time wins."""
    insert_arrays(conn, "audit.agent_weights", WEIGHT_TYPES, rows,
                suffix="on conflict (account, agent, as_of) do nothing")  # fmt: skip


def past_situations(
    conn: Connection, *, account: AccountId, agent: str, as_of: datetime, limit: int
) -> Sequence[Row[Any]]:
    """``agent``'s latest ``limit`` outcomes of ``account`` realised by ``as_of``, with the decision's symbol, time,
    action and feature values (``values``), newest first."""
    return conn.execute(
        text(
            """select d.decision_id, d.symbol, d.as_of, d.action, d.inputs->'features'->'values' as values,
                      x.realised_return, x.horizon_bars
               from audit.opinion_outcomes x join audit.decisions d on d.decision_id = x.decision_id
               where x.account = :account and x.agent = :team and x.realised_at <= :as_of
               order by x.realised_at desc limit :limit"""
        ),
        {"account": account, "team": agent, "as_of": as_of, "limit": limit},
    ).all()


def outcomes_of_runs(conn: Connection, run_ids: Sequence[str]) -> list[tuple[str, str, bool | None]]:
    """(agent, action, hit) of every scored opinion of a decision of ``run_ids`` (``hit`` None while unscored)."""
    rows = conn.execute(
        text(
            """select x.agent, x.action, x.hit
               from audit.opinion_outcomes x join audit.decisions d on d.decision_id = x.decision_id
               where d.run_id = any(:runs)"""
        ),
        {"runs": list(run_ids)},
    ).all()
    return [(str(r[0]), str(r[1]), None if r[2] is None else bool(r[2])) for r in rows]
