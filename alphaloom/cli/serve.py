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
    """Run the worker and the deployments of prefect.yaml on top of the embedded Prefect server (state in AlphaLoom's
    PostgreSQL; started when not running), print the UI URL, and run until Ctrl-C, which stops the worker; the server
    stays for the other commands (`alphaloom stop` stops it)."""
    from alphaloom.cli._checks import refuse
    from alphaloom.db.engine import database_url
    from alphaloom.ops import prefect_server
    from alphaloom.ops.serve import local_prefect

    if port is not None and not 0 < port < 65536:
        refuse(f"--port must be 1-65535, got {port}")
    settings = get_settings()
    overrides = {k: v for k, v in (("ops.serve_host", host), ("ops.serve_port", port)) if v is not None}
    current = prefect_server.running(settings)
    if (
        current is not None
        and overrides
        and (current.host, current.port) != (host or current.host, port or current.port)
    ):
        console.print(f"the embedded Prefect server already runs on {current.host}:{current.port}; stop it "
                      "first (`alphaloom stop`) to move it", style="red")  # fmt: skip
        raise typer.Exit(code=2)
    console.print("starting the embedded Prefect server" if current is None else "using the embedded Prefect server")
    state = prefect_server.ensure_running(settings.model_copy(update=overrides), database_url(settings))
    stack = local_prefect(settings, database_url(settings), state)
    try:
        if deploy:
            console.print(f"deploying prefect.yaml to work pool {settings.ops.serve_work_pool}")
            deployed, skipped = stack.deploy(settings.ops.serve_work_pool)
            console.print(f"deployed: {', '.join(deployed)}")
            if skipped:
                console.print(f"skipped (flow file not in this checkout): {', '.join(skipped)}", style="yellow")
        if worker:
            stack.start_worker(settings.ops.serve_work_pool)
        if with_console:
            from alphaloom.cli.console import start_beside

            _, console_url = start_beside(settings, stack.api_url)
            console.print(styled((f"operator console: {console_url}", "bold")))
        console.print(
            styled(
                (f"Prefect UI: {state.ui_url}", "bold"),
                f"  (API {state.api_url}; Ctrl-C stops the worker; logs in {stack.log_dir})",
            )
        )
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(child.poll() is None for child in stack.children.values()) and prefect_server.read_state(settings):
            time.sleep(1)
        dead = [name for name, child in stack.children.items() if child.poll() is not None] or ["server"]
        console.print(f"{', '.join(dead)} exited; see {stack.log_dir}", style="red")
        raise typer.Exit(code=1)
    except KeyboardInterrupt:
        console.print("stopping the worker (the Prefect server keeps running: `alphaloom stop`)")
    finally:
        stack.stop()
