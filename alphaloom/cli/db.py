"""`alphaloom db ...`: the embedded PostgreSQL or the external server at ALPHALOOM_DATABASE_URL."""

from __future__ import annotations

import typer

from alphaloom.cli._app import app, console, engine
from alphaloom.errors import DatabaseError
from alphaloom.settings import get_settings

db_app = typer.Typer(no_args_is_help=True, help="The database: embedded PostgreSQL or ALPHALOOM_DATABASE_URL.")
app.add_typer(db_app, name="db")


@db_app.command("start")
def db_start() -> None:
    """Start (or reuse) the database and migrate it to the latest schema."""
    from alphaloom.db.migrate import head_revision

    current = engine()
    console.print(f"database ready at revision {head_revision()}: {current.url.render_as_string(hide_password=True)}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded Prefect server, then the embedded PostgreSQL (an external server is left alone)."""
    stop_servers()


@app.command()
def stop() -> None:
    """Stop AlphaLoom's embedded servers: Prefect, then PostgreSQL (same as `alphaloom db stop`)."""
    stop_servers()


def stop_servers() -> None:
    from alphaloom.db import embedded
    from alphaloom.ops import prefect_server

    settings = get_settings()
    stopped = prefect_server.stop(settings)
    console.print(f"embedded Prefect server stopped (pid {stopped.pid}, port {stopped.port})" if stopped
                  else "embedded Prefect server was not running")  # fmt: skip
    if settings.database_url is not None:
        console.print("ALPHALOOM_DATABASE_URL is set: the external server is not managed by AlphaLoom.")
        return
    try:
        stopped_pg = embedded.stop(settings.pgdata_dir)
    except DatabaseError as exc:
        console.print(f"embedded PostgreSQL NOT stopped: {exc}", style="red")
        raise typer.Exit(code=1) from None
    console.print("embedded PostgreSQL stopped" if stopped_pg else "embedded PostgreSQL was not running")


@db_app.command("status")
def db_status() -> None:
    """Say which database is in force and whether it runs (exit 1 when the embedded one is stopped)."""
    from alphaloom.db import embedded
    from alphaloom.ops import prefect_server

    settings = get_settings()
    prefect = prefect_server.running(settings)
    console.print("embedded Prefect server: " + (f"running at {prefect.ui_url} (pid {prefect.pid})" if prefect
                                                 else "stopped (started by the next flow command)"))  # fmt: skip
    if settings.database_url is not None:
        from alphaloom.db.engine import database_url

        console.print(f"external: {database_url(settings).render_as_string(hide_password=True)}")
        return
    state = embedded.status(settings.pgdata_dir)
    running = f"running (pid {state.pid}, socket in {state.socket_dir})" if state.running else "stopped"
    created = "initialised" if state.initialised else "not created"
    console.print(f"embedded PostgreSQL in {state.pgdata}: {created}, {running}")
    if not state.running:
        raise typer.Exit(code=1)


@db_app.command("url")
def db_url(show_password: bool = typer.Option(False, help="Include the password.")) -> None:
    """Print the database URL (starting the embedded server if needed)."""
    from alphaloom.db.engine import database_url, libpq_url

    url = database_url()
    plain = url.set(drivername="postgresql")
    typer.echo(libpq_url(url) if show_password else plain.render_as_string(hide_password=True))
