"""The crash-recovery worker (``crash_worker.py``) run as a process, and waiting for it to park where it was told."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.paths import ROOT, SUPPORT

WORKER = SUPPORT / "crash_worker.py"


def run_worker(spec: dict, tmp: Path, name: str) -> subprocess.Popen[str]:
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(path)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for(path: Path, proc: subprocess.Popen[str], deadline_s: float = 120) -> None:
    """Wait for the worker to signal it reached its parking point (not a timing assertion)."""
    end = time.monotonic() + deadline_s
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"worker exited early: {proc.stdout.read() if proc.stdout else ''} "
                        f"{proc.stderr.read() if proc.stderr else ''}")  # fmt: skip
        if time.monotonic() > end:
            proc.kill()
            pytest.fail("worker never reached its parking point")
        time.sleep(0.02)
