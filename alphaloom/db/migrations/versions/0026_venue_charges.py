"""Venue charges: fees a venue books on an account beside its fills (OANDA's daily financing, Alpaca's regulatory
fees), booked once each.

Revision ID: 0026_venue_charges

``audit.venue_charges``: one row per charge, keyed by (account, venue, the venue's own id), so a charge read again
(an overlapping read, a restart) is never booked twice; ``fee`` is what the account paid (negative: received), in
``currency``; booking it moves ``audit.balances`` by ``-fee`` in the same statement
(``execution.accounts.charges``).
"""

from __future__ import annotations

from alembic import op

revision = "0026_venue_charges"
down_revision = "0025_social"
branch_labels = None
depends_on = None

UPGRADE = """
create table audit.venue_charges (
    account     text not null references audit.accounts (id),
    venue       text not null,
    charge_id   text not null,
    kind        text not null,
    fee         numeric not null,
    currency    text not null,
    charged_at  timestamptz not null,
    run_id      text references audit.runs (run_id),
    booked_at   timestamptz not null default now(),
    primary key (account, venue, charge_id)
);
create index venue_charges_latest on audit.venue_charges (account, venue, charged_at desc);
"""

DOWNGRADE = """
drop table if exists audit.venue_charges;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
