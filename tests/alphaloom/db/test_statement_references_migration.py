"""Migration ``0030_statement_references``: the audit tables a replay writes in bulk check their references once per
statement, with the guarantees the foreign keys gave (a missing key refused, a referenced row neither deleted, nor
re-keyed, nor truncated away, the referenced rows locked until the writer commits); the downgrade puts the foreign
keys back."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from support.migrations import database_at, migrate_to

from alphaloom.db import migrate
from alphaloom.db.engine import libpq_url

SEED = """
insert into audit.runs (run_id, flow) values ('r', 'test'), ('r2', 'test');
insert into audit.accounts (id, venue, base_currency, mode) values ('acct', 'paper', 'USDT', 'paper');
"""

DECISION = """insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action, score,
                                           config_version, inputs)
              values (:d, :r, :a, 'X/USDT', '1h', now(), 'hold', 0, 'v', '{}')"""
OUTPUT = """insert into audit.agent_outputs (run_id, decision_id, agent, symbol, as_of, output)
            values (:r, :d, :agent, 'X/USDT', now(), '{}')"""
OUTCOME = """insert into audit.opinion_outcomes (decision_id, agent, account, symbol, as_of, realised_at, horizon_bars,
                                                 action, confidence, entry_price, exit_price, realised_return, score,
                                                 run_id)
             values (:d, :agent, 'acct', 'X/USDT', now(), now(), 1, 'hold', 0, 1, 1, 0, 0, :r)"""
LINEAGE = """insert into audit.lineage (run_id, child_table, child_id, parent_table, parent_key)
             values (:r, 'audit.decisions', 'd', 'raw.ohlcv', '{}')"""
WEIGHT = """insert into audit.agent_weights (account, agent, as_of, weight, scored, run_id)
            values ('acct', 'technical', now(), 1, 0, :r)"""

# (statement, parameters, the constraint named and the missing key) of each reference the migration moves
MISSING = [
    (DECISION, {"d": "x", "r": "no-run", "a": "acct"}, "decisions_run_id_fkey", "(run_id)=(no-run)"),
    (DECISION, {"d": "x", "r": "r", "a": "nobody"}, "decisions_account_fkey", "(account)=(nobody)"),
    (OUTPUT, {"d": "d", "r": "no-run", "agent": "x"}, "agent_outputs_run_id_fkey", "(run_id)=(no-run)"),
    (OUTPUT, {"d": "no-dec", "r": "r", "agent": "x"}, "agent_outputs_decision_id_fkey", "(decision_id)=(no-dec)"),
    (
        OUTCOME,
        {"d": "no-dec", "r": "r", "agent": "news"},
        "opinion_outcomes_decision_id_fkey",
        "(decision_id)=(no-dec)",
    ),
    (OUTCOME, {"d": "d", "r": "no-run", "agent": "news"}, "opinion_outcomes_run_id_fkey", "(run_id)=(no-run)"),
    (LINEAGE, {"r": "no-run"}, "lineage_run_id_fkey", "(run_id)=(no-run)"),
    (WEIGHT, {"r": "no-run"}, "agent_weights_run_id_fkey", "(run_id)=(no-run)"),
]


def _refused(engine: Engine, sql: str, params: dict[str, str] | None = None) -> psycopg.errors.ForeignKeyViolation:
    """The foreign-key violation ``sql`` raises (nothing it wrote kept)."""
    with pytest.raises(IntegrityError) as raised, engine.begin() as conn:
        conn.execute(text(sql), params or {})
    assert isinstance(raised.value.orig, psycopg.errors.ForeignKeyViolation), repr(raised.value.orig)
    return raised.value.orig


def _seed(conn: Connection) -> None:
    conn.exec_driver_sql(SEED)
    conn.execute(text(DECISION), {"d": "d", "r": "r", "a": "acct"})
    conn.execute(text(OUTPUT), {"d": "d", "r": "r", "agent": "technical"})
    conn.execute(text(OUTCOME), {"d": "d", "r": "r", "agent": "technical"})
    conn.execute(text(LINEAGE), {"r": "r"})
    conn.execute(text(WEIGHT), {"r": "r"})


def _guarantees_hold(engine: Engine) -> None:
    """What the foreign keys guaranteed, whichever way the schema gives it."""
    for sql, params, constraint, key in MISSING:
        refused = _refused(engine, sql, params)
        assert refused.diag.constraint_name == constraint
        assert key in str(refused) or key in (refused.diag.message_detail or "")
    # a decision and its outputs in one statement (the live path's insert_decisions): checked at its end
    with engine.begin() as conn:
        conn.execute(text(f"with d as ({DECISION} returning decision_id) {OUTPUT.replace('values (', 'select ')[:-1]}"
                          " from d"), {"d": "d2", "r": "r2", "a": "acct", "agent": "technical"})  # fmt: skip
    # referenced rows neither deleted nor re-keyed, nor emptied by truncate, while rows reference them
    _refused(engine, "delete from audit.decisions where decision_id = 'd'")
    _refused(engine, "update audit.decisions set decision_id = 'moved' where decision_id = 'd'")
    _refused(engine, "delete from audit.runs where run_id = 'r'")
    _refused(engine, "update audit.accounts set id = 'moved'")
    with pytest.raises(DBAPIError, match="truncate"), engine.begin() as conn:
        conn.execute(text("truncate audit.decisions"))
    # a row unreferenced goes; an update that keeps the key passes
    with engine.begin() as conn:
        conn.execute(text("update audit.runs set status = 'completed' where run_id = 'r'"))
        conn.execute(text("delete from audit.agent_outputs where decision_id = 'd2'"))
        conn.execute(text("delete from audit.decisions where decision_id = 'd2'"))
        assert conn.execute(text("select count(*) from audit.decisions")).scalar() == 1


def _writer_locks_what_it_references(engine: Engine) -> None:
    """A writer's referenced rows stay until it commits: a concurrent delete of them waits (here: times out)."""
    with engine.connect() as writer:
        writer.execute(text(DECISION), {"d": "d3", "r": "r2", "a": "acct"})
        with psycopg.connect(libpq_url(engine.url), autocommit=True) as other:
            other.execute("set lock_timeout = '50ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("delete from audit.runs where run_id = 'r2'")
        writer.rollback()


def test_references_are_checked_per_statement_as_the_foreign_keys_checked_them_and_downgrade_restores_them(
    database_url,
) -> None:
    with database_at(database_url, "0029_decision_configs") as engine:
        with engine.begin() as conn:
            _seed(conn)
        assert migrate.upgrade(engine) == migrate.head_revision()
        with engine.connect() as conn:
            left = conn.execute(text("""select conname from pg_constraint where contype = 'f' and conrelid = any(array[
                'audit.decisions', 'audit.agent_outputs', 'audit.lineage', 'audit.opinion_outcomes',
                'audit.agent_weights']::regclass[])""")).scalars().all()  # fmt: skip
        assert left == []  # no per-row check left on these tables
        _guarantees_hold(engine)
        _writer_locks_what_it_references(engine)
        migrate_to(engine, "0029_decision_configs", down=True)
        with engine.connect() as conn:
            restored = set(conn.execute(text("select conname from pg_constraint where contype = 'f'")).scalars())
            triggers = conn.execute(text("select count(*) from pg_trigger where tgname like '%refs%'")).scalar()
        assert {c for _, _, c, _ in MISSING} <= restored
        assert triggers == 0
        _guarantees_hold(engine)
        _writer_locks_what_it_references(engine)


GROWN = 5_000  # decisions g2.. (with their outputs and outcomes) added after the checks were first used
GROW = f"""
insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action, score, config_version,
                             inputs)
select 'g' || i, 'r', 'acct', 'X/USDT', '1h', now(), 'hold', 0, 'v', '{{}}' from generate_series(2, {GROWN} + 1) i;
insert into audit.agent_outputs (run_id, decision_id, agent, symbol, as_of, output)
select 'r', 'g' || i, a, 'X/USDT', now(), '{{}}'
  from generate_series(2, {GROWN} + 1) i, unnest(array['technical', 'news']) a;
insert into audit.opinion_outcomes (decision_id, agent, account, symbol, as_of, realised_at, horizon_bars, action,
                                    confidence, entry_price, exit_price, realised_return, score, run_id)
select 'g' || i, 'technical', 'acct', 'X/USDT', now(), now(), 1, 'hold', 0, 1, 1, 0, 0, 'r'
  from generate_series(2, {GROWN} + 1) i;
"""


def _guarded_statements(n: int) -> list[tuple[str, str, dict[str, str]]]:
    """(what, statement, parameters): one statement of each kind the checks guard, ``n`` making its keys new; each
    touches one row, as the live decision path's statements do."""
    d, g = f"s{n}", f"g{n + 1}"
    return [
        ("decision and its outputs in one statement", f"with d as ({DECISION} returning decision_id) "
         f"{OUTPUT.replace('values (', 'select ')[:-1]} from d", {"d": d, "r": "r", "a": "acct", "agent": "technical"}),
        ("agent output", OUTPUT, {"d": g, "r": "r", "agent": "risk"}),
        ("opinion outcome", OUTCOME, {"d": g, "r": "r", "agent": "news"}),
        ("lineage edge", LINEAGE, {"r": "r"}),
        ("agent weight", WEIGHT.replace("now()", f"now() + interval '{n} days'"), {"r": "r"}),
        ("decision updated", "update audit.decisions set score = 1 where decision_id = :d", {"d": g}),
        ("decision deleted", "delete from audit.decisions where decision_id = :d",
         {"d": f"u{n}"}),
    ]  # fmt: skip


def _sequential_reads(conn: Connection) -> dict[str, tuple[int, int]]:
    """This transaction's sequential scans and the rows they read, so far, per table a check reads by key."""
    tables = ("decisions", "agent_outputs", "opinion_outcomes")
    return {
        table: tuple(conn.execute(
            text("select pg_stat_get_xact_numscans(cast(:t as regclass)),"
                 " pg_stat_get_xact_tuples_returned(cast(:t as regclass))"), {"t": f"audit.{table}"},
        ).one())
        for table in tables
    }  # fmt: skip


def test_a_one_row_statement_reads_referenced_rows_by_key_after_the_tables_grew(database_url) -> None:
    """A session that first used the checks on tables analysed empty, then saw them grow by thousands of rows, checks
    each one-row statement by index: no sequential scan of a table it reads by key (the reverted first version's
    plans, kept from their first use, read all of ``audit.decisions`` for each statement of the live path)."""
    with database_at(database_url, "0029_decision_configs") as engine:
        migrate.upgrade(engine)
        with engine.begin() as conn:  # one session and transaction: no autovacuum refreshes the statistics
            conn.exec_driver_sql("analyze audit.decisions, audit.agent_outputs, audit.opinion_outcomes")  # empty
            conn.exec_driver_sql(SEED)
            for n in (0, 1):
                conn.execute(text(DECISION), {"d": f"u{n}", "r": "r", "a": "acct"})
            conn.execute(text(DECISION), {"d": "g1", "r": "r", "a": "acct"})
            for _, sql, params in _guarded_statements(0):
                conn.execute(text(sql), params)
            conn.exec_driver_sql(GROW)
            scanned = {}
            for what, sql, params in _guarded_statements(1):
                before = _sequential_reads(conn)
                conn.execute(text(sql), params)
                after = _sequential_reads(conn)
                scanned[what] = {t: after[t][1] - before[t][1] for t in after if after[t][0] > before[t][0]}
            assert conn.execute(text("select count(*) from audit.decisions")).scalar() > GROWN
    assert scanned == {what: {} for what in scanned}
