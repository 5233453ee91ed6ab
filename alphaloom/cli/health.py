"""`alphaloom health` and `alphaloom db backup|restore`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from alphaloom.cli._app import app, console
from alphaloom.cli.db import db_app
from alphaloom.settings import get_settings


@app.command()
def health(
    now: datetime = typer.Option(None, help="Judge data freshness at this UTC time (default: now)."),
    symbols: str = typer.Option(None, help="Comma-separated symbols to check (default: ALPHALOOM_SYMBOLS)."),
) -> None:
    """Database, migrations, Prefect API, last runs per flow, data freshness, kill switch; exit 1 when unhealthy."""
    from alphaloom.db.engine import get_engine
    from alphaloom.ops.health import Check, Report, check_health

    settings = get_settings()
    try:
        engine = get_engine(settings)
    except Exception as exc:  # an unreachable database is a health answer, not a crash
        report = Report([Check("database", "fail", f"{type(exc).__name__}: {exc}"[:300])])
    else:
        when = now.replace(tzinfo=UTC) if now is not None and now.tzinfo is None else now
        chosen = [s.strip() for s in symbols.split(",") if s.strip()] if symbols else None
        report = check_health(engine, settings, now=when, symbols=chosen)
    table = Table("check", "status", "summary", title="alphaloom health")
    colour = {"ok": "green", "warn": "yellow", "fail": "red"}
    for c in report.checks:
        table.add_row(c.name, Text(c.status, style=colour[c.status]), c.summary)
    console.print(table)
    runs = next((c for c in report.checks if c.name == "runs"), None)
    if runs is not None and runs.details:
        last = Table("flow", "last success", "latest finished run", title="runs per flow")
        for flow, info in runs.details.items():
            last.add_row(flow, str(info["last_success"] or "-"), str(info["last_status"] or "-"))
        console.print(last)
    console.print("healthy" if report.healthy else Text("UNHEALTHY", style="red"))
    if not report.healthy:
        raise typer.Exit(code=1)


def _server_major() -> int:
    from sqlalchemy import text

    from alphaloom.db.engine import get_engine

    with get_engine().connect() as conn:
        return int(conn.execute(text("show server_version_num")).scalar_one()) // 10000


@db_app.command("backup")
def db_backup(
    path: Path = typer.Argument(None, help="Dump file (default: $ALPHALOOM_HOME/backups/<db>-<time>.dump)."),
) -> None:
    """pg_dump the database (custom format) with a client matching the server's version."""
    from alphaloom.db.engine import database_url
    from alphaloom.ops.backup import backup

    url = database_url()
    target = path or get_settings().home / "backups" / f"{url.database}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.dump"
    written = backup(url, target, _server_major())
    console.print(f"backup written: {written} ({written.stat().st_size:,} bytes)")


@db_app.command("restore")
def db_restore(
    path: Path = typer.Argument(..., help="A dump written by `alphaloom db backup`."),
    yes: bool = typer.Option(False, "--yes", help="Confirm: objects in the database are dropped and replaced."),
) -> None:
    """pg_restore a dump into the database in force (replacing what is there)."""
    from alphaloom.cli._checks import refuse
    from alphaloom.db.engine import database_url
    from alphaloom.ops.backup import restore

    if not path.is_file():
        refuse(f"PATH {str(path)!r}: no such file" if not path.exists() else f"PATH {str(path)!r} is not a file")
    url = database_url()
    if not yes:
        console.print(f"this replaces the contents of {url.database}; pass --yes to confirm", style="red")
        raise typer.Exit(code=2)
    restore(url, path, _server_major())
    console.print(f"restored {path} into {url.render_as_string(hide_password=True)}")
