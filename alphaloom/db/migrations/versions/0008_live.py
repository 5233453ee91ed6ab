"""Smart routing: the route plan of every routed order, saved before any leg is sent.

Revision ID: 0008_live

One row per leg: which venue gets how much of which parent order, with the book top it was chosen on and the arrival
price its slippage is measured against. Written (committed on its own) before the first leg leaves, so a retry or a
restart re-sends each leg only to the venue its plan names, after looking the leg up there by client order id.
"""

from __future__ import annotations

from alembic import op

revision = "0008_live"
down_revision = "0005_exec"
branch_labels = None
depends_on = None

UPGRADE = """
create table audit.route_legs (
    client_order_id         text primary key,
    parent_client_order_id  text not null,
    decision_id             text not null,
    leg                     integer not null,
    account                 text not null references audit.accounts (id),
    symbol                  text not null,
    side                    text not null check (side in ('buy', 'sell')),
    venue                   text not null,
    quantity                numeric not null check (quantity > 0),
    venue_price             numeric not null,
    fee_bps                 numeric not null,
    effective_price         numeric not null,
    arrival_price           numeric not null,
    run_id                  text,
    created_at              timestamptz not null default now()
);
create index route_legs_parent on audit.route_legs (parent_client_order_id);
"""

DOWNGRADE = """
drop table if exists audit.route_legs;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
