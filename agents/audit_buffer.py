"""A replay's per-step audit rows held in memory and written in bulk (one binary ``COPY`` per table; through staging
tables and one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` statement when some are recorded already), instead of a
few statements per step (ARCHITECTURE §3, §5).

What callers can rely on:

- The rows are those the live step path writes (``agents.recording.record_decision``, ``agents.memory.record_weights``
  and ``insert_outcomes``), with the same values: decisions, their agent outputs, risk checks and lineage edges, the
  agent weights in force and the memory's outcome rows. A kind of row is one ``Kind`` entry and one method that
  appends to it. The decisions' configuration (``audit.decision_configs``, one row per version: once per run) is
  written, unless recorded already, by the first ``flush_decisions`` or ``flush`` that writes a decision using it.
- Idempotent as the live path: a decision already recorded is not inserted again, and its outputs, checks and lineage
  are inserted only with a decision the flush inserted; weights and outcomes already there are kept.
- ``flush(conn)`` writes everything held on ``conn``'s transaction and empties the buffer (``take()`` hands the
  rows held to a buffer of their own, flushed by another thread while this one holds the next);
  ``flush_decisions(conn)`` only the decisions (one ``INSERT``: a step's few rows), their other rows staying held.
  The caller flushes before anything reads the rows: the decisions before execution when the step has intents
  (orders reference their decision), everything before the LLM analyst's similar situations (read from the outcomes
  and decisions) and at the end of each chunk. Rows held when a step fails are never written (the run fails).
- ``mode`` (``alphaloom.reporting.run_report.AUDIT_MODES``): ``full`` keeps every row; ``decisions`` only the
  ``audit.decisions`` rows; ``none`` only the decisions with an approved intent (their orders reference them). The
  risk gate's denials that a mode does not write are counted in ``refusals`` (by check name) for the run's summary.
- ``decision`` trusts that no other writer records the replay's decisions in the meantime (a backtest account is
  created fresh for its run; decisions already recorded are not drafted, ``agents.snapshot.read_snapshot``): it
  reports every decision as recorded. Should one exist anyway, the flush keeps the existing row and its children.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from psycopg.errors import UniqueViolation
from sqlalchemy import Connection

from agents.deciding import DecisionDraft
from agents.memory import AgentWeight, weight_rows
from agents.recording import (
    CHECK_COLUMNS,
    DECISION_COLUMNS,
    LINEAGE_COLUMNS,
    OUTPUT_COLUMNS,
    check_rows,
    config_values,
    decision_values,
    lineage_rows,
    output_rows,
)
from agents.risk.recorder import check_name
from alphaloom.db.batch import column_arrays
from alphaloom.db.copy import copy_rows, create_staging, relaxed_bulk_write
from alphaloom.errors import ConfigError
from alphaloom.records.decisions import insert_decision_configs
from alphaloom.records.memory import OUTCOME_COLUMNS, WEIGHT_COLUMNS, outcome_values
from alphaloom.reporting.run_report import AUDIT_MODES

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class Kind:
    """One kind of row: its table, columns and how the flush inserts it. ``conflict``: the ``ON CONFLICT`` target
    (``None``: no conflict clause); ``owner``: the column naming the decision the row belongs to, inserted only with
    a decision the flush inserted (``None``: independent of decisions)."""

    name: str
    table: str
    columns: tuple[str, ...]
    conflict: str | None = None
    owner: str | None = None

    @property
    def stage(self) -> str:
        return f"alphaloom_stage_{self.name}"


DECISIONS = Kind("decisions", "audit.decisions", tuple(c for c, _ in DECISION_COLUMNS), conflict="decision_id")
OUTPUTS = Kind("agent_outputs", "audit.agent_outputs", tuple(c for c, _ in OUTPUT_COLUMNS), owner="decision_id")
CHECKS = Kind("risk_checks", "audit.risk_checks", tuple(c for c, _ in CHECK_COLUMNS), owner="decision_id")
LINEAGE = Kind("lineage", "audit.lineage", tuple(c for c, _ in LINEAGE_COLUMNS), owner="child_id")
WEIGHTS = Kind("agent_weights", "audit.agent_weights", WEIGHT_COLUMNS, conflict="account, agent, as_of")
OUTCOMES = Kind("opinion_outcomes", "audit.opinion_outcomes", OUTCOME_COLUMNS, conflict="decision_id, agent")
KINDS = (DECISIONS, OUTPUTS, CHECKS, LINEAGE, WEIGHTS, OUTCOMES)  # the decisions first: the others may need them


class AuditBuffer:
    """See the module docstring."""

    def __init__(self, mode: str = "full") -> None:
        if mode not in AUDIT_MODES:
            raise ConfigError(f"audit must be one of {', '.join(AUDIT_MODES)}, got {mode!r}")
        self.mode = mode
        self.refusals: Counter[str] = Counter()
        self._rows: dict[str, list[tuple[Any, ...]]] = {kind.name: [] for kind in KINDS}
        self._inserted: set[str] = set()  # decisions flush_decisions inserted whose other rows are still held
        self._configs: list[tuple[Any, ...]] = []  # configuration rows of the decisions held, written before them
        self._config_versions: set[str] = set()  # the versions held or written already (by this buffer or one taken)

    @property
    def pending(self) -> int:
        """Rows held, all kinds together."""
        return sum(len(rows) for rows in self._rows.values()) + len(self._configs)

    def weights(self, *, account: str, as_of: datetime, run_id: str, weights: Mapping[str, AgentWeight]) -> None:
        """The agent weights in force at ``as_of`` (as ``agents.memory.record_weights``)."""
        if self.mode == "full":
            self._rows[WEIGHTS.name].extend(weight_rows(account=account, as_of=as_of, run_id=run_id, weights=weights))

    @property
    def keeps_outcomes(self) -> bool:
        """Whether ``outcomes`` keeps the rows it is given (the replay's memory builds none otherwise)."""
        return self.mode == "full"

    def outcomes(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Outcome rows (``agents.memory.outcome_record``), as ``agents.memory.insert_outcomes``."""
        if self.keeps_outcomes:
            self._rows[OUTCOMES.name].extend(map(outcome_values, records))

    def decision(self, draft: DecisionDraft) -> bool:
        """A decided symbol's rows (as ``agents.recording.record_decision``); True: it counts as recorded. Only the
        rows the mode writes are read from the draft (it builds them on first read: ``DecisionDraft``)."""
        mode = self.mode
        if mode != "full" and draft.verdicts:  # most decisions propose no order: nothing refused
            self.refusals.update(check_name(v, intent) for intent, verdicts in draft.verdicts
                                 for v in verdicts if not v.approved)  # fmt: skip
        if mode == "none" and not draft.decision.intents:
            return True
        row, rows = draft.row, self._rows  # the row read once (built on first read)
        if mode == "full":
            rows[OUTPUTS.name].extend(output_rows(row, draft.outputs))
            if draft.verdicts:  # most decisions propose no order: no risk check
                rows[CHECKS.name].extend(check_rows(row, draft.verdicts))
            rows[LINEAGE.name].extend(lineage_rows(row, draft.lineage))
        if row.config_version not in self._config_versions and (config := config_values(row)) is not None:
            self._config_versions.add(row.config_version)  # once per run: its decisions share their version
            self._configs.append(config)
        rows[DECISIONS.name].append(decision_values(row))
        return True

    def flush_decisions(self, conn: Connection) -> int:
        """Write the decisions held (``ON CONFLICT DO NOTHING``) and the risk checks of those it inserted, in one
        statement on ``conn``'s transaction (a step's few rows: no ``COPY``); their outputs and lineage stay held for
        ``flush``, which writes those of the decisions this call inserted. The checks go first, as the live path
        records them before execution adds its own. Returns how many decisions it inserted.

        The rows travel as one array per column (``unnest``), so the statement's text is the same at every step: the
        driver parses it once and the server prepares it once, whatever the number of rows."""
        rows = self._rows[DECISIONS.name]
        if not rows:
            return 0
        self._write_configs(conn)
        checks = self._rows[CHECKS.name]
        params = column_arrays("d", DECISION_COLUMNS, rows) | column_arrays("c", CHECK_COLUMNS, checks)
        inserted: Sequence[str] = conn.exec_driver_sql(_FLUSH_DECISIONS_SQL, params).scalars().all()
        self._inserted.update(inserted)
        rows.clear()
        checks.clear()
        return len(inserted)

    def flush(self, conn: Connection) -> int:
        """Write every row held on ``conn``'s transaction and empty the buffer; returns how many decisions were
        inserted.

        A replay's rows are new (its account is fresh, its decisions are not recorded yet): they are copied straight
        into their tables, in binary, one ``COPY`` per table. Where that cannot hold (a decision ``flush_decisions``
        found recorded already, whose other rows are not to be written) or does not (a row is there already: the
        ``COPY`` fails on its unique key and is undone to a savepoint), they go the way that skips such rows: staging
        tables, then one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``. Either way the same rows are written.

        The transaction commits without waiting for its WAL flush (``relaxed_bulk_write``): these are a backtest's
        audit rows, not live money; a server crash can lose only whole transactions from the newest back, so the
        run's completion, recorded after its last flush, is never kept without the rows before it."""
        kinds = [kind for kind in KINDS if self._rows[kind.name]]
        if not kinds:
            return 0
        relaxed_bulk_write(conn)
        self._write_configs(conn)
        inserted = self._copy_new(conn, kinds) if self._all_owners_written() else None
        if inserted is None:
            inserted = self._insert_staged(conn, kinds)
        for kind in kinds:
            self._rows[kind.name].clear()
        self._inserted.clear()
        return inserted

    def take(self) -> AuditBuffer:
        """A buffer of the same mode holding every row this one held (and the decisions ``flush_decisions`` inserted
        whose other rows they are), for another thread to ``flush``; this one is left empty and holds the rows added
        from now (and keeps ``refusals``). Flush the buffer taken before this one's next ``flush_decisions`` or
        ``flush``: the rows held next may reference those taken."""
        taken = AuditBuffer(self.mode)
        taken._rows, self._rows = self._rows, {kind.name: [] for kind in KINDS}
        taken._inserted, self._inserted = self._inserted, set()
        taken._configs, self._configs = self._configs, []
        taken._config_versions = self._config_versions  # the versions it holds are this one's too (flushed first)
        return taken

    def _write_configs(self, conn: Connection) -> None:
        """The configuration rows held, recorded unless there already (a version recorded by an earlier run), before
        the decisions that reference them: one small statement, once per version."""
        if self._configs:
            insert_decision_configs(conn, self._configs)
            self._configs.clear()

    def _all_owners_written(self) -> bool:
        """Whether every row held that belongs to a decision belongs to one held or inserted by ``flush_decisions``
        (a decision that one found recorded already is neither)."""
        key = DECISIONS.columns.index("decision_id")
        owners = self._inserted | {row[key] for row in self._rows[DECISIONS.name]}
        return all(
            row[i] in owners
            for kind in KINDS
            if kind.owner is not None
            for i in (kind.columns.index(kind.owner),)
            for row in self._rows[kind.name]
        )

    def _copy_new(self, conn: Connection, kinds: Sequence[Kind]) -> int | None:
        """Every row held copied into its table (see ``flush``): the number of decisions; None, and nothing written,
        when a row is there already."""
        dbapi = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
        with dbapi.cursor() as cur:
            cur.execute(f"savepoint {_SAVEPOINT}")
            try:
                for kind in kinds:
                    copy_rows(conn, kind.table, kind.columns, self._rows[kind.name], binary=True)
            except UniqueViolation:
                cur.execute(f"rollback to savepoint {_SAVEPOINT}")
                return None
            cur.execute(f"release savepoint {_SAVEPOINT}")
        return len(self._rows[DECISIONS.name])

    def _insert_staged(self, conn: Connection, kinds: Sequence[Kind]) -> int:
        """Every row held through staging tables, those there already skipped (see ``flush``): the number of
        decisions inserted."""
        create_staging(conn, [(kind.stage, kind.table, kind.columns) for kind in kinds], prefix=_STAGE_PREFIX)
        for kind in kinds:
            owner = None if kind.owner is None else kind.columns.index(kind.owner)
            copy_rows(conn, f"pg_temp.{kind.stage}", ("n", "ok", *kind.columns),
                      ((n, owner is not None and row[owner] in self._inserted, *row)
                       for n, row in enumerate(self._rows[kind.name])))  # fmt: skip
        return int(conn.exec_driver_sql(_flush_sql(kinds)).scalar_one())


def _unnest(prefix: str, columns: Sequence[tuple[str, str]]) -> str:
    """Rows from one array parameter per column (``alphaloom.db.batch.column_arrays``; a JSON column's as its text),
    numbered ``n`` in their order, each column of its SQL type. The arrays go in binary (``%b``): the text form of an
    array quotes every ``"`` of the JSON texts in it, hundreds of times slower than the rows themselves."""
    arrays = ", ".join(
        f"cast(%({prefix}{i})b as {'text' if t == 'jsonb' else t}[])" for i, (_, t) in enumerate(columns)
    )
    names = ", ".join(c for c, _ in columns)
    typed = ", ".join(f"cast({c} as jsonb) as {c}" if t == "jsonb" else c for c, t in columns)
    return f"(select {typed}, n from unnest({arrays}) with ordinality as u ({names}, n))"


def _flush_decisions_sql() -> str:
    """``flush_decisions``' statement: the decisions, then the checks of those inserted, each in the order held (the
    checks keep the ids the live path gives them: the semi-join with ``d`` may be planned as a hash join that emits
    them in another order, so they are inserted by number)."""
    decisions, checks = ", ".join(DECISIONS.columns), ", ".join(CHECKS.columns)
    return (f"with d as (insert into audit.decisions ({decisions}) select {decisions}"
            f" from {_unnest('d', DECISION_COLUMNS)} as v order by n"
            " on conflict (decision_id) do nothing returning decision_id),"
            f" r as (insert into audit.risk_checks ({checks}) select {checks} from {_unnest('c', CHECK_COLUMNS)} as v"
            " where decision_id in (select decision_id from d) order by n)"
            " select decision_id from d")  # fmt: skip


_FLUSH_DECISIONS_SQL = _flush_decisions_sql()


# Staging columns ahead of the target's: the order rows were held in, and whether the row's decision was inserted by
# an earlier flush_decisions (its other rows are then inserted with no decision row beside them).
_STAGE_PREFIX = "0::bigint as n, false as ok"
_SAVEPOINT = "alphaloom_audit_copy"


def _flush_sql(kinds: Sequence[Kind]) -> str:
    """One statement: each staging table emptied into its target, in its order (``n``), a decision's other rows only
    when this statement or an earlier ``flush_decisions`` inserted it; selects the count of decisions inserted."""
    parts = []
    decisions = DECISIONS in kinds
    for k in kinds:
        names = ", ".join(k.columns)
        parts.append(f"s_{k.name} as (delete from pg_temp.{k.stage} returning *)")
        where = ""
        if k.owner is not None:
            mine = f" or {k.owner} in (select decision_id from i_{DECISIONS.name})" if decisions else ""
            where = f" where ok{mine}"
        conflict = f" on conflict ({k.conflict}) do nothing" if k.conflict else ""
        returning = " returning decision_id" if k is DECISIONS else ""
        parts.append(f"i_{k.name} as (insert into {k.table} ({names}) select {names} from s_{k.name}{where}"
                     f" order by n{conflict}{returning})")  # fmt: skip
    counted = f"(select count(*) from i_{DECISIONS.name})" if decisions else "0"
    return "with " + ",\n".join(parts) + f"\nselect {counted}"
