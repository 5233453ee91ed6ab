"""Tests of ``alphaloom/cli/``: the ``alphaloom`` command run as a user runs it (typer's runner or a subprocess):
arguments and bad input (one line, exit 2), the process exit of a short command, decide, demo and the keys
commands."""
