"""Trading operator commands: venue keys (encrypted), live arming, account halts, guard trips, reconciliation, shadow
drift."""

from __future__ import annotations

import typer
from rich.table import Table

from alphaloom.cli._app import app, console, engine
from alphaloom.domain import LIVE_MODES, AccountId
from alphaloom.settings import get_settings

keys_app = typer.Typer(no_args_is_help=True, help="Venue credentials, encrypted at rest (never printed).")
app.add_typer(keys_app, name="keys")


@keys_app.command("add")
def keys_add(
    exchange: str = typer.Argument(..., help="ccxt exchange id, e.g. binance, or alpaca or oanda."),
    account: str = typer.Option(None, help="Account id (default: ALPHALOOM_ACCOUNT)."),
    url: str = typer.Option(None, help="oanda: the v20 API address (default: the practice API)."),
) -> None:
    """Store an API key and secret for EXCHANGE (for oanda: the token and the v20 account id); both are prompted for
    without echo."""
    import ccxt

    from alphaloom.cli._checks import refuse
    from alphaloom.ops.secrets import NATIVE_VENUES, Credentials, store_credentials

    if exchange == "oanda":
        from alphaloom.venues.oanda_client import oanda_url_problem

        if url is not None and (problem := oanda_url_problem(url)):
            refuse(f"--url {url!r}: {problem}")
        credentials = Credentials("oanda", account or get_settings().account,
                                  typer.prompt("API token", hide_input=True),
                                  typer.prompt("v20 account id", hide_input=True), url)  # fmt: skip
        with engine().begin() as conn:
            store_credentials(conn, get_settings(), credentials)
        console.print(f"stored encrypted credentials for oanda/{credentials.account}")
        return
    if exchange not in ccxt.exchanges and exchange not in NATIVE_VENUES:
        close = [e for e in [*NATIVE_VENUES, *ccxt.exchanges] if e.startswith(exchange.lower()[:4])][:5]
        refuse(f"EXCHANGE {exchange!r} is not a ccxt exchange id nor one of {', '.join(NATIVE_VENUES)}"
               + (f" (close: {', '.join(close)})" if close else ""))  # fmt: skip
    api_key = typer.prompt("API key", hide_input=True)
    secret = typer.prompt("API secret", hide_input=True)
    password = "" if exchange in NATIVE_VENUES else typer.prompt("Passphrase (empty if none)", hide_input=True,
                                                                 default="", show_default=False)  # fmt: skip
    account = account or get_settings().account
    with engine().begin() as conn:
        store_credentials(conn, get_settings(), Credentials(exchange, account, api_key, secret, password or None))
    console.print(f"stored encrypted credentials for {exchange}/{account}")


@keys_app.command("list")
def keys_list() -> None:
    """Which exchanges/accounts have credentials (never the credentials)."""
    from alphaloom.ops.secrets import list_credentials

    with engine().connect() as conn:
        rows = list_credentials(conn)
    table = Table("exchange", "account", "stored at", title="secrets.credentials")
    for exchange, account, created in rows:
        table.add_row(exchange, account, str(created))
    console.print(table)


@keys_app.command("remove")
def keys_remove(exchange: str, account: str = typer.Option(None)) -> None:
    """Delete the credentials of EXCHANGE for the account."""
    from alphaloom.ops.secrets import delete_credentials

    with engine().begin() as conn:
        gone = delete_credentials(conn, exchange, account or get_settings().account)
    console.print("removed" if gone else "nothing stored")
    if not gone:
        raise typer.Exit(code=1)


@app.command()
def arm(
    account: str = typer.Argument(..., help="Account id."),
    off: bool = typer.Option(False, "--off", help="Disarm instead."),
) -> None:
    """Arm (or disarm) ACCOUNT for live orders; live orders also need mode live/shadow and stored credentials."""
    from sqlalchemy import text

    with engine().begin() as conn:
        row = conn.execute(
            text("update audit.accounts set live_enabled = :on where id = :a returning mode"),
            {"on": not off, "a": account},
        ).first()
    if row is None:
        console.print(f"account {account!r} does not exist")
        raise typer.Exit(code=1)
    console.print(f"account {account} ({row.mode}) live trading {'DISARMED' if off else 'ARMED'}")


@app.command()
def halt(
    account: str = typer.Argument(...),
    release: bool = typer.Option(False, "--release", help="Release the halt."),
    reason: str = typer.Option("manual"),
) -> None:
    """Halt ACCOUNT (nothing is sent for it) or release it, e.g. after the daily loss limit tripped."""
    from execution.safety.fatfinger import halt_state, set_halt

    with engine().begin() as conn:
        set_halt(conn, AccountId(account), not release, reason)
        state = halt_state(conn, AccountId(account))
    console.print(f"account {account} {'HALTED' if state.halted else 'active'} ({state.reason})")


@app.command()
def trips(account: str = typer.Option(None), limit: int = typer.Option(20)) -> None:
    """Recent fat-finger / guard trips (audit.guard_trips)."""
    from execution.safety.fatfinger import recent_trips

    with engine().connect() as conn:
        rows = recent_trips(conn, None if account is None else AccountId(account), limit)
    table = Table("time", "account", "symbol", "guard", "reason", title="audit.guard_trips")
    for r in rows:
        table.add_row(f"{r['created_at']:%Y-%m-%d %H:%M:%S}", str(r["account"]), str(r["symbol"] or ""),
                      str(r["guard"]), str(r["reason"])[:80])  # fmt: skip
    console.print(table)


@app.command()
def reconcile(account: str = typer.Argument(..., help="A live or shadow account id.")) -> None:
    """Compare ACCOUNT's balances, positions and open orders with its venue; record and show every difference
    (audit.reconciliations). Exit 1 when there is a difference."""
    from sqlalchemy import text

    from alphaloom.records.runs import recorded_run
    from execution.accounts.reconcile import reconcile_account
    from execution.brokers.factory import venue_broker

    eng, settings = engine(), get_settings()
    with eng.connect() as conn:
        row = conn.execute(text("select venue, mode from audit.accounts where id = :a"), {"a": account}).first()
    if row is None or row.mode not in LIVE_MODES:
        console.print(f"account {account!r} " + ("does not exist" if row is None else f"is a {row.mode} account; "
                      "only live and shadow accounts have a venue to reconcile with"))  # fmt: skip
        raise typer.Exit(code=1)
    broker = venue_broker(eng, settings, AccountId(account), row.venue)
    if broker is None:
        console.print(f"no credentials stored for {row.venue}/{account}: add them with `alphaloom keys add`")
        raise typer.Exit(code=1)
    with recorded_run(eng, "reconcile", {"account": account}) as run_id, eng.begin() as conn:
        differences = reconcile_account(conn, broker, AccountId(account), run_id=run_id)
    print_differences(account, row.venue, differences)
    if differences:
        raise typer.Exit(code=1)


def print_differences(account: str, venue: str, differences: list) -> None:  # type: ignore[type-arg]
    if not differences:
        console.print(f"{account} agrees with {venue}: no differences")
        return
    table = Table("kind", "item", "ours", "venue", "difference", "details", title=f"{account} vs {venue}")
    for d in differences:
        table.add_row(d.kind, d.item, "-" if d.ours is None else f"{d.ours:f}", "-" if d.venue is None else
                      f"{d.venue:f}", "-" if d.difference is None else f"{d.difference:+f}",
                      ", ".join(f"{k}={v}" for k, v in d.details.items()))  # fmt: skip
    console.print(table)


@app.command()
def drift(account: str = typer.Option(None, help="Only this account.")) -> None:
    """Shadow mode: how paper fills drifted from live fills (audit.shadow_drift), per account and symbol."""
    from alphaloom.cli._checks import refuse
    from alphaloom.ops.catalog import account_ids
    from execution.brokers.shadow import drift_rows, summarise

    with engine().connect() as conn:
        if account is not None and account not in (known := account_ids(conn)):
            refuse(f"--account: no account {account!r}; accounts: {', '.join(known) or '(none yet)'}")
        summary = summarise(drift_rows(conn, None if account is None else AccountId(account)))
    if not summary:
        console.print("no shadow orders recorded" + (f" for {account}" if account else ""))
        return

    def bps(value: object) -> str:
        return "-" if value is None else f"{value:+.2f}"

    table = Table("account", "symbol", "orders", "price drift bps (live vs paper)", "live slippage bps",
                  "paper slippage bps", "live fill rate", "paper fill rate", title="shadow drift")  # fmt: skip
    for s in summary:
        table.add_row(s["account"], s["symbol"], str(s["orders"]), bps(s["price_drift_bps"]),
                      bps(s["live_slippage_bps"]), bps(s["paper_slippage_bps"]), f"{s['live_fill_rate']:.1%}",
                      f"{s['paper_fill_rate']:.1%}")  # fmt: skip
    console.print(table)
