"""The ``alphaloom`` command line: the one face above everything (it may import flows; nothing imports it).

Each module registers its commands on the shared app; add a module for a new area and import it here.
"""

from alphaloom.cli import (  # noqa: F401  (importing registers the commands; _collector first, before any library)
    _collector,
    accounts,
    backtest,
    console,
    db,
    decisions,
    docs,
    explain,
    health,
    ingest,
    ops,
    pipeline,
    serve,
    trading,
)
from alphaloom.cli._app import app

__all__ = ["app"]

if __name__ == "__main__":
    app()
