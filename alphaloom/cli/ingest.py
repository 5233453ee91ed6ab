"""Ingest commands: `alphaloom ingest prices|news`, `alphaloom stream`, `alphaloom quality`."""

from __future__ import annotations

import typer
from rich.table import Table

from alphaloom.cli._app import app, console

ingest_app = typer.Typer(no_args_is_help=True, help="Ingest prices and news.")
app.add_typer(ingest_app, name="ingest")


@ingest_app.command("prices")
def ingest_prices_cmd(
    paths: list[str] = typer.Argument(
        None, help="CSV/Parquet files or http(s) URLs of them (default: offline data unless --ccxt is given)."
    ),
    ccxt: list[str] = typer.Option(
        None, "--ccxt", help="exchange:BASE/QUOTE:timeframe (default: ALPHALOOM_CCXT_SOURCES)."
    ),
    quality: bool = typer.Option(True, help="Validate each batch with the GX quality gate before merging."),
) -> None:
    """Ingest price files and ccxt series into raw.ohlcv; bad rows go to raw.quarantine with the reason.

    Exit 2, before anything is ingested, when a path given is not a file (one line each: "no such file", "is a
    directory"); exit 1 when an input failed as a whole (unreadable, unreachable), after the others were ingested.
    """
    from alphaloom.ingest.price_sources import is_url, local_file_problem
    from flows.ingest_prices import ingest_prices

    mistakes = [f"{p}: {problem}" for p in paths or [] if not is_url(p) and (problem := local_file_problem(p))]
    for line in mistakes:
        typer.echo(line, err=True)
    if mistakes:
        raise typer.Exit(code=2)
    table = Table("source", "staged", "inserted", "unchanged", "revisions", "quarantined", "quality", "error",
                  title="ingest_prices")  # fmt: skip
    results = ingest_prices(paths or None, ccxt_sources=ccxt or None, quality=quality)
    for r in results:
        keys = ("file", "staged", "inserted", "unchanged", "revisions", "quarantined", "quality", "error")
        table.add_row(*(str(r.get(k, "")) if r.get(k) is not None else "" for k in keys))
    console.print(table)
    failed = [str(r["error"]) for r in results if r.get("error")]
    for line in failed:
        typer.echo(line, err=True)
    if failed:
        raise typer.Exit(code=1)


@ingest_app.command("news")
def ingest_news_cmd(
    feeds: list[str] = typer.Argument(None, help="Feed files or URLs (default: ALPHALOOM_FEEDS, else offline data)."),
    quality: bool = typer.Option(True, help="Validate the batch with the GX quality gate before merging."),
) -> None:
    """Ingest RSS/Atom feeds into raw.news (one row per story, one sighting per feed); URLs use conditional GET."""
    from flows.ingest_news import ingest_news

    console.print(ingest_news(feeds or None, quality=quality))


@app.command("quality")
def quality_cmd(limit: int = typer.Option(20, help="How many checkpoint results to show.")) -> None:
    """Latest data-quality checkpoint results and where the Great Expectations Data Docs are."""
    from flows.quality import quality_report

    report = quality_report.fn(limit)
    table = Table("when", "suite", "batch", "ok", "rows", "unexpected", "failed expectations", title="quality")
    for r in report["results"]:  # type: ignore[union-attr]
        failed = ", ".join(f"{f['label']} ({f['unexpected_count']})" for f in r["failed"]) or "-"
        table.add_row(f"{r['created_at']:%Y-%m-%d %H:%M:%S}", r["suite"], str(r["batch"])[-60:],
                      "yes" if r["success"] else "NO", str(r["evaluated"]), str(r["unexpected"]), failed)  # fmt: skip
    console.print(table)
    console.print(f"Data Docs (offline, no scripts): {report['offline_docs']}", soft_wrap=True)
    console.print(
        f"Data Docs: {report['data_docs']} (GX's own site: needs internet for its styles and scripts)", soft_wrap=True
    )


@app.command("stream")
def stream_cmd(
    sources: list[str] = typer.Argument(None, help="exchange:BASE/QUOTE:timeframe (default: ALPHALOOM_CCXT_SOURCES)."),
) -> None:
    """Watch live candles over ccxt.pro websockets: closed bars into raw.ohlcv, latest quotes into Redis
    (ALPHALOOM_REDIS_URL; none without it). Reconnects with backoff; Ctrl-C stops."""
    import asyncio

    from alphaloom.cli._app import engine
    from alphaloom.ingest.ccxt_prices import SeriesSpec
    from alphaloom.ingest.stream import run_stream
    from alphaloom.records.runs import recorded_run
    from alphaloom.settings import get_settings

    settings = get_settings()
    specs = [SeriesSpec.parse(s) for s in (sources or settings.ingest.ccxt_sources)]
    if not specs:
        raise typer.BadParameter("no series: pass exchange:BASE/QUOTE:timeframe or set ALPHALOOM_CCXT_SOURCES")
    if not settings.ingest.redis_url:
        console.print("ALPHALOOM_REDIS_URL is not set: no quote cache")
    db = engine()
    with recorded_run(db, "stream", {"sources": [str(s) for s in specs]}) as run_id:
        try:
            asyncio.run(
                run_stream(specs, engine=db, run_id=run_id, redis_url=settings.ingest.redis_url, on_event=console.print)
            )
        except KeyboardInterrupt:
            console.print("stopped")
