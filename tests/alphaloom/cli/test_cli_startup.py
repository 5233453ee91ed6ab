"""What a short command pays for beyond its work: the process's exit (the start-up figure itself is in bench/cli.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.paths import ROOT


@pytest.mark.slow  # a Python subprocess importing the stack
def test_a_command_leaves_its_objects_to_the_process_exit_instead_of_a_final_full_collection() -> None:
    # the CLI's exit handlers (run here as at exit) freeze every tracked object: the interpreter's shutdown then skips
    # a full garbage collection over the quarter million objects Prefect, pandas and pydantic leave behind
    program = "import atexit, gc, alphaloom.cli; atexit._run_exitfuncs(); print(gc.get_freeze_count())"
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) > 10_000


def test_a_flow_run_a_command_starts_sends_no_heartbeat_unless_the_operator_asks(prefect_harness, monkeypatch) -> None:
    # the flow engine starts its heartbeat thread (and joins it, up to a second, at the run's end) when this setting
    # is not None; the run itself is the same real Prefect flow run
    from prefect import flow
    from prefect.settings import get_current_settings, temporary_settings

    from alphaloom.cli._app import HEARTBEAT_VARIABLES, flow_run_settings

    @flow
    def heartbeat_setting() -> int | None:
        return get_current_settings().flows.heartbeat_frequency

    for name in HEARTBEAT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with temporary_settings({"flows.heartbeat_frequency": 180}):  # Prefect's own default (the harness turns it off)
        with flow_run_settings():
            assert heartbeat_setting() is None
        assert heartbeat_setting() == 180  # outside
        monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "60")
        with flow_run_settings():  # asked for: Prefect's settings are left as they are
            assert heartbeat_setting() == 180


@pytest.mark.slow  # a Python subprocess importing the stack
def test_starting_a_decision_command_runs_no_full_collection_over_the_libraries_it_imports() -> None:
    # with the interpreter's default thresholds this import ran ~500 young and 4 full collections
    program = "import alphaloom.cli, flows.decide, gc; print(*[s['collections'] for s in gc.get_stats()])"
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    young, _middle, full = map(int, done.stdout.split())
    assert full == 0 and young < 100, done.stdout
