"""The shared Typer app, console and helpers of the ``alphaloom`` command line."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy import Engine

from alphaloom.settings import apply_tool_environment, settings_problem

if settings_problem() is None:  # a bad ALPHALOOM_* value is reported by the callback below, not as a traceback
    apply_tool_environment()

app = typer.Typer(no_args_is_help=True, add_completion=False, help="AlphaLoom: an auditable trading agent.")
# Tables are wide: keep them readable when output goes to a pipe or CI log (rich assumes 80 columns there).
# markup=False: what we print is mostly text from outside (news titles, symbols, reasons, LLM output, file names,
# venue errors), and a headline holding ``[/b]`` must print as written, not crash rich's markup parser. Our own
# emphasis goes through ``style=`` or ``rich.text.Text`` (``styled`` below), never through markup in a string.
console = Console(width=None if sys.stdout.isatty() else 150, markup=False)


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line of plain text parts and ``(text, style)`` parts; no part is ever parsed as markup."""
    return Text.assemble(*parts)


@app.callback()
def _startup() -> None:
    """Checked before every command: the settings are valid, AlphaLoom's home exists."""
    from alphaloom.cli._checks import refuse

    problem = settings_problem()
    if problem is not None:
        refuse(problem)
    apply_tool_environment()


def engine() -> Engine:
    """The migrated engine for the database in force (starting the embedded server when needed)."""
    from alphaloom.db.engine import get_engine

    return get_engine()
