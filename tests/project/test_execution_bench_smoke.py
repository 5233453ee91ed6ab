"""The decision-core benchmark runs at toy size in `make test`, as a smoke test: it must run and report."""

from __future__ import annotations

import subprocess
import sys

from support.paths import ROOT


def test_decision_benchmark_runs_at_toy_size(database_url) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "decision.py"), "--iterations", "12"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "decision core: p50" in result.stdout and "ratio core/baseline p50:" in result.stdout
