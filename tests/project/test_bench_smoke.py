"""Benchmarks run at toy size in `make test`, as smoke tests: they must run and report a ratio."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.paths import ROOT


def test_ingest_benchmark_runs_at_toy_size(database_url) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ingest.py"), "--rows", "3000"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ratio ours/raw:" in result.stdout


def test_backtest_benchmark_runs_at_toy_size_with_the_step_path(database_url) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "backtest.py"), "--symbols", "3", "--bars", "400", "--step-bars", "6"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "AlphaLoom fast path:" in result.stdout
    assert "step path (live decide + risk + paper execution, no LLM): 2 symbols x 6 steps" in result.stdout


def test_news_dedupe_benchmark_runs_at_toy_size(database_url) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "news.py"), "--items", "500", "--feeds", "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "items: 500 in 4 feeds -> 300 distinct stories (200 duplicates)" in result.stdout


def test_replay_benchmark_runs_at_toy_size(database_url) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "replay.py"), "--symbols", "2", "--steps", "6"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "team, full audit: " in result.stdout and "symbol-steps/s (goal >= 5,000)" in result.stdout
    assert "last tenth / first tenth step time" in result.stdout and "SMA(10/20) rule, full audit:" in result.stdout


def test_llm_team_benchmark_runs_at_toy_size(database_url) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "llm_team.py"), "--decisions", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "debate live, 2 decisions: LLM calls: 8.00 calls per decision" in result.stdout
    assert "compact replay, 2 decisions: tokens: 0.00 tokens per decision (goal 0) met" in result.stdout
    assert "ratio ours/bare SDK per call:" in result.stdout


@pytest.mark.db  # the benchmark makes its own database on the server in force
def test_scale_benchmark_runs_at_toy_size_on_one_and_two_workers() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale.py"), "--symbols", "2", "--in-sample", "60", "--out-sample", "20"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "speed-up, 2 workers over 1:" in result.stdout and "x (goal >= 1.6 on 2 cores)" in result.stdout
    assert "ms per window (goal <= " in result.stdout and "bar times read per worker" in result.stdout
