"""The shared Typer app, console and helpers of the ``alphaloom`` command line."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from sqlalchemy import Engine

from alphaloom.settings import apply_tool_environment

apply_tool_environment()

app = typer.Typer(no_args_is_help=True, add_completion=False, help="AlphaLoom: an auditable trading agent.")
# Tables are wide: keep them readable when output goes to a pipe or CI log (rich assumes 80 columns there).
console = Console(width=None if sys.stdout.isatty() else 150)


def engine() -> Engine:
    """The migrated engine for the database in force (starting the embedded server when needed)."""
    from alphaloom.db.engine import get_engine

    return get_engine()
