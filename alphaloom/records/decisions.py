"""Reads of the decision tables (``audit.decisions`` with their ``audit.agent_outputs`` and ``audit.risk_checks``,
and the configurations they reference by version, ``audit.decision_configs``) for the core's read side, the one
statement that records decisions with their outputs, checks and lineage (``insert_decisions``, given the rows
``agents.recording`` builds) and the configurations' write (``insert_decision_configs``, once per version). Every
function takes an open connection.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection, text

from alphaloom.db.batch import MAX_PARAMETERS, Statement
from alphaloom.domain import AccountId, Symbol


class DecisionListing(NamedTuple):
    """A decision as a list shows it: the votes (``agent:action`` by agent), its orders' client ids (by leg, None
    for none) and the first risk check that denied it (``check: reason``, None when none did)."""

    decision_id: str
    symbol: Symbol
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


def latest_listings(conn: Connection, account: AccountId) -> list[DecisionListing]:
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
    conn: Connection, account: AccountId, *, symbol: Symbol | None = None, action: str | None = None, limit: int = 200
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


def decided_symbols(conn: Connection, account: AccountId) -> list[str]:
    """The symbols ``account`` has decisions for, sorted."""
    return list(
        conn.execute(
            text("select distinct symbol from audit.decisions where account = :a order by symbol"), {"a": account}
        ).scalars()
    )


class DecisionRecord(NamedTuple):
    """A decision row as recorded (``inputs``: what the decision read, as stored)."""

    decision_id: str
    account: AccountId
    symbol: Symbol
    timeframe: str
    as_of: datetime
    action: str
    score: Decimal
    config_version: str
    dbt_invocation_id: str | None
    git_sha: str | None
    run_id: str
    created_at: datetime
    inputs: dict[str, Any]
    config: dict[str, Any] | None  # the configuration behind config_version (audit.decision_configs), None unrecorded


class AgentOutputRecord(NamedTuple):
    """One agent's output for a decision, as recorded."""

    agent: str
    model: str | None
    prompt_hash: str | None
    tokens: int | None
    latency_ms: int | None
    skipped: bool
    output: dict[str, Any]
    input_ref: dict[str, Any] | None
    run_id: str


class RiskCheckRecord(NamedTuple):
    """One risk check of a decision, as recorded."""

    check_name: str
    approved: bool
    reason: str
    numbers: dict[str, Any] | None


class DecisionBrief(NamedTuple):
    """A decision as a summary starts from."""

    decision_id: str
    run_id: str
    account: AccountId
    symbol: Symbol
    as_of: datetime
    action: str
    score: Decimal
    inputs: dict[str, Any] | None
    config: dict[str, Any] | None  # the configuration behind its version, None when not recorded


class DecisionVote(NamedTuple):
    """An agent's output for one of several decisions."""

    decision_id: str
    agent: str
    output: dict[str, Any] | None
    skipped: bool


class DecisionCheck(NamedTuple):
    """A risk check of one of several decisions."""

    decision_id: str
    check_name: str
    approved: bool
    reason: str
    numbers: dict[str, Any] | None


# A decision's configuration: its version's row (audit.decision_configs), or what decisions recorded before 0029 kept
# in their inputs.
_CONFIG = """coalesce((select c.config from audit.decision_configs c where c.config_version = d.config_version),
                   d.inputs -> 'config') as config"""


def decision(conn: Connection, decision_id: str) -> DecisionRecord | None:
    """The decision ``decision_id``, or None when there is none."""
    row = conn.execute(
        text(
            f"""select decision_id, account, symbol, timeframe, as_of, action, score, config_version,
                       dbt_invocation_id, git_sha, run_id, created_at, inputs, {_CONFIG}
                from audit.decisions d where decision_id = :d"""
        ),
        {"d": decision_id},
    ).first()
    return None if row is None else DecisionRecord._make(row)


def agent_outputs(conn: Connection, decision_id: str) -> list[AgentOutputRecord]:
    """The decision's agent outputs, in the order they were recorded."""
    return [
        AgentOutputRecord._make(o)
        for o in conn.execute(
            text(
                """select agent, model, prompt_hash, tokens, latency_ms, skipped, output, input_ref, run_id
                   from audit.agent_outputs where decision_id = :d order by id"""
            ),
            {"d": decision_id},
        )
    ]


def risk_checks(conn: Connection, decision_id: str) -> list[RiskCheckRecord]:
    """The decision's risk checks, in the order they ran."""
    return [
        RiskCheckRecord._make(r)
        for r in conn.execute(
            text(
                "select check_name, approved, reason, numbers from audit.risk_checks where decision_id = :d order by id"
            ),
            {"d": decision_id},
        )
    ]


def decision_ids_with_prefix(conn: Connection, prefix: str) -> list[str]:
    """Up to two decision ids starting with ``prefix`` (two: the prefix is ambiguous)."""
    rows = conn.execute(
        text("select decision_id from audit.decisions where decision_id like :p limit 2"), {"p": f"{prefix}%"}
    ).all()
    return [r[0] for r in rows]


def decision_briefs(
    conn: Connection,
    *,
    decision_ids: Sequence[str] | None = None,
    run_id: str | None = None,
    symbol: Symbol | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> list[DecisionBrief]:
    """Decisions matching every filter given, newest first (then by symbol), at most ``limit``."""
    rows = conn.execute(
        text(
            f"""select decision_id, run_id, account, symbol, as_of, action, score, inputs, {_CONFIG}
               from audit.decisions d where (cast(:ids as text[]) is null or decision_id = any(:ids))
                 and (cast(:run as text) is null or run_id = :run)
                 and (cast(:symbol as text) is null or symbol = :symbol)
                 and (cast(:since as timestamptz) is null or as_of >= :since)
               order by as_of desc, symbol limit :n"""
        ),
        {"ids": list(decision_ids) if decision_ids is not None else None, "run": run_id, "symbol": symbol,
         "since": since, "n": limit},
    )  # fmt: skip
    return [DecisionBrief._make(r) for r in rows]


def votes_of_decisions(conn: Connection, decision_ids: list[str]) -> list[DecisionVote]:
    """The agent outputs of every decision in ``decision_ids``, by agent."""
    return [
        DecisionVote._make(r)
        for r in conn.execute(
            text("select decision_id, agent, output, skipped from audit.agent_outputs where decision_id = any(:ids) "
                 "order by agent"),
            {"ids": decision_ids},
        )
    ]  # fmt: skip


def checks_of_decisions(conn: Connection, decision_ids: list[str]) -> list[DecisionCheck]:
    """The risk checks of every decision in ``decision_ids``, in the order they ran."""
    return [
        DecisionCheck._make(r)
        for r in conn.execute(
            text("select decision_id, check_name, approved, reason, numbers from audit.risk_checks "
                 "where decision_id = any(:ids) order by id"),
            {"ids": decision_ids},
        )
    ]  # fmt: skip


class RunDecision(NamedTuple):
    """Where and when a run decided."""

    account: AccountId
    symbol: Symbol
    as_of: datetime


class DecisionWeights(NamedTuple):
    """The agent weights a decision used (``inputs->'weights'``, None when it recorded none)."""

    decision_id: str
    weights: dict[str, Any] | None


class DecisionOpinion(NamedTuple):
    """An agent's opinion on one of several decisions (``output``: as stored, a dict or its JSON text)."""

    decision_id: str
    agent: str
    skipped: bool
    output: Any


class RiskCheckView(NamedTuple):
    """A risk check of an account as an operator sees it."""

    check_name: str
    approved: bool
    reason: str
    numbers: dict[str, Any] | None
    created_at: datetime
    symbol: Symbol | None


class DrawdownStep(NamedTuple):
    """The latest drawdown verdict of a step with the level of the verdict before the step (None for none)."""

    symbol: Symbol | None
    decision_id: str | None
    reason: str
    numbers: dict[str, Any]
    previous: str | None


def decisions_of_run(conn: Connection, run_id: str) -> list[RunDecision]:
    """The run's decisions (account, symbol, time), by time."""
    rows = conn.execute(
        text("select account, symbol, as_of from audit.decisions where run_id = :r order by as_of"), {"r": run_id}
    )
    return [RunDecision._make(r) for r in rows]


def weights_of_decisions(conn: Connection, decision_ids: list[str]) -> list[DecisionWeights]:
    """The agent weights each decision in ``decision_ids`` used."""
    return [
        DecisionWeights._make(r)
        for r in conn.execute(
            text("select decision_id, inputs->'weights' as weights from audit.decisions where decision_id = any(:d)"),
            {"d": decision_ids},
        )
    ]


def opinions_of_decisions(conn: Connection, decision_ids: list[str]) -> list[DecisionOpinion]:
    """The agent outputs of every decision in ``decision_ids``, in the order they were recorded."""
    return [
        DecisionOpinion._make(r)
        for r in conn.execute(
            text("""select decision_id, agent, skipped, output from audit.agent_outputs where decision_id = any(:d)
                    order by id"""),
            {"d": decision_ids},
        )
    ]  # fmt: skip


def latest_checks_by_name(conn: Connection, account: AccountId) -> list[RiskCheckView]:
    """The account's latest risk check of each name, by name."""
    rows = conn.execute(
        text(
            """select distinct on (check_name) check_name, approved, reason, numbers, created_at, symbol
               from audit.risk_checks where account = :a order by check_name, id desc"""
        ),
        {"a": account},
    )
    return [RiskCheckView._make(r) for r in rows]


def latest_var_check(conn: Connection, account: AccountId) -> RiskCheckView | None:
    """The account's latest portfolio VaR check that recorded its limit, or None."""
    row = conn.execute(
        text(
            """select check_name, approved, reason, numbers, created_at, symbol from audit.risk_checks
               where account = :a and check_name = 'portfolio_var' and numbers ? 'limit' order by id desc limit 1"""
        ),
        {"a": account},
    ).first()
    return None if row is None else RiskCheckView._make(row)


def drawdown_step(conn: Connection, account: AccountId, run_id: str, as_of: datetime) -> DrawdownStep | None:
    """The latest drawdown verdict (with a level) ``run_id`` recorded for ``account`` at step ``as_of``, with the
    level of the account's latest verdict before the step's first one; None when the step recorded none."""
    row = conn.execute(
        text(
            """with step as (
                   select rc.id, rc.symbol, rc.decision_id, rc.reason, rc.numbers
                   from audit.risk_checks rc join audit.decisions d on d.decision_id = rc.decision_id
                   where rc.run_id = :r and rc.account = :a and d.as_of = :t and rc.check_name = 'drawdown'
                     and rc.numbers ->> 'level' is not null)
               select s.symbol, s.decision_id, s.reason, s.numbers,
                      (select p.numbers ->> 'level' from audit.risk_checks p
                       where p.account = :a and p.check_name = 'drawdown' and p.numbers ->> 'level' is not null
                         and p.id < (select min(id) from step)
                       order by p.id desc limit 1) as previous
               from step s order by s.id desc limit 1"""
        ),
        {"r": run_id, "a": account, "t": as_of},
    ).first()
    return None if row is None else DrawdownStep._make(row)


# The columns of each table a decision records, with their SQL types (a ``VALUES`` list outside ``INSERT`` is not
# typed by the target table); ``agents.recording``'s ``decision_values``, ``output_rows``, ``check_rows`` and
# ``lineage_rows`` give the values in this order (the replay's bulk writer, ``agents.audit_buffer``, copies the same rows).
DECISION_COLUMNS = (("decision_id", "text"), ("run_id", "text"), ("account", "text"), ("symbol", "text"),
                    ("timeframe", "text"), ("as_of", "timestamptz"), ("action", "text"), ("score", "double precision"),
                    ("config_version", "text"), ("dbt_invocation_id", "text"), ("git_sha", "text"),
                    ("inputs", "jsonb"))  # fmt: skip
OUTPUT_COLUMNS = (("run_id", "text"), ("decision_id", "text"), ("agent", "text"), ("symbol", "text"),
                  ("as_of", "timestamptz"), ("model", "text"), ("prompt_hash", "text"), ("input_ref", "jsonb"),
                  ("output", "jsonb"), ("skipped", "boolean"), ("tokens", "integer"), ("latency_ms", "integer"))  # fmt: skip
CHECK_COLUMNS = (("run_id", "text"), ("decision_id", "text"), ("account", "text"), ("symbol", "text"),
                 ("check_name", "text"), ("approved", "boolean"), ("reason", "text"), ("numbers", "jsonb"))  # fmt: skip
CONFIG_COLUMNS = (("config_version", "text"), ("config", "jsonb"), ("run_id", "text"))  # audit.decision_configs
LINEAGE_COLUMNS = (("run_id", "text"), ("child_table", "text"), ("child_id", "text"), ("parent_table", "text"),
                   ("parent_key", "jsonb"))  # fmt: skip


class DecisionRows(NamedTuple):
    """One decision's rows for ``insert_decisions``: the ``DECISION_COLUMNS`` row, its agent outputs, risk checks and
    lineage edges (rows in ``OUTPUT_COLUMNS``, ``CHECK_COLUMNS``, ``LINEAGE_COLUMNS`` order) and the configuration
    its version names (a ``CONFIG_COLUMNS`` row, or None)."""

    decision: Sequence[Any]
    outputs: Sequence[Sequence[Any]] = ()
    checks: Sequence[Sequence[Any]] = ()
    lineage: Sequence[Sequence[Any]] = ()
    config: Sequence[Any] | None = None


def _child_insert(
    st: Statement, name: str, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
) -> str:
    """``name as (insert into table (...) select ... from (values ...) where its decision was inserted, in order)``:
    each row of ``rows`` is the table's values, then its decision's id and its number. Every column is cast to its
    type, since a ``VALUES`` list outside ``INSERT`` is not typed by the target table; inserted by number, as the
    semi-join with ``d`` may be planned as a hash join that emits them in another order (ids follow the rows)."""
    casts = dict(enumerate(sql_type for _, sql_type in columns)) | {len(columns): "text", len(columns) + 1: "integer"}
    names = ", ".join(column for column, _ in columns)
    return (
        f"{name} as (insert into {table} ({names}) select {names} from (values {st.values(rows, casts)})"
        f" as v ({names}, owner_, n_) where owner_ in (select decision_id from d) order by n_)"
    )


def insert_decisions(conn: Connection, records: Sequence[DecisionRows]) -> set[str]:
    """Insert each record's decision row (``DECISION_COLUMNS``) and, when it was new, its agent outputs, risk checks
    and lineage edges, in one statement (the audit tables check their references once per statement; a step too wide
    for the driver's limit of bound values in as few statements as keep under it, ``_within_parameter_limit``), rows
    in the order given; the configurations the records name (one row per version, the first given) in the same
    statement unless recorded already (their decisions reference them). A decision recorded already is kept with its
    rows, and its record's other rows are not inserted. Returns the ids of the decisions this call inserted."""
    inserted: set[str] = set()
    for chunk in _within_parameter_limit(records):
        inserted |= _insert_decisions(conn, chunk)
    return inserted


def _parameters(record: DecisionRows) -> int:
    """The values ``record`` binds in ``_insert_decisions``' statement (a child row two more: its decision and its
    number)."""
    children = (*record.outputs, *record.checks, *record.lineage)
    config = 0 if record.config is None else len(record.config)
    return len(record.decision) + config + sum(len(row) + 2 for row in children)


def _within_parameter_limit(records: Sequence[DecisionRows]) -> Iterator[list[DecisionRows]]:
    """``records`` in order, in runs whose statements bind at most ``MAX_PARAMETERS`` values (a record beyond it
    alone: a decision and its rows are never split)."""
    run: list[DecisionRows] = []
    size = 0
    for record in records:
        n = _parameters(record)
        if run and size + n > MAX_PARAMETERS:
            yield run
            run, size = [], 0
        run.append(record)
        size += n
    if run:
        yield run


def _insert_decisions(conn: Connection, records: Sequence[DecisionRows]) -> set[str]:
    """``insert_decisions`` of ``records`` in one statement."""
    st = Statement()
    names = ", ".join(column for column, _ in DECISION_COLUMNS)
    parts = []
    configs: dict[Any, Sequence[Any]] = {}  # one row per version, the first given
    for r in records:
        if r.config is not None:
            configs.setdefault(r.config[0], r.config)
    if configs:
        parts.append(f"c as ({_config_insert(st, list(configs.values()))})")
    rows = [r.decision for r in records]
    parts.append(
        f"d as (insert into audit.decisions ({names}) values {st.values(rows, {11: 'jsonb'})}"
        " on conflict (decision_id) do nothing returning decision_id)"
    )
    for name, table, columns, children in (
        ("a", "audit.agent_outputs", OUTPUT_COLUMNS, [(r.decision[0], r.outputs) for r in records]),
        ("r", "audit.risk_checks", CHECK_COLUMNS, [(r.decision[0], r.checks) for r in records]),
        ("l", "audit.lineage", LINEAGE_COLUMNS, [(r.decision[0], r.lineage) for r in records]),
    ):
        # each row with its decision's id and its number
        numbered = [(*row, owner, n) for n, (owner, row) in enumerate((o, row) for o, rows in children for row in rows)]
        if numbered:
            parts.append(_child_insert(st, name, table, columns, numbered))
    sql = "with " + ",\n".join(parts) + "\nselect decision_id from d"
    return {str(row[0]) for row in st.execute(conn, sql)}


def insert_decision_configs(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Record each decision configuration of ``rows`` (``CONFIG_COLUMNS``: version, the configuration as JSON text,
    the run recording it) unless its version is recorded already; before the decisions that reference them."""
    if rows:
        st = Statement()
        st.execute(conn, _config_insert(st, rows))


def _config_insert(st: Statement, rows: Sequence[Sequence[Any]]) -> str:
    """``insert into audit.decision_configs`` of ``rows`` (``CONFIG_COLUMNS``), a version recorded already kept."""
    names = ", ".join(column for column, _ in CONFIG_COLUMNS)
    return (f"insert into audit.decision_configs ({names}) values {st.values(rows, {1: 'jsonb'})}"
            " on conflict (config_version) do nothing")  # fmt: skip


def decision_config(conn: Connection, config_version: str) -> dict[str, Any] | None:
    """The decision configuration recorded under ``config_version``; None when there is none (or it was not
    recorded: a version backfilled from decisions that did not keep it)."""
    row = conn.execute(
        text("select config from audit.decision_configs where config_version = :v"), {"v": config_version}
    ).first()
    return None if row is None else row[0]


class DecisionHead(NamedTuple):
    """A recorded decision without its inputs (what a rerun of the same decision needs, without reading the JSON)."""

    account: AccountId
    symbol: Symbol
    timeframe: str
    as_of: datetime
    action: str
    score: float


class RecordedOpinion(NamedTuple):
    """An agent's recorded output for a decision, as its opinion is rebuilt from it."""

    agent: str
    symbol: Symbol
    as_of: datetime
    model: str | None
    prompt_hash: str | None
    skipped: bool
    output: dict[str, Any]


def decision_head(conn: Connection, decision_id: str) -> DecisionHead | None:
    """The decision ``decision_id`` without its inputs; None when it is not recorded."""
    row = conn.execute(
        text("select account, symbol, timeframe, as_of, action, score from audit.decisions where decision_id = :d"),
        {"d": decision_id},
    ).first()
    return None if row is None else DecisionHead._make(row)


def recorded_opinions(conn: Connection, decision_id: str) -> list[RecordedOpinion]:
    """The decision's agent outputs in the order recorded."""
    rows = conn.execute(
        text(
            "select agent, symbol, as_of, model, prompt_hash, skipped, output from audit.agent_outputs "
            "where decision_id = :d order by id"
        ),
        {"d": decision_id},
    )
    return [RecordedOpinion._make(r) for r in rows]


def recorded_decision_ids(conn: Connection, decision_ids: Sequence[str]) -> set[str]:
    """Which of ``decision_ids`` are already recorded."""
    rows: Sequence[Any] = conn.execute(
        text("select decision_id from audit.decisions where decision_id = any(:d)"), {"d": list(decision_ids)}
    ).scalars().all()  # fmt: skip
    return {str(r) for r in rows}


def opinions_of_runs(conn: Connection, run_ids: Sequence[str]) -> list[tuple[str, str, bool]]:
    """(agent, action, skipped) of every agent output recorded with a decision of ``run_ids``."""
    rows = conn.execute(
        text(
            """select o.agent, coalesce(o.output->>'action', 'hold'), o.skipped
               from audit.agent_outputs o join audit.decisions d on d.decision_id = o.decision_id
               where d.run_id = any(:runs)"""
        ),
        {"runs": list(run_ids)},
    ).all()
    return [(str(r[0]), str(r[1]), bool(r[2])) for r in rows]
