"""``alphaloom docs``: generate the dbt docs (catalog + lineage graph) and serve them on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import typer

from alphaloom.cli._app import app, console


def generate_docs(target_path: Path | None = None) -> Path:
    """``dbt docs generate`` against the database in force; returns the folder holding index.html and catalog.json."""
    from alphaloom.features.dbt_runner import run_dbt
    from alphaloom.settings import get_settings

    target = target_path or get_settings().dbt_project_dir / "target"
    run_dbt(["docs", "generate"], target_path=target)
    return target


def docs_server(folder: Path, port: int) -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``folder`` bound to 127.0.0.1 only (port 0: any free port); call ``serve_forever``."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@app.command()
def docs(
    port: int = typer.Option(8080, help="Port on 127.0.0.1 to serve the docs on."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve after generating (--no-serve: generate only)."),
) -> None:
    """Generate the dbt docs of the feature catalog (models, columns, tests, lineage) and serve them locally."""
    target = generate_docs()
    console.print(f"dbt docs generated in {target}")
    if not serve:
        return
    server = docs_server(target, port)
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
    console.print(f"serving the dbt docs at {url} (Ctrl-C to stop)")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
