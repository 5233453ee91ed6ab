"""Route legs record what they were ranked at: the currency the venue priced in and its rate into the account's
base currency.

Revision ID: 0028_route_leg_rate

Smart routing compares venues pricing in different currencies (a ccxt book in USDT, OANDA in USD) at the newest
stored fx rate (``execution.algos.routing.RoutingBroker.in_base_currency``). ``audit.route_legs.currency`` (null: the
symbol's quote currency) and ``base_rate`` (units of the account's base currency per unit of ``currency``; 1 where
every venue priced alike) keep that rate with the leg, so an order's venue choice can be re-derived from the audit.
Legs planned before this column existed were all ranked 1:1 in the symbol's quote currency: null and 1.
"""

from __future__ import annotations

from alembic import op

revision = "0028_route_leg_rate"
down_revision = "0027_fill_fee_units"
branch_labels = None
depends_on = None

UPGRADE = """
alter table audit.route_legs add column currency text;
alter table audit.route_legs add column base_rate numeric not null default 1 check (base_rate > 0);
comment on column audit.route_legs.currency is 'the currency the venue priced the leg in (null: the symbol''s quote)';
comment on column audit.route_legs.base_rate is 'units of the account''s base currency per unit of currency, as ranked';
"""

DOWNGRADE = """
alter table audit.route_legs drop column if exists base_rate;
alter table audit.route_legs drop column if exists currency;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
