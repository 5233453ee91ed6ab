"""docs/ARCHITECTURE.md is the design document the code cites: every "ARCHITECTURE §N" in the repository names one of
its numbered headings, and nothing cites the design document that used to live outside the repository. What it and
the README name in the repository (paths, modules, `file::function`) exists, so a move that forgets them fails here."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path


def _root() -> Path:
    # the repository root, wherever in tests/ this module lives
    return next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())


ROOT = _root()
DOC = ROOT / "docs" / "ARCHITECTURE.md"
# What the code is: the packages, tests, benchmarks, the dbt project and the top-level project files.
SEARCHED = ("alphaloom", "agents", "execution", "flows", "tests", "bench", "dbt", "docker", "docs")
TOP_FILES = ("README.md", "Makefile", "Dockerfile", "prefect.yaml", "pyproject.toml", "docker-compose.yml")
SUFFIXES = {".py", ".sql", ".yml", ".yaml", ".md", ".toml", ".html", ".txt", ".cfg", ".ini", ".sh"}
SKIPPED_DIRS = {"__pycache__", "target", "dbt_packages", "logs", ".venv", ".alphaloom", "node_modules"}
HEADING = re.compile(r"^#{1,6}\s+§(\d+)\s+\S", re.M)
# "ARCHITECTURE §4", "ARCHITECTURE.md §4", "ARCHITECTURE §3, §4 and §6"
CITATION = re.compile(r"ARCHITECTURE(?:\.md)?\s+(§\d+(?:(?:\s*,\s*|\s+and\s+)§\d+)*)")
SECTION = re.compile(r"§(\d+)")
OLD_CITATION = re.compile("DESIGN" + r"(?:\.md)?\s+§")
README = ROOT / "README.md"
# The top-level folders a named path or module may start with, and the packages a bare name (`deciding.py` in the
# row of `agents/`, `ops/kill_switch.py` in the row of `alphaloom/`) is resolved against.
TOP_DIRS = ("alphaloom", "agents", "execution", "flows", "tests", "bench", "dbt", "docker", "docs")
PACKAGES = ("alphaloom", "agents", "execution", "flows")
FILE_SUFFIXES = (".py", ".sql", ".yml", ".yaml", ".toml", ".md", ".html", ".cfg")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_PACKAGE = "(?:" + "|".join(PACKAGES) + ")"
_TOP_DIR = "(?:" + "|".join(TOP_DIRS) + ")"
MODULE = re.compile(_PACKAGE + r"(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
# in running text (the README's settings table names modules without backticks): not part of a path or a file name
BARE_MODULE = re.compile(r"(?<![\w./~-])" + _PACKAGE + r"(?:\.[a-z_][a-z0-9_]*)+\b(?![./]\w)")
BARE_PATH = re.compile(r"(?<![\w./~-])" + _TOP_DIR + r"/[\w./-]*[\w/]")


def _files() -> Iterator[Path]:
    yield from (ROOT / name for name in TOP_FILES if (ROOT / name).is_file())
    for top in SEARCHED:
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and path.suffix in SUFFIXES and not SKIPPED_DIRS & set(path.relative_to(ROOT).parts):
                yield path


def _sections() -> list[int]:
    return [int(n) for n in HEADING.findall(DOC.read_text(encoding="utf-8"))]


def _citations() -> dict[str, set[int]]:
    cited: dict[str, set[int]] = {}
    for path in _files():
        for match in CITATION.finditer(path.read_text(encoding="utf-8", errors="replace")):
            numbers = {int(n) for n in SECTION.findall(match.group(1))}
            cited.setdefault(str(path.relative_to(ROOT)), set()).update(numbers)
    return cited


def test_the_sections_are_numbered_in_order_from_one() -> None:
    sections = _sections()
    assert sections, f"{DOC} has no '## §N Title' headings"
    assert sections == list(range(1, len(sections) + 1)), sections


def test_every_cited_section_is_a_heading_of_the_architecture_document() -> None:
    sections = set(_sections())
    cited = _citations()
    assert sum(len(numbers) for numbers in cited.values()) >= 10, "the code's citations were not found"
    unknown = {path: sorted(numbers - sections) for path, numbers in cited.items() if numbers - sections}
    assert not unknown, f"cited sections missing from docs/ARCHITECTURE.md: {unknown}"


def test_the_document_refers_only_to_its_own_sections() -> None:
    sections = set(_sections())
    text = HEADING.sub("", DOC.read_text(encoding="utf-8"))
    referred = {int(n) for n in SECTION.findall(text)}
    assert referred <= sections, sorted(referred - sections)


def test_nothing_cites_the_design_document_outside_the_repository() -> None:
    stale = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _files()
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OLD_CITATION.search(line)
    ]
    assert not stale, f"cite docs/ARCHITECTURE.md (ARCHITECTURE §N) instead: {stale}"


def _spans(document: Path) -> list[str]:
    """The code spans of a document outside its fenced blocks (the pipeline picture names flows, not files)."""
    return CODE_SPAN.findall(FENCE.sub("", document.read_text(encoding="utf-8")))


def _is_path(span: str) -> bool:
    return re.fullmatch(r"[\w./-]+", span) is not None and ("/" in span or span.endswith(FILE_SUFFIXES))


def _test_files(name: str) -> list[Path]:
    """Test files by basename anywhere under tests/, so moving tests into folders keeps the references good."""
    return sorted(p for p in (ROOT / "tests").rglob(name) if not SKIPPED_DIRS & set(p.relative_to(ROOT).parts))


def _resolve(path: str) -> list[Path]:
    """Where a named repository path is: from the root, relative to a package, or (a test file) under tests/."""
    name = path.rstrip("/")
    found = [ROOT / name] + [ROOT / package / name for package in PACKAGES if name.split("/")[0] not in TOP_DIRS]
    found = [p for p in found if (p.is_dir() if path.endswith("/") else p.exists())]
    if not found and Path(name).name.startswith("test_") and name.endswith(".py"):
        found = _test_files(Path(name).name)
    return found


def _defined(path: Path) -> set[str]:
    """The names a module defines or imports at the top, and the functions and classes anywhere in it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def _module_exists(dotted: str) -> bool:
    """`execution.orders.state` is a module or package; `alphaloom.domain.bar_close` a name defined in one."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:end])
        module = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if module.is_file():
            rest = parts[end:]
            return not rest or (len(rest) == 1 and rest[0] in _defined(module))
    return False


def _broken_references(spans: list[str]) -> list[str]:
    broken = []
    for span in spans:
        if "::" in span:
            file, _, name = span.partition("::")
            files = _resolve(file)
            if not files:
                broken.append(f"{span}: no file {file}")
            elif not any(name.split(".")[0] in _defined(f) for f in files):
                broken.append(f"{span}: {file} defines no {name}")
        elif _is_path(span):
            if not _resolve(span):
                broken.append(f"{span}: no such path")
        elif MODULE.fullmatch(span) and not _module_exists(span):
            broken.append(f"{span}: no such module")
    return broken


def test_every_path_module_and_test_the_architecture_document_names_exists() -> None:
    spans = _spans(DOC)
    named = [s for s in spans if "::" in s or _is_path(s) or MODULE.fullmatch(s)]
    assert len(named) >= 50, f"the document's references were not found: {named}"
    tests = [s for s in spans if "::" in s and Path(s.partition("::")[0]).name.startswith("test_")]
    assert len(tests) >= 15 and all(s.partition("::")[2].startswith("test_") for s in tests), tests
    broken = _broken_references(spans)
    assert not broken, "docs/ARCHITECTURE.md names what is not in the repository:\n" + "\n".join(broken)


def _in_repository(span: str) -> bool:
    """A path that starts at the repository's root (the README also names paths in the home and market symbols)."""
    return not _is_path(span) or span.split("/")[0] in TOP_DIRS or span in TOP_FILES


def test_every_module_and_path_the_readme_names_exists() -> None:
    text = README.read_text(encoding="utf-8")
    named = [n for n in _spans(README) + BARE_MODULE.findall(text) + BARE_PATH.findall(text) if _in_repository(n)]
    assert any(MODULE.fullmatch(n) for n in named) and any(_is_path(n) for n in named), "no references found"
    broken = _broken_references(named)
    assert not broken, "README.md names what is not in the repository:\n" + "\n".join(sorted(set(broken)))


def test_the_reference_check_finds_what_is_missing() -> None:
    # the check above could pass by finding nothing: a name that is gone must be reported
    broken = _broken_references(
        [
            "execution/orders.py",
            "fatfinger.py",
            "execution.orders.gone",
            "alphaloom.domain.no_such_name",
            "tests/test_execution.py::test_gone",
            "execution/submit.py::execute",
            "execution.orders.state",
            "tests/test_docs_architecture.py::test_the_reference_check_finds_what_is_missing",
            "ops/kill_switch.py",
            "alphaloom/db/",
        ],
    )
    assert [b.split(":")[0] for b in broken] == [
        "execution/orders.py",
        "fatfinger.py",
        "execution.orders.gone",
        "alphaloom.domain.no_such_name",
        "tests/test_execution.py",
    ]
