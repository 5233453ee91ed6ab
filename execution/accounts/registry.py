"""Trading accounts: the ``audit.accounts`` row (created by ``ensure_account``, read back as an ``AccountSpec`` by
``account_spec`` and ``list_accounts``), its cash in ``audit.balances``, and the per-account lock every send, release
and reconciliation takes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, text

from alphaloom.domain import LIVE_MODES as LIVE_MODES

# AccountMode is a core value type (the console and the CLI read an account's mode too); execution names it here.
from alphaloom.domain import AccountId
from alphaloom.domain import AccountMode as AccountMode
from execution.accounts.spec import AccountSpec


def lock_account(conn: Connection, account: AccountId) -> None:
    """Take the account's advisory lock, held until the caller's transaction ends."""
    conn.execute(text("select pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"alphaloom:account:{account}"})


class AccountLocks:
    """The account locks one transaction takes (``lock_account``), each once: held until it ends."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._held: set[str] = set()

    def take(self, account: AccountId) -> None:
        if account not in self._held:
            lock_account(self._conn, account)
            self._held.add(account)


def ensure_account(
    conn: Connection,
    account: AccountId,
    venue: str,
    base_currency: str,
    mode: AccountMode | str,
    starting_cash: Decimal,
    run_id: str | None = None,
) -> bool:
    """Create the account and its starting cash row when absent; returns True when it was created now.

    An existing account is left exactly as it is (its cash is never reset)."""
    if mode not in AccountMode.__members__.values():
        raise ValueError(f"mode must be paper, live or shadow, got {mode!r}")
    created = conn.execute(
        text(
            """insert into audit.accounts (id, venue, base_currency, mode, starting_cash)
               values (:id, :venue, :ccy, :mode, :cash)
               on conflict (id) do nothing returning id"""
        ),
        {"id": account, "venue": venue, "ccy": base_currency, "mode": AccountMode(mode).value, "cash": starting_cash},
    ).first()
    if created is not None:
        conn.execute(
            text(
                """insert into audit.balances (account, currency, amount, run_id) values (:a, :c, :amount, :r)
                   on conflict (account, currency) do nothing"""
            ),
            {"a": account, "c": base_currency, "amount": starting_cash, "r": run_id},
        )
    return created is not None


def cash_balance(conn: Connection, account: AccountId, currency: str) -> Decimal:
    """Cash of ``account`` in ``currency``; 0 when there is no balance row."""
    amount = conn.execute(
        text("select amount from audit.balances where account = :a and currency = :c"), {"a": account, "c": currency}
    ).scalar()
    return Decimal(0) if amount is None else Decimal(amount)


@dataclass(frozen=True, slots=True)
class AccountRow:
    """One account as listed: its settings, whether it is armed for live orders, and when it was created."""

    account: AccountId
    spec: AccountSpec
    live_enabled: bool
    created_at: datetime


_ACCOUNT_ROWS = """select id, venue, mode, base_currency, starting_cash, live_enabled, created_at from audit.accounts"""


def _account_row(row: Row[Any]) -> AccountRow:
    spec = AccountSpec(row.venue, AccountMode(row.mode), row.base_currency, Decimal(row.starting_cash))
    return AccountRow(AccountId(row.id), spec, bool(row.live_enabled), row.created_at)


def account_spec(conn: Connection, account: AccountId) -> AccountSpec | None:
    """The account's settings, or None when there is no such account."""
    row = conn.execute(text(_ACCOUNT_ROWS + " where id = :a"), {"a": account}).first()
    return None if row is None else _account_row(row).spec


def list_accounts(conn: Connection) -> list[AccountRow]:
    """Every account, by id."""
    return [_account_row(r) for r in conn.execute(text(_ACCOUNT_ROWS + " order by id"))]
