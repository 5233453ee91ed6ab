"""docs/ARCHITECTURE.md is the design document the code cites: every "ARCHITECTURE §N" in the repository names one of
its numbered headings, and nothing cites the design document that used to live outside the repository."""

from __future__ import annotations

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
