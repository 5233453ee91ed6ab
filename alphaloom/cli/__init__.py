"""The ``alphaloom`` command line: the one face above everything (it may import flows; nothing imports it).

Each module registers its commands on the shared app; add a module for a new area and import it here.
"""

from alphaloom.cli import db, explain, health, ops, pipeline, serve  # noqa: F401  (importing registers the commands)
from alphaloom.cli._app import app

__all__ = ["app"]

if __name__ == "__main__":
    app()
