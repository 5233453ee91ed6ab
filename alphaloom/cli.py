"""The ``alphaloom`` command line: the one face above everything (it may import flows; nothing imports it)."""

from __future__ import annotations

import sys
import time
from datetime import datetime

import typer
from rich.console import Console
from rich.table import Table

from alphaloom.settings import apply_tool_environment, get_settings

apply_tool_environment()

app = typer.Typer(no_args_is_help=True, add_completion=False, help="AlphaLoom: an auditable trading agent.")
db_app = typer.Typer(no_args_is_help=True, help="The database: embedded PostgreSQL or ALPHALOOM_DATABASE_URL.")
ingest_app = typer.Typer(no_args_is_help=True, help="Ingest prices and news.")
app.add_typer(db_app, name="db")
app.add_typer(ingest_app, name="ingest")
# Tables are wide: keep them readable when output goes to a pipe or CI log (rich assumes 80 columns there).
console = Console(width=None if sys.stdout.isatty() else 150)


def _engine():
    from alphaloom.db.engine import get_engine

    return get_engine()


@db_app.command("start")
def db_start() -> None:
    """Start (or reuse) the database and migrate it to the latest schema."""
    from alphaloom.db.migrate import head_revision

    engine = _engine()
    console.print(f"database ready at revision {head_revision()}: {engine.url.render_as_string(hide_password=True)}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded server (an external server is left alone)."""
    from alphaloom.db import embedded

    settings = get_settings()
    if settings.database_url is not None:
        console.print("ALPHALOOM_DATABASE_URL is set: the external server is not managed by AlphaLoom.")
        return
    stopped = embedded.stop(settings.pgdata_dir)
    console.print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")


@db_app.command("status")
def db_status() -> None:
    """Say which database is in force and whether it runs (exit 1 when the embedded one is stopped)."""
    from alphaloom.db import embedded

    settings = get_settings()
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


@ingest_app.command("prices")
def ingest_prices_cmd(
    paths: list[str] = typer.Argument(None, help="CSV/Parquet files (default: offline data)."),
) -> None:
    """Ingest price files into raw.ohlcv; bad rows go to raw.quarantine with the reason."""
    from flows.ingest_prices import ingest_prices

    table = Table("file", "staged", "inserted", "unchanged", "revisions", "quarantined", title="ingest_prices")
    for r in ingest_prices(paths or None):
        table.add_row(*(str(r.get(k, "")) for k in ("file", "staged", "inserted", "unchanged", "revisions")),
                      str(r.get("quarantined", "")))  # fmt: skip
    console.print(table)


@ingest_app.command("news")
def ingest_news_cmd(
    feeds: list[str] = typer.Argument(None, help="Feed files or URLs (default: offline data)."),
) -> None:
    """Ingest RSS/Atom feeds into raw.news (one row per story, one sighting per feed)."""
    from flows.ingest_news import ingest_news

    console.print(ingest_news(feeds or None))


@app.command()
def features() -> None:
    """Build the feature marts with dbt (`dbt build`: models, data tests, unit tests)."""
    from flows.build_features import build_features

    console.print(build_features())


@app.command("decide")
def decide_cmd(
    symbols: str = typer.Option(None, help="Comma-separated symbols (default: ALPHALOOM_SYMBOLS)."),
    as_of: datetime = typer.Option(None, help="Decision time, UTC (default: now)."),
    steps: int = typer.Option(1, help="Decide at this many bar closes ending at --as-of."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Decide and show, but record and send nothing."),
) -> None:
    """Run the decision flow now (paper broker)."""
    from datetime import UTC

    from flows.decide import decide_flow

    chosen = [s.strip() for s in symbols.split(",")] if symbols else None
    when = as_of.replace(tzinfo=UTC) if as_of is not None and as_of.tzinfo is None else as_of
    console.print(decide_flow(symbols=chosen, as_of=when, steps=steps, dry_run=dry_run))


@app.command()
def runs(limit: int = typer.Option(15, help="How many runs to list.")) -> None:
    """List recent flow runs from audit.runs."""
    from alphaloom.portfolio import recent_runs

    with _engine().connect() as conn:
        rows = recent_runs(conn, limit)
    table = Table("run_id", "flow", "status", "started", "seconds", "error", title="audit.runs")
    for r in rows:
        seconds = f"{r['seconds']:.1f}" if r["seconds"] is not None else ""
        table.add_row(str(r["run_id"]), str(r["flow"]), str(r["status"]), f"{r['started_at']:%Y-%m-%d %H:%M:%S}",
                      seconds, (r["error"] or "")[:60])  # fmt: skip
    console.print(table)


@app.command("kill-switch")
def kill_switch(
    state: str = typer.Argument("status", help="on | off | status"),
    reason: str = typer.Option("manual", help="Why (recorded)."),
) -> None:
    """Engage, release or show the kill switch (stored in the database, checked before every submit)."""
    import getpass

    from alphaloom.guards import kill_switch_state, set_kill_switch

    if state not in ("on", "off", "status"):
        raise typer.BadParameter(f"expected on, off or status, got {state!r}")
    with _engine().begin() as conn:
        if state != "status":
            set_kill_switch(conn, state == "on", reason, f"cli:{getpass.getuser()}")
        current = kill_switch_state(conn)
    console.print(
        f"kill switch {'ON' if current.engaged else 'off'} ({current.reason}; by {current.changed_by or '-'})"
    )


@app.command()
def pnl(account: str = typer.Option(None, help="Account id (default: ALPHALOOM_ACCOUNT).")) -> None:
    """Positions marked to the last close, cash, equity and P&L."""
    _print_account(account or get_settings().account)


def _print_account(account: str) -> None:
    from alphaloom.domain import timeframe_delta
    from alphaloom.portfolio import account_view, recent_orders

    settings = get_settings()
    bar = f"{int(timeframe_delta(settings.timeframe).total_seconds())} seconds"
    with _engine().connect() as conn:
        view = account_view(conn, account, exchange=settings.exchange, timeframe=settings.timeframe, bar=bar)
        orders = recent_orders(conn, account, 10)
    if view is None:
        console.print(f"account {account!r} does not exist yet (run a decision first)")
        raise typer.Exit(code=1)
    table = Table("symbol", "quantity", "avg price", "mark", "market value", "unrealized", "realized",
                  title=f"positions of {account} ({view.base_currency})")  # fmt: skip
    for p in view.positions:
        table.add_row(p.symbol, f"{p.quantity:f}", f"{p.avg_price:,.2f}", f"{p.mark:,.2f}" if p.mark else "-",
                      f"{p.market_value:,.2f}", f"{p.unrealized_pnl:,.2f}", f"{p.realized_pnl:,.2f}")  # fmt: skip
    console.print(table)
    recent = Table("client order id", "symbol", "side", "quantity", "status", "fill price", "fee", "time",
                   title="latest orders")  # fmt: skip
    for o in orders:
        recent.add_row(str(o["client_order_id"]), str(o["symbol"]), str(o["side"]), f"{o['quantity']:f}",
                       str(o["status"]), f"{o['price']:,.4f}" if o["price"] is not None else "-",
                       f"{o['fee']:,.4f}" if o["fee"] is not None else "-",
                       f"{o['ts']:%Y-%m-%d %H:%M}" if o["ts"] is not None else "-")  # fmt: skip
    console.print(recent)
    console.print(
        f"orders {view.orders}, fills {view.fills}, fees paid {view.fees_paid:,.2f} | cash {view.cash:,.2f} | "
        f"equity {view.equity:,.2f} | P&L {view.pnl:+,.2f} on {view.starting_cash:,.2f} starting cash"
    )


@app.command()
def demo(steps: int = typer.Option(120, help="Hourly decision steps to replay at the end of the data.")) -> None:
    """The whole pipeline end to end on the embedded default, then a summary."""
    from flows.demo import run_demo

    settings = get_settings()
    started = time.perf_counter()
    console.rule("AlphaLoom demo")
    engine = _engine()
    console.print(f"database: {engine.url.render_as_string(hide_password=True)}")
    result = run_demo(steps, progress=lambda msg: console.print(f"[bold]>[/bold] {msg}"))

    prices = Table("file", "bars", "inserted", "unchanged", "quarantined", title="ingest_prices")
    for r in result.prices:
        prices.add_row(str(r["file"]).rsplit("/", 1)[-1], str(r.get("staged", 0)), str(r.get("inserted", 0)),
                       str(r.get("unchanged", 0)), str(r.get("quarantined", 0)))  # fmt: skip
    console.print(prices)
    console.print(f"ingest_news: {result.news}")
    console.print(f"build_features: {result.features}")
    console.print(f"decide: {result.decisions}")
    _print_account(settings.account)
    runs(limit=6)
    console.rule("where things are")
    console.print(f"offline data:   {result.data.out_dir}")
    console.print(f"dbt project:    {settings.dbt_project_dir} (artifacts in {settings.dbt_project_dir / 'target'})")
    console.print("run records:    audit.runs / audit.decisions / audit.orders (`alphaloom runs`, `alphaloom pnl`)")
    console.print(f"demo finished in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    app()
