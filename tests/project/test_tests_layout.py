"""The tests' layout (ARCHITECTURE §2, README "Development"): test folders mirror the source, each with a conftest.py
saying what it tests, and no two test modules share a basename (pytest's default import mode imports a module by its
basename, with no ``__init__.py`` to tell two apart)."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from support.paths import ROOT

TESTS = ROOT / "tests"
# folders under tests/ that hold no test modules: the shared helpers and the recorded responses
NOT_TESTS = {"support", "fixtures", "__pycache__"}
# the test folders that mirror a source package, down to its subpackages
MIRRORED = ("agents", "execution", "alphaloom")


def _test_folders() -> list[Path]:
    return sorted(
        p
        for p in TESTS.rglob("*")
        if p.is_dir() and not NOT_TESTS & set(p.relative_to(TESTS).parts) and any(p.glob("test_*.py"))
    )


def test_every_test_folder_has_a_conftest_saying_what_it_tests() -> None:
    folders = _test_folders()
    assert len(folders) >= 20, folders
    missing = []
    for folder in folders:
        conftest = folder / "conftest.py"
        if not conftest.is_file() or not ast.get_docstring(ast.parse(conftest.read_text(encoding="utf-8"))):
            missing.append(str(folder.relative_to(ROOT)))
    assert not missing, f"no conftest.py with a docstring in: {missing}"


def test_each_subfolder_of_a_mirrored_package_is_a_source_folder() -> None:
    strays = [
        str(folder.relative_to(ROOT))
        for folder in _test_folders()
        if folder.relative_to(TESTS).parts[0] in MIRRORED and not (ROOT / folder.relative_to(TESTS)).is_dir()
    ]
    assert not strays, f"test folders with no source folder of the same path: {strays}"


def test_no_two_test_modules_share_a_basename_and_no_package_markers() -> None:
    modules = [p for p in TESTS.rglob("test_*.py") if not NOT_TESTS & set(p.relative_to(TESTS).parts)]
    assert len(modules) >= 100, len(modules)
    shared = sorted(name for name, n in Counter(p.name for p in modules).items() if n > 1)
    assert not shared, f"test module basenames used twice: {shared}"
    markers = sorted(str(p.relative_to(ROOT)) for p in TESTS.rglob("__init__.py") if "support" not in p.parts)
    assert not markers, f"__init__.py in test folders (the layout has none): {markers}"
