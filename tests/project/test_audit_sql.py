"""ARCHITECTURE §3: one repository module per audit table family owns its SQL. Which modules may hold SQL on each
audit table, so that SQL does not spread again: a new statement on a table goes into the module allowed for it.

SQL here is a string literal (docstrings aside) naming ``audit.<table>`` after ``from``, ``join``, ``into``,
``update``, ``exists``, ``table``, ``copy`` or ``truncate``, or a bare ``"audit.<table>"`` passed to a call (the batch
writers take the table by name). The migrations create the tables and are not counted.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from support.paths import ROOT

PACKAGES = ("alphaloom", "agents", "execution", "flows")
_SQL_REF = re.compile(r"\b(?:from|join|into|update|exists|table|copy|truncate)\s+audit\.([a-z_]+)\b", re.IGNORECASE)
_BARE = re.compile(r"^\s*audit\.([a-z_]+)\s*$")

# The repositories: each owns the SQL of its family, writes and reads.
REPOSITORIES: dict[str, set[str]] = {
    "alphaloom.records.runs": {"runs"},
    "alphaloom.records.walk_forward": {"walk_forward_runs", "walk_forward_windows"},
    "alphaloom.records.llm_ledger": {"llm_usage", "llm_cache", "llm_transcripts"},
    "alphaloom.records.memory": {"opinion_outcomes", "agent_weights"},
    "alphaloom.records.equity": {"equity_marks"},
    "alphaloom.records.console": {"console_users", "console_actions"},
    "alphaloom.records.guards": {"guard_trips", "account_halts"},
    "alphaloom.records.orders": {"orders", "order_events", "fills"},
    "alphaloom.records.decisions": {"decisions", "agent_outputs", "risk_checks", "decision_configs"},
    "alphaloom.fx": {"fx_rates"},  # a kernel module: the kernel may not import alphaloom.records
}

# Beside its repository, who else may hold SQL on a table, and why.
# - a repository's join into another family's table (records.runs reads walk_forward_runs' page, the memory scores
#   decisions' agent outputs, the decision listing names its orders);
# - execution/ owns the order, account and money writes (execution.orders.store, being rewritten for speed, also
#   writes decisions' risk checks, equity marks and halts in the order's one statement);
# - the replay's bulk writers (agents.audit_buffer, agents.replay_account) copy the rows the live path writes;
# - flows.backtest (being rewritten) sums its run's LLM usage; reporting.decision_summary reads its decisions' trips;
# - the families without a repository yet (accounts, balances, positions, guard trips, lineage, slices, ...).
ALSO_ALLOWED: dict[str, set[str]] = {
    "account_halts": {"execution.orders.store"},
    "accounts": {
        "agents.replay_account",
        "agents.risk.context",
        "agents.snapshot",
        "alphaloom.cli.backtest",
        "alphaloom.cli.trading",
        "alphaloom.console.actions",
        "alphaloom.console.queries",
        "alphaloom.ops.catalog",
        "alphaloom.reporting.account_summary",
        "alphaloom.reporting.run_report",
        "execution.accounts.reconcile",
        "execution.accounts.registry",
        "execution.accounts.session",
        "execution.accounts.sweep",
        "execution.brokers.factory",
        "execution.orders.sending",
        "execution.orders.store",
        "execution.orders.venue_reports",
    },
    "agent_outputs": {"agents.audit_buffer", "alphaloom.records.memory"},
    "agent_weights": {"agents.audit_buffer"},
    "alembic_version": {"alphaloom.db.migrate"},
    "balances": {
        "agents.replay_account",
        "agents.risk.context",
        "alphaloom.reporting.account_summary",
        "execution.accounts.charges",
        "execution.accounts.reconcile",
        "execution.accounts.registry",
        "execution.orders.store",
    },
    "console_actions": set(),
    "console_users": set(),
    "decisions": {
        "agents.audit_buffer",
        "alphaloom.records.memory",
        "alphaloom.records.runs",
        "execution.orders.store",
        "execution.orders.venue_reports",
        "execution.safety.protective",
    },
    "equity_marks": {"agents.replay_account", "execution.orders.store"},
    "fills": {"execution.orders.store", "execution.orders.venue_reports"},
    "fx_rates": {"alphaloom.records.orders", "execution.orders.store"},
    "guard_trips": {"alphaloom.reporting.decision_summary"},
    "kill_switch": {"alphaloom.ops.kill_switch", "execution.orders.store"},
    "lineage": {
        "agents.audit_buffer",
        "alphaloom.records.orders",
        "alphaloom.reporting.explain",
        "alphaloom.reporting.run_report",
        "execution.orders.store",
    },
    "llm_cache": set(),
    "llm_transcripts": set(),
    "llm_usage": {"flows.backtest"},
    "opinion_outcomes": {"agents.audit_buffer"},
    "order_events": {"execution.accounts.charges", "execution.killswitch", "execution.orders.store"},
    "orders": {
        "alphaloom.records.decisions",
        "execution.accounts.charges",
        "execution.accounts.reconcile",
        "execution.algos.routing",
        "execution.algos.schedule",
        "execution.brokers.factory",
        "execution.brokers.shadow",
        "execution.killswitch",
        "execution.orders.journal",
        "execution.orders.sending",
        "execution.orders.store",
        "execution.orders.venue_reports",
        "execution.safety.fatfinger",
        "execution.safety.protective",
    },
    "positions": {
        "agents.replay_account",
        "agents.risk.context",
        "agents.snapshot",
        "alphaloom.reporting.account_summary",
        "execution.accounts.reconcile",
        "execution.orders.store",
        "execution.orders.venue_reports",
        "execution.safety.protective",
    },
    "protective_exits": {"execution.accounts.sweep", "execution.safety.protective"},
    "reconciliations": {"execution.accounts.reconcile"},
    "venue_charges": {"alphaloom.records.orders", "execution.accounts.charges"},  # no repository yet; fees paid
    "risk_checks": {
        "alphaloom.records.guards",
        "agents.audit_buffer",
        "alphaloom.reporting.run_report",
        "execution.orders.store",
    },
    "route_legs": {"execution.algos.routing"},
    "runs": set(),
    "scheduled_slices": {
        "agents.replay_account",
        "alphaloom.console.queries",
        "execution.algos.schedule",
        "execution.orders.store",
    },
    "sentiment_scores": {"agents.sentiment"},
    "shadow_drift": {"execution.brokers.shadow"},
    "submit_attempts": {
        "execution.algos.routing",
        "execution.brokers.factory",
        "execution.orders.journal",
        "execution.orders.store",
        "execution.orders.venue_reports",
    },
    "walk_forward_runs": {"alphaloom.records.runs"},
    "walk_forward_windows": set(),
}
# a replay's in-memory order store (execution.orders.memory_store) is the other side of the database store's port:
# it reads and bulk-writes the same tables, so wherever the store may hold SQL, it may too
for _modules in ALSO_ALLOWED.values():
    if "execution.orders.store" in _modules:
        _modules.add("execution.orders.memory_store")


def _sql_strings(tree: ast.Module) -> Iterator[str]:
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield from _SQL_REF.findall(node.value)
        elif isinstance(node, ast.JoinedStr):
            parts = [v.value if isinstance(v, ast.Constant) else "{}" for v in node.values]
            yield from _SQL_REF.findall("".join(str(p) for p in parts))
        if isinstance(node, ast.Call):
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    yield from _BARE.findall(arg.value)


def audit_sql_by_table(root: Path = ROOT) -> dict[str, set[str]]:
    """Per audit table, the modules whose string literals hold SQL on it (the migrations left out)."""
    found: dict[str, set[str]] = defaultdict(set)
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            for table in _sql_strings(ast.parse(path.read_text(), str(path))):
                found[table].add(module)
    return found


def test_audit_sql_lives_only_where_its_table_allows() -> None:
    owner = {table: module for module, tables in REPOSITORIES.items() for table in tables}
    stray = [
        f"{module}: SQL on audit.{table} (allowed in {owner.get(table, 'no repository yet')} "
        f"and {sorted(ALSO_ALLOWED.get(table, set()))})"
        for table, modules in sorted(audit_sql_by_table().items())
        for module in sorted(modules)
        if module != owner.get(table) and module not in ALSO_ALLOWED.get(table, set())
    ]
    assert not stray, "\n".join(stray)


def test_every_repository_holds_the_sql_of_its_family() -> None:
    # the allow-list follows the code: a repository that no longer holds its family's SQL is a stale entry
    found = audit_sql_by_table()
    missing = [f"{module}: audit.{table}" for module, tables in REPOSITORIES.items() for table in sorted(tables)
               if module not in found.get(table, set())]  # fmt: skip
    assert not missing, "\n".join(missing)


def test_the_scan_finds_sql_and_skips_prose(tmp_path: Path) -> None:
    package = tmp_path / "agents"
    package.mkdir()
    (package / "probe.py").write_text(
        '"""Reads audit.runs in its docstring only."""\n'
        'Q = "select 1 from audit.runs r join audit.decisions d using (run_id)"\n'
        'def f(conn):\n    insert_rows(conn, "audit.fills", (), [])\n    title = "see audit.orders"\n'
    )
    found = audit_sql_by_table(tmp_path)
    assert found == {"runs": {"agents.probe"}, "decisions": {"agents.probe"}, "fills": {"agents.probe"}}
