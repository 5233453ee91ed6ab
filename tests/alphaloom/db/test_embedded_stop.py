"""`alphaloom db stop` really stops the embedded PostgreSQL (issue 15): a handle left in `.handle_pids.json` by a
process that died does not make the stop a silent no-op."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alphaloom.db import embedded
from alphaloom.settings import PROJECT_ROOT


def _gone(pid: int) -> bool:
    """No such process, or only its exit status left (a zombie waiting for a parent that may never reap it)."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture()
def pgdata(tmp_path_factory) -> Path:
    folder = Path(tmp_path_factory.mktemp("pg", numbered=True)) / "pg"
    yield folder
    if embedded.status(folder).running:  # never leave a server behind
        embedded.stop(folder)


@pytest.mark.db  # starts an embedded PostgreSQL of its own
@pytest.mark.slow
def test_stop_prunes_a_dead_process_handle_and_waits_until_the_server_is_gone(pgdata: Path) -> None:
    # A process starts the server and dies without cleaning up (os._exit skips atexit): its pid stays in the list.
    script = ("import os, sys; from alphaloom.db import embedded; embedded.start(__import__('pathlib').Path(sys.argv[1]));"
              " os._exit(0)")  # fmt: skip
    subprocess.run([sys.executable, "-c", script, str(pgdata)], check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})  # fmt: skip
    handles = json.loads((pgdata / ".handle_pids.json").read_text())
    assert handles and all(not Path(f"/proc/{pid}").exists() for pid in handles)
    before = embedded.status(pgdata)
    assert before.running

    assert embedded.stop(pgdata) is True
    after = embedded.status(pgdata)
    assert not after.running, f"still running (pid {after.pid})"
    assert _gone(before.pid)
    assert embedded.stop(pgdata) is False  # nothing left to stop
