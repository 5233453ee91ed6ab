"""Fills record the venue's fee model: whether a fee in the traded symbol's base currency came out of the traded
units or out of the account's cash.

Revision ID: 0027_fill_fee_units

``audit.fills.fee_from_units`` (``alphaloom.domain.Fill.fee_from_units``): true where a fee in the symbol's base
currency was taken out of the units traded (crypto venues: binance's buy commission in the coin bought), false where
the venue charges every fee to the account's cash (OANDA, Alpaca: a USD commission on ``USD/JPY`` is USD paid, not
USD units out of the position). A read side values a fee by it (``alphaloom.records.orders.fees_by_currency``): units
taken at the fill's own price in the quote currency, cash in the fee's own currency.

Fills booked before this column existed get the model of the broker that booked them: false for orders at ``oanda``
and ``alpaca`` (their brokers' fills said so since they landed), true for every other (crypto venues, the paper
broker). The column then has no default: every writer of fills states it (``execution.orders.store.FILL_COLUMNS``,
written by both order stores).
"""

from __future__ import annotations

from alembic import op

revision = "0027_fill_fee_units"
down_revision = "0026_venue_charges"
branch_labels = None
depends_on = None

UPGRADE = """
alter table audit.fills add column fee_from_units boolean not null default true;
update audit.fills f set fee_from_units = false
from audit.orders o where o.client_order_id = f.client_order_id and o.venue in ('oanda', 'alpaca');
alter table audit.fills alter column fee_from_units drop default;
"""

DOWNGRADE = """
alter table audit.fills drop column if exists fee_from_units;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
