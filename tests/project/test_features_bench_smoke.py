"""bench/features.py at toy size, as a smoke test: it must run and report both ratios."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.paths import ROOT


@pytest.mark.dbt  # the benchmark runs dbt
def test_features_benchmark_runs_at_toy_size(database_url) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "features.py"), "--symbols", "4", "--bars", "120",
         "--correlation-symbols", "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ratio b/a:" in result.stdout and "ratio c/b:" in result.stdout
