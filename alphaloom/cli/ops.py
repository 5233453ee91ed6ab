"""Operator commands: runs, kill switch, P&L."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from alphaloom.cli._app import app, console, engine
from alphaloom.domain import AccountId
from alphaloom.settings import get_settings

if TYPE_CHECKING:
    from alphaloom.reporting.llm_spend import LlmSpend


@app.command()
def runs(limit: int = typer.Option(15, help="How many runs to list.")) -> None:
    """List recent flow runs from audit.runs."""
    from alphaloom.records.runs import recent_runs

    with engine().connect() as conn:
        rows = recent_runs(conn, limit)
    table = Table("run_id", "flow", "status", "started", "seconds", "error", title="audit.runs")
    for r in rows:
        seconds = f"{r['seconds']:.1f}" if r["seconds"] is not None else ""
        flow = f"{r['flow']} (dry run)" if r.get("dry_run") else str(r["flow"])
        table.add_row(str(r["run_id"]), flow, str(r["status"]), f"{r['started_at']:%Y-%m-%d %H:%M:%S}",
                      seconds, (r["error"] or "")[:60])  # fmt: skip
    console.print(table)


@app.command("kill-switch")
def kill_switch(
    state: str = typer.Argument("status", help="on | off | status"),
    reason: str = typer.Option("manual", help="Why (recorded)."),
) -> None:
    """Engage, release or show the kill switch (stored in the database, checked before every submit)."""
    import getpass

    from alphaloom.ops.kill_switch import change_kill_switch, kill_switch_state

    if state not in ("on", "off", "status"):
        raise typer.BadParameter(f"expected on, off or status, got {state!r}")
    if state == "status":
        with engine().connect() as conn:
            current = kill_switch_state(conn)
    else:
        current = change_kill_switch(engine(), engaged=state == "on", reason=reason,
                                     changed_by=f"cli:{getpass.getuser()}")  # fmt: skip
    console.print(
        f"kill switch {'ON' if current.engaged else 'off'} ({current.reason}; by {current.changed_by or '-'})"
    )
    if state == "on" and get_settings().ops.kill_switch_cancels_open_orders:
        _cancel_open_orders(reason)


def _cancel_open_orders(reason: str) -> None:
    """Cancel what is still open at every broker (setting ``kill_switch_cancels_open_orders``)."""
    from execution.killswitch import cancel_open_orders_now

    summary = cancel_open_orders_now(engine(), get_settings(), reason)
    console.print(
        f"open orders cancelled: {len(summary.cancelled)} ours, {len(summary.foreign)} not ours, "
        f"{len(summary.slices_cancelled)} scheduled TWAP slices; "
        f"{len(summary.not_cancelled)} already final at the venue"
    )
    for broker, error in summary.errors.items():
        console.print(f"could not cancel at {broker}: {error}", style="red")


@app.command()
def pnl(account: str = typer.Option(None, help="Account id (default: ALPHALOOM_ACCOUNT).")) -> None:
    """Positions marked to the last close, cash, equity and P&L, in the account's base currency (fx-rate converts)."""
    print_account(account or get_settings().account)


def print_account(account: str) -> None:
    from alphaloom.domain import timeframe_sql_interval
    from alphaloom.records.orders import recent_orders
    from alphaloom.reporting.account_summary import account_summary

    settings = get_settings()
    bar = timeframe_sql_interval(settings.timeframe)
    from alphaloom.errors import DataUnavailableError
    from alphaloom.reporting.llm_spend import LlmSpend, account_llm_spend

    with engine().connect() as conn:
        try:
            view = account_summary(
                conn, AccountId(account), exchange=settings.exchange, timeframe=settings.timeframe, bar=bar
            )
            llm = LlmSpend("") if view is None else account_llm_spend(conn, account, view.base_currency)
        except DataUnavailableError as exc:
            console.print(f"cannot value {account} in its base currency: {exc}")
            raise typer.Exit(code=1) from None
        orders = recent_orders(conn, AccountId(account), 10)
    if view is None:
        console.print(f"account {account!r} does not exist yet (run a decision first)")
        raise typer.Exit(code=1)
    table = Table("symbol", "quantity", "avg price", "mark", "market value", "unrealized", "realized",
                  title=f"positions of {account} ({view.base_currency})",
                  caption="market value and unrealized at the current fx rate; realized at the rate of each fill's "
                  "time")  # fmt: skip
    for p in view.positions:
        table.add_row(p.symbol, f"{p.quantity:f}", f"{p.avg_price:,.2f}", f"{p.mark:,.2f}" if p.mark else "-",
                      f"{p.market_value:,.2f}", f"{p.unrealized_pnl:,.2f}", f"{p.realized_pnl:,.2f}")  # fmt: skip
    console.print(table)
    recent = Table("client order id", "symbol", "side", "quantity", "status", "fill price", "fee", "time",
                   title="latest orders")  # fmt: skip
    for o in orders:
        recent.add_row(str(o.client_order_id), str(o.symbol), str(o.side), f"{o.quantity:f}",
                       str(o.status), f"{o.price:,.4f}" if o.price is not None else "-",
                       f"{o.fee:,.4f}" if o.fee is not None else "-",
                       f"{o.ts:%Y-%m-%d %H:%M}" if o.ts is not None else "-")  # fmt: skip
    console.print(recent)
    console.print(
        f"orders {view.orders}, fills {view.fills}, fees paid {view.fees_paid:,.2f} | cash {view.cash:,.2f} | "
        f"equity {view.equity:,.2f} | P&L {view.pnl:+,.2f} on {view.starting_cash:,.2f} starting cash"
    )
    console.print(llm_line(view.pnl, view.starting_cash, llm))


def llm_line(pnl: Decimal, starting_cash: Decimal, llm: LlmSpend) -> str:
    """P&L and return gross and net of the LLM's spend, in the account's base currency."""
    gross = pnl / starting_cash if starting_cash else Decimal(0)
    net_pnl = pnl - llm.paid
    net = net_pnl / starting_cash if starting_cash else Decimal(0)
    return (f"LLM spend {llm.paid:,.4f} {llm.currency} ({llm.calls} calls, {llm.tokens} tokens; priced in USD, "
            f"converted at the rate known when paid) | P&L gross {pnl:+,.2f}, net of LLM {net_pnl:+,.2f} | "
            f"return gross {gross:+.4%}, net of LLM {net:+.4%}")  # fmt: skip


@app.command("fx-rate")
def fx_rate(
    base: str = typer.Argument(..., help="Currency converted from, e.g. USDT."),
    quote: str = typer.Argument(..., help="Currency converted into, e.g. EUR."),
    rate: str = typer.Argument(None, help="Units of QUOTE per unit of BASE; omit to show the rate in force."),
    as_of: str = typer.Option(None, help="ISO time the rate is known from (default: now)."),
) -> None:
    """Store (or show) a conversion rate in audit.fx_rates; P&L and equity use the newest rate known at their time."""
    from datetime import UTC, datetime
    from decimal import Decimal, InvalidOperation

    from alphaloom.cli._checks import iso_time, refuse
    from alphaloom.errors import DataUnavailableError
    from alphaloom.fx import rate_at, store_rate

    when = iso_time(as_of, "--as-of") if as_of else datetime.now(UTC)
    value = None
    if rate is not None:
        try:
            value = Decimal(rate)
        except InvalidOperation:
            refuse(f"RATE must be a number, got {rate!r}")
        if not value.is_finite() or value <= 0:
            refuse(f"RATE must be a positive number, got {rate}")
    with engine().begin() as conn:
        if value is not None:
            store_rate(conn, base.upper(), quote.upper(), value, when, source="cli")
        try:
            current = rate_at(conn, base.upper(), quote.upper(), when)
        except DataUnavailableError as exc:
            console.print(str(exc))
            raise typer.Exit(code=1) from None
    console.print(f"1 {base.upper()} = {current} {quote.upper()} (at {when.isoformat()})")
