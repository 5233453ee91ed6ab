"""Pipeline commands: features, decide, demo (ingest commands live in ``alphaloom.cli.ingest``)."""

from __future__ import annotations

import time
from datetime import datetime

import typer
from rich.table import Table

from alphaloom.cli._app import app, console, engine, flow_run_settings, styled
from alphaloom.cli.ops import print_account, runs
from alphaloom.ops.catalog import stored_series
from alphaloom.settings import get_settings


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
    from alphaloom.cli import _checks

    settings = get_settings()
    _checks.positive(steps, "--steps")
    chosen = _checks.symbol_list(symbols)
    when = _checks.utc(as_of)
    with engine().connect() as conn:
        stored = stored_series(conn, settings.exchange, settings.timeframe)
    if chosen is not None:
        _checks.stored_symbols(chosen, stored, exchange=settings.exchange, timeframe=settings.timeframe)
    if when is not None:
        _checks.known_by(when, chosen or settings.symbols, stored, "--as-of")

    from flows.decide import decide_flow

    with flow_run_settings():
        result = decide_flow(symbols=chosen, as_of=when, steps=steps, dry_run=dry_run, report=True)
    print_decisions(result["details"], title=f"decide run {result['run_id']}" + (" (DRY RUN)" if dry_run else ""),
                    dry_run=dry_run)  # fmt: skip
    for step_time, symbol in result["missing"]:
        console.print(f"{symbol} at {step_time:%Y-%m-%d %H:%M} UTC: no decision, no feature row known by then "
                      "(data missing: ingest and `alphaloom features`)", style="yellow")  # fmt: skip
    for warning in freshness_warnings(result["details"], settings):
        console.print(f"warning: {warning}", style="yellow")
    if result["trading_refused"]:
        console.print("account may not trade this run (see `alphaloom trips`): nothing decided", style="red")
    summary = (f"{result['steps']} step(s), {result['decisions']} decision(s), {result['submitted']} order(s) sent, "
               f"{result['released']} scheduled slice(s) released")  # fmt: skip
    console.print(("DRY RUN (nothing recorded, nothing sent): " if dry_run else "") + summary)


def freshness_warnings(details: list, settings) -> list[str]:  # type: ignore[type-arg, no-untyped-def]
    """A warning per symbol whose newest feature row was older than the stale limit at the decision time."""
    from alphaloom.domain import timeframe_delta

    limit = timeframe_delta(settings.timeframe) * settings.ops.stale_after_bars
    warned: dict[str, str] = {}
    for d in details:
        if d.known_at is not None and d.as_of - d.known_at > limit:
            age = d.as_of - d.known_at
            warned[d.symbol] = (f"{d.symbol}: the newest feature row was {_age(age)} old at {d.as_of:%Y-%m-%d %H:%M} "
                                f"UTC (known {d.known_at:%Y-%m-%d %H:%M} UTC; stale after {_age(limit)}): data is stale")  # fmt: skip
    return list(warned.values())


def _age(delta) -> str:  # type: ignore[no-untyped-def]
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"


def print_decisions(details: list, *, title: str, dry_run: bool = False) -> None:  # type: ignore[type-arg]
    """One row per symbol and step: action, consensus score, each agent's vote, the order or why there was none."""
    from alphaloom.reporting.decision_summary import why

    table = Table("as of (UTC)", "symbol", "action", "score", "votes", "order / reason", "decision id", title=title)
    for d in sorted(details, key=lambda d: (d.as_of, d.symbol)):
        votes = ", ".join(f"{v.agent} {'skipped' if v.skipped else f'{v.action} {v.confidence:.2f}'}" for v in d.votes)
        table.add_row(f"{d.as_of:%Y-%m-%d %H:%M}", d.symbol, d.action, f"{d.score:+.3f}", votes,
                      why(d, dry_run=dry_run), d.decision_id[:12])  # fmt: skip
    console.print(table)


@app.command()
def demo(steps: int = typer.Option(120, help="Hourly decision steps to replay at the end of the data.")) -> None:
    """The whole pipeline end to end on the embedded default: one line per stage with its summary, then tables."""
    from flows.demo import run_demo

    settings = get_settings()
    started = time.perf_counter()
    console.rule("AlphaLoom demo")
    console.print(f"database: {engine().url.render_as_string(hide_password=True)}")
    with console.status("starting") as status:
        stage_started = [time.perf_counter()]

        def progress(message: str) -> None:
            stage_started[0] = time.perf_counter()
            status.update(message)

        def done(stage: str, result: dict) -> None:  # type: ignore[type-arg]
            seconds = time.perf_counter() - stage_started[0]
            console.print(styled(("done", "green"), f" {stage:<15} {demo_summary(stage, result)} ({seconds:.1f} s)"))

        result = run_demo(steps, progress=progress, done=done)
    print_account(settings.account)
    runs(limit=6)
    console.rule("where things are")
    console.print(f"offline data:   {result.data.out_dir}")
    console.print(f"dbt project:    {settings.dbt_project_dir} (log of the build: {result.features.get('log', '-')})")
    console.print("run records:    audit.runs / audit.decisions / audit.orders (`alphaloom runs`, `alphaloom pnl`, "
                  "`alphaloom decisions`)")  # fmt: skip
    console.print(f"demo finished in {time.perf_counter() - started:.1f} s")


def demo_summary(stage: str, result: dict) -> str:  # type: ignore[type-arg]
    """One line saying what a demo stage did."""
    if stage == "data":
        return f"{result['price_files']} price files and {result['news_files']} feeds in {result['dir']}"
    if stage == "ingest_prices":
        files = result["files"]
        total = {k: sum(int(f.get(k) or 0) for f in files) for k in ("staged", "inserted", "unchanged", "quarantined")}
        return (f"{len(files)} files, {total['staged']:,} bars: {total['inserted']:,} inserted, "
                f"{total['unchanged']:,} unchanged, {total['quarantined']:,} quarantined")  # fmt: skip
    if stage == "ingest_news":
        return (f"{result.get('new_items', 0):,} new stories, {result.get('duplicate_items', 0):,} duplicates, "
                f"{result.get('quarantined', 0)} quarantined, {result.get('broken_feeds', 0)} broken feeds")  # fmt: skip
    if stage == "build_features":
        tests = result.get("test", 0) + result.get("unit_test", 0)
        return f"{result.get('model', 0)} models built, {tests} tests passed; dbt log: {result.get('log', '-')}"
    if stage == "decide":
        return (f"{result['steps']} steps, {result['decisions']} decisions, {result['submitted']} orders sent, "
                f"{result['released']} scheduled slices released")  # fmt: skip
    return str(result)
