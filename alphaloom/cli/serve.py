"""`alphaloom serve`: a local Prefect server on the project's PostgreSQL, a process worker, and the deployments."""

from __future__ import annotations

import signal
import time

import typer

from alphaloom.cli._app import app, console, styled
from alphaloom.settings import get_settings


@app.command()
def serve(
    host: str = typer.Option(None, help="Bind address (default: ALPHALOOM_SERVE_HOST, 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default: ALPHALOOM_SERVE_PORT, 4200)."),
    worker: bool = typer.Option(True, help="Start a process worker on the work pool."),
    deploy: bool = typer.Option(True, help="Register the deployments of prefect.yaml."),
    with_console: bool = typer.Option(True, "--console/--no-console", help="Also serve the operator console."),
) -> None:
    """Start a Prefect server (state in a `prefect` database on AlphaLoom's PostgreSQL), deploy prefect.yaml,
    start a worker, print the UI URL, and run until Ctrl-C (which stops them all)."""
    from alphaloom.db.engine import database_url
    from alphaloom.serve import local_prefect

    settings = get_settings()
    stack = local_prefect(settings, database_url(settings), host=host, port=port)
    console.print(f"starting the Prefect server on {stack.host}:{stack.port} (logs in {stack.log_dir})")
    stack.start_server()
    try:
        if deploy:
            console.print(f"deploying prefect.yaml to work pool {settings.serve_work_pool}")
            deployed, skipped = stack.deploy(settings.serve_work_pool)
            console.print(f"deployed: {', '.join(deployed)}")
            if skipped:
                console.print(f"skipped (flow file not in this checkout): {', '.join(skipped)}", style="yellow")
        if worker:
            stack.start_worker(settings.serve_work_pool)
        if with_console:
            from alphaloom.cli.console import start_beside

            _, console_url = start_beside(settings, stack.api_url)
            console.print(styled((f"operator console: {console_url}", "bold")))
        console.print(
            styled((f"Prefect UI: {stack.ui_url}", "bold"), f"  (API {stack.api_url}; Ctrl-C stops everything)")
        )
        console.print(f"point the CLI at it with: export PREFECT_API_URL={stack.api_url}")
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(child.poll() is None for child in stack.children.values()):
            time.sleep(1)
        dead = [name for name, child in stack.children.items() if child.poll() is not None]
        console.print(f"{', '.join(dead)} exited; see {stack.log_dir}", style="red")
        raise typer.Exit(code=1)
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        stack.stop()
