"""Where things are, wherever the test module using them sits: the repository root, this folder (the worker scripts)
and the recorded fixtures."""

from __future__ import annotations

from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
ROOT = SUPPORT.parents[1]
FIXTURES = SUPPORT.parent / "fixtures"
