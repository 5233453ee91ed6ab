"""Operator console: its users (password hashes only) and every action taken through it, with who took it.

Revision ID: 0020_console

``audit.console_users``: one row per operator, ``password_hash`` in the ``scrypt$n$r$p$salt$hash`` form written by
``alphaloom console set-password`` (the password itself is never stored). ``audit.console_actions``: one row per
action (kill switch, arm/disarm, trigger a decision run, login and failed login), with the user, the client address,
the reason given and the outcome, written whether the action succeeded or not.
"""

from __future__ import annotations

from alembic import op

revision = "0020_console"
down_revision = "0014_guards"
branch_labels = None
depends_on = None

UPGRADE = """
create table audit.console_users (
    username       text primary key,
    password_hash  text not null,
    updated_at     timestamptz not null default now()
);

create table audit.console_actions (
    id          bigserial primary key,
    username    text not null,
    client      text,
    action      text not null,
    target      text,
    reason      text not null default '',
    outcome     text not null check (outcome in ('ok', 'refused', 'failed')),
    details     jsonb not null default '{}'::jsonb,
    created_at  timestamptz not null default now()
);
create index console_actions_created_idx on audit.console_actions (created_at);
"""

DOWNGRADE = """
drop table if exists audit.console_actions, audit.console_users;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
