"""`alphaloom console`: the operator console (web pages over the audit trail) and its users.

This face wires execution's cancel-on-kill-switch into the console (the core console may not import execution).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from alphaloom.cli._app import app, console, engine
from alphaloom.settings import Settings, get_settings
from alphaloom.settings import prefect_api_url as configured_prefect_api_url

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

console_app = typer.Typer(no_args_is_help=False, add_completion=False, invoke_without_command=True,
                          help="The operator console: Now, Decisions, Risk, Runs, Actions.")  # fmt: skip
app.add_typer(console_app, name="console")


def cancel_open_orders_hook(reason: str) -> dict[str, object]:
    """What the kill switch does on top of blocking sends: cancel the orders still open at every broker."""
    from execution.killswitch import cancel_open_orders_now

    settings = get_settings()
    if not settings.ops.kill_switch_cancels_open_orders:
        return {"skipped": "ALPHALOOM_KILL_SWITCH_CANCELS_OPEN_ORDERS is false"}
    summary = cancel_open_orders_now(engine(), settings, reason, source="console")
    return {"cancelled": len(summary.cancelled), "foreign": len(summary.foreign),
            "slices_cancelled": len(summary.slices_cancelled), "errors": summary.errors}  # fmt: skip


def build_console(settings: Settings, host: str, prefect_api_url: str | None = None) -> FastAPI:
    """The console app for ``host``, with the kill switch's cancel hook and the Prefect API (when one is known)."""
    from alphaloom.console.actions import ConsoleActions
    from alphaloom.console.app import ConsoleConfig, create_app

    api = prefect_api_url or configured_prefect_api_url()
    actions = ConsoleActions(engine(), on_kill_switch_engaged=cancel_open_orders_hook, prefect_api_url=api)
    ui = api.removesuffix("/").removesuffix("/api") if api else None
    return create_app(ConsoleConfig(engine(), settings, actions, host=host, prefect_ui=ui))


@console_app.callback()
def run_console(
    ctx: typer.Context,
    host: str = typer.Option(None, help="Bind address (default: ALPHALOOM_CONSOLE_HOST, 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default: ALPHALOOM_CONSOLE_PORT, 4300)."),
) -> None:
    """Serve the console until Ctrl-C. On 127.0.0.1 pages are open to local users and actions need a login; bound
    anywhere else every page needs a login."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from alphaloom.console.app import is_loopback

    settings = get_settings()
    host = host or settings.ops.console_host
    port = port if port is not None else settings.ops.console_port
    if not 0 < port < 65536:
        raise typer.BadParameter(f"port must be 1-65535, got {port}")
    with engine().connect() as conn:
        from alphaloom.console.auth import has_users

        users = has_users(conn)
    if not users:
        console.print("no console user yet: pages are viewable on loopback, but nothing can be changed until "
                      "`alphaloom console set-password`", style="yellow")  # fmt: skip
    if not is_loopback(host):
        console.print(f"bound to {host}: every page needs a login; put it behind HTTPS", style="yellow")
    console.print(f"AlphaLoom console: http://{host}:{port}/  (Ctrl-C stops it)", style="bold")
    uvicorn.run(build_console(settings, host), host=host, port=port, log_level="warning")


@console_app.command("set-password")
def set_password(
    username: str = typer.Option("admin", "--user", help="Console user name."),
    password: str = typer.Option(None, help="The password (default: asked twice, not echoed)."),
) -> None:
    """Create a console user or change its password (stored as a scrypt hash in audit.console_users)."""
    from alphaloom.console.auth import set_password as store

    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        with engine().begin() as conn:
            store(conn, username, password)
    except ValueError as exc:
        typer.echo(f"set-password: {exc}", err=True)
        raise typer.Exit(code=2) from None
    console.print(f"console user {username!r} saved (password stored hashed)")


def start_beside(settings: Settings, prefect_api_url: str, host: str | None = None) -> tuple[uvicorn.Server, str]:
    """Run the console in a background thread of ``alphaloom serve`` (same process, same database); returns the
    uvicorn server (``should_exit = True`` stops it) and its URL."""
    import threading

    import uvicorn

    host = host or settings.ops.console_host
    config = uvicorn.Config(build_console(settings, host, prefect_api_url), host=host, port=settings.ops.console_port,
                            log_level="warning")  # fmt: skip
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, name="alphaloom-console", daemon=True).start()
    return server, f"http://{host}:{settings.ops.console_port}/"
