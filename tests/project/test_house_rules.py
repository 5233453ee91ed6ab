"""Issue 19's house rules that a scan of the source can keep: order status written in one place, one exception tree,
account modes and order types named by their enums, typed account and symbol ids at the order boundary."""

from __future__ import annotations

import ast
import re
import typing
from collections.abc import Iterator
from pathlib import Path

from support.paths import ROOT

PACKAGES = ("alphaloom", "agents", "execution", "flows")


def _sources() -> Iterator[tuple[str, str]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # a migration reshapes stored rows once, before any order moves
            yield path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8")


def _squeezed(source: str) -> str:
    return re.sub(r"\s+", " ", source.lower())


def test_only_the_order_store_writes_an_orders_status() -> None:
    # ARCHITECTURE §7: every status change goes through execution/orders/state.py's transition table, applied by the
    # order stores (the database one and a replay's in-memory one); an UPDATE of audit.orders anywhere else would move an order the table never saw
    writers = sorted(
        name for name, source in _sources() if re.search(r"update audit\.orders\b(?!_)", _squeezed(source))
    )
    assert writers == ["execution/orders/memory_store.py", "execution/orders/store.py"]


def test_the_memory_order_store_checks_its_moves_with_the_same_table() -> None:
    # a replay's in-memory store (the OrderStore port's other side) applies the database store's check_moves
    store = (ROOT / "execution/orders/memory_store.py").read_text(encoding="utf-8")
    assert "check_moves(" in store


def test_the_order_store_checks_every_status_change_with_the_transition_table() -> None:
    store = (ROOT / "execution/orders/store.py").read_text(encoding="utf-8")
    assert "from execution.orders.state import" in store and "transition(" in store


def _exception_classes(tree: ast.AST) -> Iterator[tuple[str, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = {
                b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else "" for b in node.bases
            }
            if bases & {"Exception", "BaseException"} or any(b.endswith("Error") for b in bases):
                yield node.name, node.lineno


# Our own HTTP client of a venue (alphaloom/venues/<venue>_client.py) raises its vendor's failure, as an SDK would;
# that venue's error table (alphaloom/venues/<venue>_errors.py) translates it into alphaloom.errors at the adapter.
VENDOR_CLIENT = re.compile(r"alphaloom/venues/\w+_client\.py")


def test_every_public_exception_is_in_the_one_exception_tree() -> None:
    # alphaloom/errors.py is the one vocabulary callers handle (ARCHITECTURE §2); a module may keep a private
    # (underscore) exception for its own control flow, raised and caught inside it
    stray = [
        f"{name}:{line} {cls}"
        for name, source in _sources()
        if name != "alphaloom/errors.py"
        for cls, line in _exception_classes(ast.parse(source))
        if not cls.startswith("_") and not VENDOR_CLIENT.fullmatch(name)
    ]
    assert stray == []


def test_every_error_in_the_tree_is_raised_somewhere() -> None:
    # an error nothing raises (as RiskDeniedError once was) promises callers a case that never happens
    import alphaloom.errors as errors

    names = [n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, Exception)]
    corpus = "\n".join(source for name, source in _sources() if name != "alphaloom/errors.py")
    bases = {n for n in names if any(v.__base__.__name__ == n for v in vars(errors).values() if isinstance(v, type))}
    unraised = [n for n in names if n not in bases and not re.search(rf"raise {n}\b", corpus)]
    assert unraised == []


def test_account_modes_are_compared_through_account_mode_not_bare_text() -> None:
    # execution/accounts/registry.py's AccountMode names the modes; a bare "paper"/"live"/"shadow" compared with a
    # mode elsewhere would silently miss a renamed or added mode
    pattern = re.compile(r"mode\s*(?:==|!=|(?:not\s+)?in)\s*\(?\s*['\"](?:paper|live|shadow)['\"]|mode=['\"]paper['\"]")
    found = [name for name, source in _sources() if pattern.search(source)]
    assert found == []


def test_order_types_are_compared_through_order_type_not_bare_text() -> None:
    pattern = re.compile(r"order_type\s*(?:==|!=|(?:not\s+)?in)\s*\(?\s*['\"](?:market|limit|stop_loss_limit)['\"]")
    found = [name for name, source in _sources() if pattern.search(source)]
    assert found == []


def test_orders_carry_typed_account_and_symbol_ids() -> None:
    # the domain's order types say which text is an account and which a symbol, as they say which is a decision id
    from alphaloom import domain
    from execution.brokers import base

    for cls in (domain.OrderIntent, domain.Decision, domain.Order, domain.Position, base.OrderRequest):
        hints = typing.get_type_hints(cls)
        assert hints["account"] is domain.AccountId, cls.__name__
        assert hints["symbol"] is domain.Symbol, cls.__name__
    assert typing.get_type_hints(domain.Fill)["symbol"] is domain.Symbol


def test_the_source_scan_sees_the_packages() -> None:
    names = {name for name, _ in _sources()}
    assert "execution/orders/store.py" in names and "alphaloom/errors.py" in names
    assert not any(Path(n).parts[0] == "tests" for n in names)


# Pure helpers that read any text as a symbol or account (a typed id is a str, so they take both).
TEXT_HELPERS = {
    "agents/risk/context.py::equity_mark_row",
    "agents/risk/correlation.py::cluster_of",
    "agents/risk/correlation.py::cluster_in",  # cluster_of on arrays: the matrix labels are text
    "agents/risk/portfolio.py::asset_class_of",
    "execution/accounts/reconcile.py::base_currency_of",
}
TYPED_IDS = {"account": "AccountId", "symbol": "Symbol"}


def test_execution_risk_and_records_take_typed_account_and_symbol_ids() -> None:
    # (the domain's order types: test_orders_carry_typed_account_and_symbol_ids; its Bar, Signal and AgentOpinion, the
    # agents' side, keep text for now) where an account or a symbol crosses into execution/, agents/risk/ or alphaloom/records/ it is an AccountId /
    # Symbol: text from outside (a CLI argument, a setting, a row) is converted where it enters, not passed through
    bare = []
    for name, source in _sources():
        if not name.startswith(("execution/", "agents/risk/", "alphaloom/records/")):
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                where, args = f"{name}::{node.name}", [*node.args.args, *node.args.kwonlyargs]
                annotated = [(a.arg, a.annotation) for a in args]
            elif isinstance(node, ast.ClassDef):
                where = f"{name}::{node.name}"
                annotated = [(s.target.id, s.annotation) for s in node.body
                             if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]  # fmt: skip
            else:
                continue
            for arg, annotation in annotated:
                if arg in TYPED_IDS and annotation is not None and where not in TEXT_HELPERS:
                    text = ast.unparse(annotation)
                    if re.fullmatch(r"str( \| None)?", text):
                        bare.append(f"{where}({arg}: {text})")
    assert bare == []
