"""What a short command pays for beyond its work: the process's exit (the start-up figure itself is in bench/cli.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_command_leaves_its_objects_to_the_process_exit_instead_of_a_final_full_collection() -> None:
    # the CLI's exit handlers (run here as at exit) freeze every tracked object: the interpreter's shutdown then skips
    # a full garbage collection over the quarter million objects Prefect, pandas and pydantic leave behind
    program = "import atexit, gc, alphaloom.cli; atexit._run_exitfuncs(); print(gc.get_freeze_count())"
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) > 10_000
