"""`alphaloom backtest` and `alphaloom report RUN_ID`: replay the decision code over history, and report any run."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.table import Table

from alphaloom.cli._app import app, console, engine
from alphaloom.settings import get_settings


def _metrics_table(metrics: dict[str, object], title: str) -> Table:
    table = Table("metric", "value", title=title)
    for key, value in metrics.items():
        table.add_row(key.replace("_", " "), f"{value:,.4f}" if isinstance(value, float) else str(value))
    return table


@app.command()
def backtest(
    symbols: str = typer.Option(None, help="Comma-separated symbols (default: ALPHALOOM_SYMBOLS)."),
    end: datetime = typer.Option(None, help="Last decision time, UTC (default: the newest stored bar close)."),
    steps: int = typer.Option(168, help="Bar closes to replay, ending at --end."),
    llm_live: bool = typer.Option(False, "--llm-live", help="Let the LLM analyst call its endpoint."),
) -> None:
    """Replay the live decision code step by step over history on a fresh paper account, then write a report."""
    from flows.backtest import backtest_flow

    chosen = [s.strip() for s in symbols.split(",")] if symbols else None
    when = end.replace(tzinfo=UTC) if end is not None and end.tzinfo is None else end
    result = backtest_flow(symbols=chosen, end=when, steps=steps, llm_live=llm_live)
    keys = ("total_return", "annualised_return", "sharpe", "sortino", "max_drawdown", "trades", "win_rate")
    console.print(_metrics_table({k: result[k] for k in keys}, f"backtest {result['run_id']}"))
    console.print(f"report: {result['report']}")


@app.command()
def report(run_id: str = typer.Argument(..., help="A backtest or decision run id (see `alphaloom runs`).")) -> None:
    """Write the HTML report (and PNGs) of a run that traded: equity, drawdown, P&L per asset, trades."""
    from alphaloom.backtest.reporting import build_run_report
    from alphaloom.errors import DataUnavailableError

    settings = get_settings()
    try:
        with engine().connect() as conn:
            result = build_run_report(conn, run_id, exchange=settings.exchange, timeframe=settings.timeframe,
                                      out_dir=settings.home / "reports")  # fmt: skip
    except DataUnavailableError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=1) from None
    console.print(_metrics_table(result.metrics.as_dict(), f"run {run_id} ({result.account})"))
    console.print(f"report: {result.path}")
