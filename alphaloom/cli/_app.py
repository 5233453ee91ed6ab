"""The shared Typer app, console and helpers of the ``alphaloom`` command line."""

from __future__ import annotations

import atexit
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy import Engine

from alphaloom.settings import apply_tool_environment, settings_problem

if settings_problem() is None:  # a bad ALPHALOOM_* value is reported by the callback below, not as a traceback
    apply_tool_environment()

# A command's last act: leave every object to the process's exit instead of a final full garbage collection over the
# ~250,000 objects Prefect, pandas and pydantic leave (up to a second of a short command's run). Registered before any
# flow module is imported, so it runs after their exit handlers (Prefect's log and event workers drain first).
atexit.register(gc.freeze)

app = typer.Typer(no_args_is_help=True, add_completion=False, help="AlphaLoom: an auditable trading agent.")
# Tables are wide: keep them readable when output goes to a pipe or CI log (rich assumes 80 columns there).
# markup=False: what we print is mostly text from outside (news titles, symbols, reasons, LLM output, file names,
# venue errors), and a headline holding ``[/b]`` must print as written, not crash rich's markup parser. Our own
# emphasis goes through ``style=`` or ``rich.text.Text`` (``styled`` below), never through markup in a string.
console = Console(width=None if sys.stdout.isatty() else 150, markup=False)


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line of plain text parts and ``(text, style)`` parts; no part is ever parsed as markup."""
    return Text.assemble(*parts)


# Commands that run Prefect flows: they get the embedded Prefect server (started on first use) before Prefect loads.
FLOW_COMMANDS = frozenset({"decide", "backtest", "features", "ingest", "demo"})


@app.callback()
def _startup(ctx: typer.Context) -> None:
    """Checked before every command: the settings are valid, AlphaLoom's home exists; a flow command gets the
    embedded Prefect server."""
    from alphaloom.cli._checks import refuse

    problem = settings_problem()
    if problem is not None:
        refuse(problem)
    apply_tool_environment()
    if ctx.invoked_subcommand in FLOW_COMMANDS and not any(a in ("--help", "-h") for a in sys.argv):
        ctx.meta["prefect_api"] = use_embedded_prefect()


def use_embedded_prefect() -> str | None:
    """Point this process's Prefect at the home's embedded server (starting it when none answers) and return its API
    URL; None when Prefect is configured otherwise (PREFECT_API_URL set, a test harness, ALPHALOOM_EMBEDDED_PREFECT
    false) or the server cannot start (then the command runs on Prefect's temporary API, with a warning)."""
    from alphaloom.settings import get_settings, prefect_api_url

    settings = get_settings()
    if not settings.ops.embedded_prefect or prefect_api_url():
        return None
    if "prefect" in sys.modules:  # already loaded (e.g. under prefect_test_harness): its settings are in force
        from prefect.settings import get_current_settings

        if get_current_settings().api.url:
            return None
    from alphaloom.db.engine import database_url
    from alphaloom.ops import prefect_server

    try:
        state = prefect_server.ensure_running(settings, database_url(settings))
    except Exception as exc:  # orchestration is a convenience here: the flow still runs on a temporary API
        console.print(f"warning: embedded Prefect server unavailable ({str(exc).splitlines()[0]}); "
                      "using a temporary Prefect API", style="yellow")  # fmt: skip
        return None
    os.environ["PREFECT_API_URL"] = state.api_url
    return state.api_url


# Prefect's flow-run heartbeat (prefect.flow_engine._send_heartbeats): a thread that sends an event every 180 s,
# sleeps in one-second steps and is joined when the run ends, so every run waits up to a second for it to wake. Its
# events serve a zombie-flow automation, which AlphaLoom does not set up; the operator who adds one sets the variable.
HEARTBEAT_VARIABLES = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")


@contextmanager
def flow_run_settings() -> Iterator[None]:
    """Prefect's settings for a flow run a command starts in its own process: no heartbeat thread unless
    ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` asks for one (the run is otherwise the same, recorded by the API and in
    ``audit.runs``). Imports Prefect: enter it after the arguments are checked."""
    if any(os.environ.get(name) for name in HEARTBEAT_VARIABLES):
        yield
        return
    from prefect.settings import temporary_settings

    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        yield


def engine() -> Engine:
    """The migrated engine for the database in force (starting the embedded server when needed)."""
    from alphaloom.db.engine import get_engine

    return get_engine()
