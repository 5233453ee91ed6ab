"""The console's repository (``audit.console_users``, ``audit.console_actions``): operators' password hashes (scrypt
only, never a password) and the record of every action taken from the console, with who and why. Every function
takes the caller's connection, so an action is recorded in the transaction that took it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text


def upsert_user(conn: Connection, username: str, password_hash: str) -> None:
    """Create ``username`` with ``password_hash``, or replace the hash of an existing user."""
    conn.execute(
        text(
            """insert into audit.console_users (username, password_hash) values (:u, :h)
               on conflict (username) do update set password_hash = excluded.password_hash, updated_at = now()"""
        ),
        {"u": username, "h": password_hash},
    )


def password_hash(conn: Connection, username: str) -> str | None:
    """The stored hash of ``username``; None when there is no such user."""
    stored: str | None = conn.execute(
        text("select password_hash from audit.console_users where username = :u"), {"u": username}
    ).scalar()
    return stored


def has_users(conn: Connection) -> bool:
    """Whether any console user exists."""
    return bool(conn.execute(text("select exists (select 1 from audit.console_users)")).scalar_one())


def insert_action(
    conn: Connection, *, username: str, client: str | None, action: str, target: str | None, reason: str,
    outcome: str, details_json: str,
) -> None:  # fmt: skip
    """One ``audit.console_actions`` row (``details_json``: JSON text)."""
    conn.execute(
        text(
            """insert into audit.console_actions (username, client, action, target, reason, outcome, details)
               values (:u, :c, :a, :t, :r, :o, cast(:d as jsonb))"""
        ),
        {"u": username, "c": client, "a": action, "t": target, "r": reason, "o": outcome, "d": details_json},
    )


def recent_actions(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The newest ``limit`` actions: when, who, what, on what, why and the outcome."""
    rows = conn.execute(
        text(
            """select created_at, username, action, target, reason, outcome from audit.console_actions
               order by id desc limit :n"""
        ),
        {"n": limit},
    ).mappings()
    return [dict(r) for r in rows]
