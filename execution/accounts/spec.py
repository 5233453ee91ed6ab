"""What an account is (``AccountSpec``: its venue, mode, base currency and starting cash, as ``audit.accounts`` holds
them), the checks of a new one, and how an existing account differs from one asked for. Pure: no I/O.

- venue: ``paper``, a native venue (``alpaca``, ``oanda``) or a ccxt exchange id, from the caller's list;
- mode: paper, shadow or live (``AccountMode``); a shadow or live account trades at a real venue, never at ``paper``;
- base currency: the code of a currency (``USD``, ``USDT``, ``JPY``: a letter, then letters or digits, 2 to 10 in
  all; given in any case, kept in upper case); Alpaca accounts are in US dollars only;
- starting cash: a finite decimal, not negative (the cash the account starts with, in its base currency).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from alphaloom.domain import LIVE_MODES, AccountMode

PAPER_VENUE = "paper"
_CURRENCY = re.compile(r"[A-Z][A-Z0-9]{1,9}")
# Venues whose accounts hold one currency only (Alpaca's brokerage accounts are in US dollars).
VENUE_CURRENCIES: dict[str, str] = {"alpaca": "USD"}


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """An account's settings as ``audit.accounts`` records them (``ensure_account``'s parameters)."""

    venue: str
    mode: AccountMode
    base_currency: str
    starting_cash: Decimal


def parse_spec(
    venue: str, mode: str, base_currency: str, starting_cash: str, *, venues: Collection[str]
) -> AccountSpec | str:
    """The spec the arguments describe, or one line naming the first argument that is wrong and why."""
    if venue not in venues:
        return f"--venue {venue!r} is not paper, alpaca, oanda nor a ccxt exchange id"
    if mode not in AccountMode.__members__.values():
        return f"--mode {mode!r} must be one of {', '.join(m.value for m in AccountMode)}"
    account_mode = AccountMode(mode)
    if account_mode in LIVE_MODES and venue == PAPER_VENUE:
        return f"--mode {mode}: a {mode} account trades at a real venue; --venue paper is for paper accounts"
    currency = base_currency.upper()
    if not _CURRENCY.fullmatch(currency):
        return f"--base-currency {base_currency!r} is not a currency code (e.g. USD, USDT, JPY)"
    only = VENUE_CURRENCIES.get(venue)
    if only is not None and currency != only:
        return f"--base-currency {currency}: {venue} accounts are in {only} only"
    try:
        cash = Decimal(starting_cash)
    except InvalidOperation:
        return f"--capital {starting_cash!r} is not a number"
    if not cash.is_finite():
        return f"--capital {starting_cash!r} is not a finite number"
    if cash < 0:
        return f"--capital {starting_cash} is negative"
    return AccountSpec(venue, account_mode, currency, cash)


def spec_differences(existing: AccountSpec, wanted: AccountSpec) -> list[str]:
    """How ``existing`` differs from ``wanted``, one ``field: existing (asked: wanted)`` per setting (empty: none)."""
    pairs: tuple[tuple[str, object, object], ...] = (
        ("venue", existing.venue, wanted.venue),
        ("mode", existing.mode.value, wanted.mode.value),
        ("base currency", existing.base_currency, wanted.base_currency),
        ("capital", existing.starting_cash, wanted.starting_cash),
    )
    return [f"{name} {_shown(held)} (asked: {_shown(asked)})" for name, held, asked in pairs if held != asked]


def _shown(value: object) -> str:
    return f"{value:f}" if isinstance(value, Decimal) else str(value)
