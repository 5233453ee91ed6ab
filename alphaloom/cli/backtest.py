"""`alphaloom backtest` and `alphaloom report RUN_ID`: replay the decision code over history, and report any run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from alphaloom.cli._app import app, console, engine
from alphaloom.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy import Connection


def _metrics_table(metrics: dict[str, object], title: str) -> Table:
    table = Table("metric", "value", title=title, min_width=len(title) + 4)  # a run id stays on one line
    for key, value in metrics.items():
        table.add_row(key.replace("_", " "), f"{value:,.4f}" if isinstance(value, float) else str(value))
    return table


@app.command()
def backtest(
    symbols: str = typer.Option(None, help="Comma-separated symbols (default: ALPHALOOM_SYMBOLS)."),
    end: datetime = typer.Option(None, help="Last decision time, UTC (default: the newest stored bar close)."),
    steps: int = typer.Option(168, help="Bar closes to replay, ending at --end."),
    llm_live: bool = typer.Option(False, "--llm-live", help="Let the LLM analyst call its endpoint on cache misses."),
    llm_max_calls: int = typer.Option(100, help="With --llm-live: at most this many endpoint calls in the run."),
    llm_max_tokens: int = typer.Option(None, help="With --llm-live: token budget of the run (default: setting)."),
    allow_exposure: bool = typer.Option(
        False, "--allow-exposure", help="Run the LLM over dates before its training cutoff (flagged in the report)."
    ),
    strategy: str = typer.Option("team", help="team (every agent votes) or sma_cross (only the SMA crossover)."),
    fast: int = typer.Option(10, help="sma_cross: fast SMA length in bars."),
    slow: int = typer.Option(30, help="sma_cross: slow SMA length in bars."),
    fill_at: str = typer.Option(None, help="next_open or close (default: ALPHALOOM_BACKTEST_FILL_AT)."),
    audit: str = typer.Option(
        "full", help="full (every audit row), decisions (only audit.decisions rows) or none (only what orders need)."
    ),
    shards: int = typer.Option(
        None,
        help="Split the symbols into N groups, each a backtest on its own paper account (cache-only LLM), run "
        "as tasks on the flows' task runner (ALPHALOOM_DASK_ADDRESS).",
    ),
) -> None:
    """Replay the live decision code step by step over history on a fresh paper account, then write a report."""
    from alphaloom.cli import _checks
    from alphaloom.errors import ConfigError, DataUnavailableError
    from alphaloom.ops.catalog import stored_series

    settings = get_settings()
    _checks.positive(steps, "--steps")
    _checks.one_of(strategy, "--strategy", ("team", "sma_cross"))
    if strategy == "sma_cross" and not 1 <= fast < slow:
        _checks.refuse(f"--fast and --slow must satisfy 1 <= fast < slow, got fast={fast} slow={slow}")
    if fill_at is not None:
        _checks.one_of(fill_at, "--fill-at", ("next_open", "close"))
    _checks.one_of(audit, "--audit", ("full", "decisions", "none"))
    if shards is not None:
        _checks.positive(shards, "--shards")
        if llm_live or allow_exposure:
            _checks.refuse("--shards runs every shard with the cache-only LLM: drop --llm-live and --allow-exposure")
    chosen = _checks.symbol_list(symbols)
    when = _checks.utc(end)
    with engine().connect() as conn:
        stored = stored_series(conn, settings.exchange, settings.timeframe)
    if chosen is not None:
        _checks.stored_symbols(chosen, stored, exchange=settings.exchange, timeframe=settings.timeframe)
    if when is not None:
        _checks.known_by(when, chosen or settings.symbols, stored, "--end")

    if shards is not None:
        _sharded(chosen, shards, end=when, steps=steps, strategy=strategy, sma_fast=fast, sma_slow=slow,
                 fill_at=fill_at, audit=audit)  # fmt: skip
        return
    from flows.backtest import backtest_flow

    try:
        result = backtest_flow(symbols=chosen, end=when, steps=steps, llm_live=llm_live, llm_max_calls=llm_max_calls,
                               llm_max_tokens=llm_max_tokens, allow_exposure=allow_exposure, strategy=strategy,
                               sma_fast=fast, sma_slow=slow, fill_at=fill_at, audit=audit)  # fmt: skip
    except (ConfigError, DataUnavailableError, ValueError) as exc:
        console.print(str(exc), style="red")
        raise typer.Exit(code=1) from None
    keys = ("total_return", "annualised_return", "sharpe", "sortino", "max_drawdown", "trades", "win_rate",
            "llm_calls", "llm_tokens")  # fmt: skip
    with engine().connect() as conn:
        net = _net_of_llm(conn, str(result["run_id"]), str(result["account"]), float(result["total_return"]))
    shown = {"total_return": result["total_return"], **net, **{k: result[k] for k in keys}}
    console.print(_metrics_table(shown, f"backtest {result['run_id']}"))
    if result["exposed"]:
        console.print("LLM exposed to its training data (--allow-exposure): flagged in the report", style="yellow")
    console.print(f"report: {result['report']}")


def _sharded(symbols: list[str] | None, shards: int, **arguments: object) -> None:
    """``alphaloom backtest --shards N``: the ``backtest_shards`` flow, a row per shard."""
    from alphaloom.errors import ConfigError, DataUnavailableError
    from flows.backtest_shards import backtest_shards_flow

    try:
        result = backtest_shards_flow(symbols=symbols, shards=shards, **arguments)
    except (ConfigError, DataUnavailableError, ValueError) as exc:
        console.print(str(exc), style="red")
        raise typer.Exit(code=1) from None
    table = Table("shard", "symbols", "run id", "account", "total return", "trades", "report",
                  title=f"backtest_shards {result['run_id']}")  # fmt: skip
    for n, shard in enumerate(result["shards"], start=1):  # type: ignore[arg-type]
        table.add_row(str(n), ", ".join(shard["symbols"]), str(shard["run_id"]), str(shard["account"]),
                      f"{float(shard['total_return']):,.4f}", str(shard["trades"]), str(shard["report"]))  # fmt: skip
    console.print(table)


@app.command()
def report(run_id: str = typer.Argument(..., help="A backtest or decision run id (see `alphaloom runs`).")) -> None:
    """Write the HTML report (and PNGs) of a run that traded: equity, drawdown, P&L per asset, trades."""
    from alphaloom.cli._checks import refuse
    from alphaloom.errors import DataUnavailableError
    from alphaloom.records.runs import find_run
    from alphaloom.reporting.run_report import build_run_report

    settings = get_settings()
    with engine().connect() as conn:
        run = find_run(conn, run_id)
    if run is None:
        refuse(f"no such run {run_id!r} (see `alphaloom runs`)")
    if run.flow == "walk_forward":
        refuse(f"run {run_id} is a walk-forward run: its report is the page {run.page or '(not written)'}")
    try:
        with engine().connect() as conn:
            result = build_run_report(conn, run_id, exchange=settings.exchange, timeframe=settings.timeframe,
                                      out_dir=settings.home / "reports")  # fmt: skip
    except DataUnavailableError as exc:
        console.print(str(exc), style="red")
        raise typer.Exit(code=1) from None
    shown = result.metrics.as_dict()
    if result.llm is not None and result.net_total_return is not None:
        shown |= {"llm_spend": float(result.llm.total), "net_total_return": result.net_total_return}
    console.print(_metrics_table(shown, f"run {run_id} ({result.account})"))
    console.print(f"report: {result.path}")


def _net_of_llm(conn: Connection, run_id: str, account: str, gross: float) -> dict[str, float]:
    """The run's LLM spend (account's base currency) and its total return net of it."""
    from sqlalchemy import text

    from alphaloom.reporting.llm_spend import net_return, runs_llm_spend

    currency, cash = conn.execute(
        text("select base_currency, starting_cash from audit.accounts where id = :a"), {"a": account}
    ).one()
    llm = runs_llm_spend(conn, [run_id], currency)
    return {"llm_spend": float(llm.total), "net_total_return": net_return(gross, llm.total, cash)}


def _ints(value: str, name: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"{name} must be comma-separated whole numbers, got {value!r}") from None


@app.command("walk-forward")
def walk_forward_command(
    symbols: str = typer.Option(None, help="Comma-separated symbols (default: ALPHALOOM_SYMBOLS)."),
    start: datetime = typer.Option(None, help="First bar, UTC (default: the oldest stored)."),
    end: datetime = typer.Option(None, help="Bars before this time, UTC (default: all stored)."),
    strategy: str = typer.Option(
        "sma_cross", help="sma_cross (the SMA crossover, vectorized) or team (the team's parameters, replayed)."
    ),
    fast: str = typer.Option("5,10,20", help="sma_cross: fast SMA lengths to try (comma-separated)."),
    slow: str = typer.Option("30,50,100", help="sma_cross: slow SMA lengths to try (comma-separated)."),
    thresholds: str = typer.Option("0.2,0.3", help="team: consensus thresholds to try, each in (0, 1]."),
    weights: str = typer.Option("default", help="team: base-weight presets (default, technical, news, equal)."),
    sizing: str = typer.Option("fixed", help="team: sizing modes (fixed, kelly, vol_target, kelly_vol_target)."),
    exits: str = typer.Option("none,2:4", help="team: stop-loss:take-profit percents, or none (no exit armed)."),
    fill_at: str = typer.Option(None, help="team: next_open or close (default: ALPHALOOM_BACKTEST_FILL_AT)."),
    in_sample: int = typer.Option(None, help="In-sample bars per window (default: sma_cross 720, team 168)."),
    out_sample: int = typer.Option(
        None, help="Out-of-sample bars per window and step (default: sma_cross 168, team 48)."
    ),
    objective: str = typer.Option("total_return", help="In-sample objective: total_return or sharpe."),
) -> None:
    """Walk-forward: choose parameters in sample, trade them out of sample, and report the out-of-sample results
    apart; recorded as a run (audit.walk_forward_*) with an HTML page. ``sma_cross``: fast/slow on the vectorized
    path. ``team``: the team's consensus threshold, base weights, sizing and exits, every candidate a replay of the
    live decision code (at most 16 candidates; each out-of-sample stretch is audited in full as its own run)."""
    from alphaloom.cli import _checks

    _checks.one_of(strategy, "--strategy", ("sma_cross", "team"))
    _checks.one_of(objective, "--objective", ("total_return", "sharpe"))
    if strategy == "team":
        _team_walk_forward(symbols, start, end, thresholds, weights, sizing, exits, fill_at, in_sample or 168,
                           out_sample or 48, objective)  # fmt: skip
        return
    from alphaloom.backtest.walkforward_run import (
        WalkForwardSpec,
        record_walk_forward,
        run_walk_forward,
        write_page,
    )
    from alphaloom.errors import DataUnavailableError
    from alphaloom.records.runs import recorded_run

    settings = get_settings()
    chosen = [s.strip() for s in symbols.split(",")] if symbols else settings.symbols
    utc = [None if t is None else t.replace(tzinfo=UTC) if t.tzinfo is None else t for t in (start, end)]
    spec = WalkForwardSpec(chosen, _ints(fast, "--fast"), _ints(slow, "--slow"), in_sample or 720, out_sample or 168,
                           objective, utc[0], utc[1])  # fmt: skip
    try:
        spec.grid  # noqa: B018 - a bad grid is refused before a run is recorded
        with recorded_run(engine(), "walk_forward", spec.parameters()) as run_id:
            with engine().connect() as conn:
                result = run_walk_forward(conn, settings, spec)
            page = write_page(result, spec, settings, run_id)
            with engine().begin() as conn:
                record_walk_forward(conn, run_id, spec, settings, result, page)
    except (ValueError, DataUnavailableError) as exc:
        console.print(str(exc), style="red")
        raise typer.Exit(code=1) from None
    table = Table("out of sample", "fast", "slow", f"in-sample {objective}", f"out-of-sample {objective}",
                  "out-of-sample return", "fills", title=f"walk-forward windows (run {run_id})")  # fmt: skip
    for w in result.windows.to_dict("records"):
        table.add_row(f"{w['out_of_sample_start']:%Y-%m-%d %H:%M} .. {w['out_of_sample_end']:%Y-%m-%d %H:%M}",
                      str(w["fast"]), str(w["slow"]), f"{w[f'in_sample_{objective}']:.4f}",
                      f"{w[f'out_of_sample_{objective}']:.4f}", f"{w['out_of_sample_return']:.4%}",
                      str(w["out_of_sample_fills"]))  # fmt: skip
    console.print(table)
    console.print(_metrics_table(result.out_of_sample.as_dict(), "out-of-sample only (windows chained)"))
    console.print(f"page: {page}")


def _team_walk_forward(
    symbols: str | None, start: datetime | None, end: datetime | None, thresholds: str, weights: str, sizing: str,
    exits: str, fill_at: str | None, in_sample: int, out_sample: int, objective: str,
) -> None:  # fmt: skip
    """``walk-forward --strategy team``: the grid and windows checked (exit 2), then the team walk-forward flow."""
    from alphaloom.backtest.team_grid import parse_team_grid
    from alphaloom.cli import _checks
    from alphaloom.errors import ConfigError, DataUnavailableError

    settings = get_settings()
    try:
        parse_team_grid(thresholds, weights, sizing, exits)
    except ValueError as exc:
        _checks.refuse(str(exc))
    for value, option in ((in_sample, "--in-sample"), (out_sample, "--out-sample")):
        if value < 2:
            _checks.refuse(f"{option} must be at least 2 decision times, got {value}")
    if fill_at is not None:
        _checks.one_of(fill_at, "--fill-at", ("next_open", "close"))
    chosen = _checks.symbol_list(symbols)
    if chosen is not None:
        from alphaloom.ops.catalog import stored_series

        with engine().connect() as conn:
            stored = stored_series(conn, settings.exchange, settings.timeframe)
        _checks.stored_symbols(chosen, stored, exchange=settings.exchange, timeframe=settings.timeframe)

    from flows.team_walk_forward import team_walk_forward_flow

    try:
        result = team_walk_forward_flow(symbols=chosen, start=_checks.utc(start), end=_checks.utc(end),
                                        thresholds=thresholds, weights=weights, sizing=sizing, exits=exits,
                                        in_sample=in_sample, out_sample=out_sample, objective=objective,
                                        fill_at=fill_at)  # fmt: skip
    except (ConfigError, DataUnavailableError, ValueError) as exc:
        console.print(str(exc), style="red")
        raise typer.Exit(code=1) from None
    table = Table("out of sample", "parameters chosen", f"in-sample {objective}", f"out-of-sample {objective}",
                  "out-of-sample return", "fills", "replay run", title=f"team walk-forward windows (run {result['run_id']})")  # fmt: skip
    for w in result["windows"]:  # type: ignore[attr-defined]
        table.add_row(f"{w['out_of_sample_start']:%Y-%m-%d %H:%M} .. {w['out_of_sample_end']:%Y-%m-%d %H:%M}",
                      w["choice"], f"{w[f'in_sample_{objective}']:.4f}", f"{w[f'out_of_sample_{objective}']:.4f}",
                      f"{w['out_of_sample_return']:.4%}", str(w["out_of_sample_fills"]), w["replay_run_id"])  # fmt: skip
    console.print(table)
    metrics = {k: v for k, v in result.items() if k not in ("run_id", "page", "windows")}
    console.print(_metrics_table(metrics, "out-of-sample only (windows chained)"))
    console.print(f"page: {result['page']}")
