"""TWAP schedules: the child orders of a TWAP parent, each with the time it is due, recorded before any is sent.

Revision ID: 0009_twap

One row per slice (the first one included, released at once): its client order id, its parent, its quantity and the
parent's arrival price, the time it is due and its state (``scheduled`` -> ``released`` | ``refused`` | ``cancelled``).
Written in the transaction that sends the first slice, so a decision that rolls back leaves no schedule; the submit
journal covers the window between sending and committing. ``execution.algos.release`` sends the slices whose time has come.
"""

from __future__ import annotations

from alembic import op

revision = "0009_twap"
down_revision = "0010_misc"
branch_labels = None
depends_on = None

UPGRADE = """
create table audit.scheduled_slices (
    client_order_id         text primary key,
    parent_client_order_id  text not null,
    decision_id             text not null references audit.decisions (decision_id),
    leg                     integer not null,
    account                 text not null references audit.accounts (id),
    symbol                  text not null,
    side                    text not null check (side in ('buy', 'sell')),
    quantity                numeric not null check (quantity > 0),
    reference_price         numeric not null check (reference_price > 0),
    arrival_price           numeric,
    due_at                  timestamptz not null,
    status                  text not null default 'scheduled'
                            check (status in ('scheduled', 'released', 'refused', 'cancelled')),
    reason                  text,
    run_id                  text,
    released_run_id         text,
    created_at              timestamptz not null default now(),
    updated_at              timestamptz not null default now()
);
create index scheduled_slices_parent on audit.scheduled_slices (parent_client_order_id);
create index scheduled_slices_pending on audit.scheduled_slices (account, symbol, due_at)
    where status = 'scheduled';
"""

DOWNGRADE = """
drop table if exists audit.scheduled_slices;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
