"""Trading accounts: ``alphaloom accounts add`` creates one (paper, or shadow/live at Alpaca, OANDA or a ccxt
exchange) the way a decision run creates its paper account (``execution.accounts.registry.ensure_account``);
``alphaloom accounts list`` shows them. Credentials are only ever named, never read or printed."""

from __future__ import annotations

import re

import typer
from rich.table import Table

from alphaloom.cli._app import app, console, engine
from alphaloom.domain import LIVE_MODES, AccountId
from alphaloom.settings import get_settings

accounts_app = typer.Typer(no_args_is_help=True, help="Trading accounts: create (paper, shadow, live) and list.")
app.add_typer(accounts_app, name="accounts")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@accounts_app.command("add")
def accounts_add(
    name: str = typer.Argument(..., help="The account id (letters, digits, '.', '_', '-')."),
    venue: str = typer.Option("paper", help="paper, alpaca, oanda or a ccxt exchange id (e.g. binance)."),
    mode: str = typer.Option("paper", help="paper, shadow or live; shadow and live need the venue's keys."),
    base_currency: str = typer.Option(
        None, help="The account's currency: cash, P&L and limits are in it (default: ALPHALOOM_BASE_CURRENCY)."
    ),
    capital: str = typer.Option(
        None, help="Starting cash in the base currency, not negative (default: ALPHALOOM_STARTING_CASH)."
    ),
) -> None:
    """Create account NAME. Adding it again with the same settings changes nothing; with other settings it is
    refused, naming the difference. A shadow or live account at a venue needs its keys first (`alphaloom keys add
    VENUE --account NAME`); arm it for live orders with `alphaloom arm NAME`."""
    import ccxt

    from alphaloom.cli._checks import refuse
    from alphaloom.ops.secrets import NATIVE_VENUES, list_credentials
    from alphaloom.records.runs import recorded_run
    from execution.accounts.registry import account_spec, ensure_account
    from execution.accounts.spec import PAPER_VENUE, AccountSpec, parse_spec, spec_differences

    if not _NAME.fullmatch(name):
        refuse(f"NAME {name!r}: an account id is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter "
               "or digit")  # fmt: skip
    settings = get_settings()
    parsed = parse_spec(venue, mode, base_currency or settings.base_currency,
                        str(settings.starting_cash) if capital is None else capital,
                        venues={PAPER_VENUE, *NATIVE_VENUES, *ccxt.exchanges})  # fmt: skip
    if isinstance(parsed, str):
        refuse(parsed)
    spec: AccountSpec = parsed
    account, eng = AccountId(name), engine()

    def settled(existing: AccountSpec) -> None:
        differences = spec_differences(existing, spec)
        if differences:
            refuse(f"account {name} exists with other settings: {'; '.join(differences)}; nothing changed")
        console.print(f"account {name} already exists with these settings: nothing changed")

    with eng.connect() as conn:
        existing = account_spec(conn, account)
        keyed = any(e == spec.venue and a == name for e, a, _ in list_credentials(conn))
    if existing is not None:
        settled(existing)
        return
    if spec.mode in LIVE_MODES and not keyed:
        refuse(f"a {spec.mode} account at {spec.venue} needs its keys: none stored for {spec.venue}/{name}; add them "
               f"with `alphaloom keys add {spec.venue} --account {name}`")  # fmt: skip
    parameters = {"account": name, "venue": spec.venue, "mode": spec.mode.value,
                  "base_currency": spec.base_currency, "starting_cash": str(spec.starting_cash)}  # fmt: skip
    with recorded_run(eng, "accounts-add", parameters) as run_id, eng.begin() as conn:
        created = ensure_account(conn, account, spec.venue, spec.base_currency, spec.mode, spec.starting_cash, run_id)
        now = account_spec(conn, account)
    if not created and now is not None:  # added by another process since it was read
        settled(now)
        return
    console.print(f"created account {name}: {spec.mode} at {spec.venue}, {spec.starting_cash:f} {spec.base_currency} "
                  "starting cash" + (f"; arm it for live orders with `alphaloom arm {name}`"
                                     if spec.mode in LIVE_MODES else ""))  # fmt: skip


@accounts_app.command("list")
def accounts_list() -> None:
    """Every account: venue, mode, base currency, starting cash, whether it is armed for live orders and whether its
    venue's keys are stored (never the keys)."""
    from alphaloom.ops.secrets import list_credentials
    from execution.accounts.registry import list_accounts

    with engine().connect() as conn:
        rows = list_accounts(conn)
        keyed = {(e, a) for e, a, _ in list_credentials(conn)}
    if not rows:
        console.print("no accounts yet: add one with `alphaloom accounts add NAME`")
        return
    table = Table("account", "venue", "mode", "base currency", "starting cash", "armed", "keys", "created",
                  title="audit.accounts")  # fmt: skip
    for r in rows:
        s = r.spec
        keys = "-" if s.mode not in LIVE_MODES else ("stored" if (s.venue, r.account) in keyed else "MISSING")
        table.add_row(r.account, s.venue, s.mode.value, s.base_currency, f"{s.starting_cash:,f}",
                      "yes" if r.live_enabled else "no", keys, f"{r.created_at:%Y-%m-%d %H:%M}")  # fmt: skip
    console.print(table)
