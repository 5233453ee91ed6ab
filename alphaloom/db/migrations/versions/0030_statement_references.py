"""The audit tables a replay writes in bulk check their references once per statement instead of once per row.

A foreign key checks each inserted row with its own lookup and lock of the referenced row: of a replay's chunk
written with ``COPY`` (per symbol-step a decision, three agent outputs, two lineage edges, about four outcomes and
some agent weights, every one naming its run, most their decision), those per-row checks were about 60% of the
server's time. The foreign keys of those tables (``REFERENCES``) are replaced by statement-level triggers that give
the same guarantee, for every writer:

- Child side (``after insert`` and ``after update``, with the statement's new rows as a transition table): every
  referenced key must exist, else ``foreign_key_violation`` (SQLSTATE 23503, as the foreign key raised), naming the
  constraint, the column and the first missing key. The referenced rows are locked ``for key share`` first, as the
  foreign key's check locks them, so no concurrent transaction deletes them or changes their key before this one
  commits. Once per statement: one query for all of a table's references, one index probe and lock per distinct
  key.
- Referenced side (``after delete``, ``after update``): a key the statement removed (deleted or changed) must not be
  referenced by any row of the child tables, else ``foreign_key_violation`` (the foreign keys' ``no action``).
  ``after truncate``: the child tables must be empty (the referenced table is). ``truncate ... cascade`` no longer
  empties these child tables with it: it fails instead when they hold rows.

Like the foreign keys, the checks run at the end of the statement, after the statement's other writes (a decision
and its outputs inserted by one statement pass). The errors name the constraint replaced (``<table>_<column>_fkey``);
the triggers are ``<table>_refs_insert`` and ``_update`` (function ``audit.<table>_refs``) on a child table,
``<table>_referenced_delete`` and ``_update`` (``audit.<table>_referenced``) and ``<table>_truncated`` on a referenced
one. One difference: in a ``repeatable read`` or ``serializable`` transaction the checks see that transaction's
snapshot (a referenced row committed after it began is not found, one deleted since fails its lock with a
serialization error), where a foreign key's check also saw newer rows; the writers of these tables use ``read
committed``.

Plans: PL/pgSQL keeps a static statement's plan for the session, made at its first use. Planned while a referenced
table was empty (or analysed empty), a lookup would stay a sequential scan of that table as it grows, each one-row
statement of the live decision path reading the whole table (the first version of this migration, reverted). Each
lookup here is a lateral subquery by one key that the planner cannot turn into a join of whole tables, and the
functions run with ``enable_seqscan = off``: whatever the tables' size or statistics when planned, a key is one
index probe, as a foreign key's check. Dynamic SQL (``execute``, planned per call) gave the same plans but cost
about six times the foreign keys' server time on the live path's one-row statements, for the planning.

Downgrade: the triggers and their functions dropped, the foreign keys added back under their former names (validated
against the rows written meanwhile).
"""

from __future__ import annotations

from collections.abc import Iterator

from alembic import op

revision = "0030_statement_references"
down_revision = "0029_decision_configs"
branch_labels = None
depends_on = None

# (child table, column, referenced table, referenced column) in schema audit: the foreign keys replaced
REFERENCES = (
    ("decisions", "run_id", "runs", "run_id"),
    ("decisions", "account", "accounts", "id"),
    ("agent_outputs", "run_id", "runs", "run_id"),
    ("agent_outputs", "decision_id", "decisions", "decision_id"),
    ("lineage", "run_id", "runs", "run_id"),
    ("opinion_outcomes", "decision_id", "decisions", "decision_id"),
    ("opinion_outcomes", "run_id", "runs", "run_id"),
    ("agent_weights", "run_id", "runs", "run_id"),
)


# the check functions' setting: a plan kept for the session reads a referenced table by index, never whole
PROBE = "set enable_seqscan = off"


def _tables(position: int) -> list[str]:
    """The child (0) or referenced (2) tables of ``REFERENCES``, each once, in order."""
    return list(dict.fromkeys(ref[position] for ref in REFERENCES))


def _missing(child: str, column: str, parent: str, key: str) -> str:
    """SQL: the distinct keys of the new rows' ``column`` not in ``parent`` (with the constraint replaced and the
    error's message), each key looked up by one index probe that locks the row found."""
    name = f"{child}_{column}_fkey"
    message = (f"'insert or update on table \"{child}\" violates foreign key constraint \"{name}\": key ({column})=(%s)"
               f" is not present in table \"{parent}\"'")  # fmt: skip
    return (f"select '{name}' as name, format({message}, n.k) as message"
            f" from (select distinct n.{column} as k from new_rows n where n.{column} is not null) n"
            f" left join lateral (select true as found from audit.{parent} p where p.{key} = n.k for key share of p) p"
            f" on true where p.found is null")  # fmt: skip


def _child_check(child: str, refs: list[tuple[str, str, str, str]]) -> str:
    """PL/pgSQL: lock the rows the new rows reference, then raise if one was not there; one query for all ``refs``
    (the referenced rows are all locked unless one is missing)."""
    union = "\n       union all ".join(_missing(*ref) for ref in refs)
    return f"""
  select m.name, m.message into missing, message from ({union}) m limit 1;
  if found then
    raise foreign_key_violation using message = message, constraint = missing, table = '{child}', schema = 'audit';
  end if;"""


def _parent_check(child: str, column: str, parent: str, key: str) -> str:
    """PL/pgSQL: raise when a key the statement removed from ``parent`` (``removed``) is still referenced by ``child``."""
    name = f"{child}_{column}_fkey"
    return f"""
  select c.{column} into missing from audit.{child} c where c.{column} = any(removed) limit 1;
  if found then
    raise foreign_key_violation using
      message = format('update or delete on table "{parent}" violates foreign key constraint "{name}" on table'
                       ' "{child}": key ({key})=(%s) is still referenced', missing),
      constraint = '{name}', table = '{parent}', schema = 'audit';
  end if;"""


def _removed(parent: str, key: str) -> str:
    """PL/pgSQL: the keys of the statement's old rows no longer in ``parent`` (deleted or changed), one index probe
    each; none: done."""
    return f"""
  select array_agg(o.k) into removed from (select distinct o.{key} as k from old_rows o) o
    left join lateral (select true as kept from audit.{parent} p where p.{key} = o.k offset 0) p on true
   where p.kept is null;
  if removed is null then
    return null;
  end if;"""


def _truncate_check(child: str, column: str, parent: str, key: str) -> str:
    """PL/pgSQL: raise when ``child`` holds rows after ``parent`` was emptied."""
    name = f"{child}_{column}_fkey"
    return f"""
  if exists (select from audit.{child}) then
    raise foreign_key_violation using
      message = 'truncate of table "{parent}" leaves the rows of table "{child}" referencing it'
                ' (foreign key constraint "{name}"): truncate "{child}" in the same statement',
      constraint = '{name}', table = '{parent}', schema = 'audit';
  end if;"""


def _function(name: str, body: str, declare: str, probe: bool = True) -> str:
    """A trigger function; ``probe``: its plans read a referenced table by index only (``PROBE``)."""
    return (f"create function audit.{name}() returns trigger language plpgsql {PROBE if probe else ''} as $fn$\n"
            f"declare {declare}\nbegin{body}\n  return null;\nend\n$fn$;")  # fmt: skip


def _upgrade() -> Iterator[str]:
    for child, column, _, _ in REFERENCES:
        yield f"alter table audit.{child} drop constraint {child}_{column}_fkey;"
    for child in _tables(0):
        refs = [ref for ref in REFERENCES if ref[0] == child]
        yield _function(f"{child}_refs", _child_check(child, refs), "missing text; message text;")
        for event in ("insert", "update"):
            yield (f"create trigger {child}_refs_{event} after {event} on audit.{child}"
                   f" referencing new table as new_rows for each statement execute function audit.{child}_refs();")  # fmt: skip
    for parent in _tables(2):
        refs = [ref for ref in REFERENCES if ref[2] == parent]
        removed = _removed(parent, refs[0][3]) + "".join(_parent_check(*ref) for ref in refs)
        yield _function(f"{parent}_referenced", removed, "missing text; removed text[];")
        yield _function(f"{parent}_truncated", "".join(_truncate_check(*ref) for ref in refs), "", probe=False)
        for event in ("delete", "update"):
            yield (f"create trigger {parent}_referenced_{event} after {event} on audit.{parent}"
                   f" referencing old table as old_rows for each statement"
                   f" execute function audit.{parent}_referenced();")  # fmt: skip
        yield (f"create trigger {parent}_truncated after truncate on audit.{parent}"
               f" for each statement execute function audit.{parent}_truncated();")  # fmt: skip


def _downgrade() -> Iterator[str]:
    for child in _tables(0):
        yield f"drop function audit.{child}_refs() cascade;"
    for parent in _tables(2):
        yield f"drop function audit.{parent}_referenced() cascade;"
        yield f"drop function audit.{parent}_truncated() cascade;"
    for child, column, parent, key in REFERENCES:
        yield (f"alter table audit.{child} add constraint {child}_{column}_fkey foreign key ({column})"
               f" references audit.{parent} ({key});")  # fmt: skip


UPGRADE = "\n".join(_upgrade())
DOWNGRADE = "\n".join(_downgrade())


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
