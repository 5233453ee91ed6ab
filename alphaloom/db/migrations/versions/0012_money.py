"""Market metadata per venue: asset class and quantity step come from the venue, never from a symbol's spelling.

Revision ID: 0012_money

``raw.markets``: one row per (exchange, symbol) as the venue described it (ccxt ``markets``: instrument type,
amount precision as a step, minimum amount), written by the ccxt price ingest (``alphaloom.markets``). File sources
have no row; their class and step come from configuration.
"""

from __future__ import annotations

from alembic import op

revision = "0012_money"
down_revision = "0011_iceberg"
branch_labels = None
depends_on = None

UPGRADE = """
create table raw.markets (
    exchange        text not null,
    symbol          text not null,
    asset_class     text not null,
    quantity_step   numeric not null check (quantity_step > 0),
    min_quantity    numeric,
    instrument_type text,
    run_id          text,
    updated_at      timestamptz not null default now(),
    primary key (exchange, symbol)
);
"""

DOWNGRADE = """
drop table if exists raw.markets;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
