"""The submit journal keeps what was sent, and how reconciliation settled it.

Revision ID: 0013_orders

``details``: the order as it was sent (decision id, leg, symbol, side, quantity, prices, type, parent, run, event
time, timeframe), committed with the attempt before the send, so that reconciliation can look an orphaned attempt up
at its venue (the symbol) and book what the venue has even when the decision's transaction never committed.
``resolved_at`` / ``resolution``: when reconciliation settled an attempt that had no order (``booked``: the venue had
it and it is now in ``audit.orders``; ``absent``: the venue confirmed it never saw it).
"""

from __future__ import annotations

from alembic import op

revision = "0013_orders"
down_revision = "0012_money"
branch_labels = None
depends_on = None

UPGRADE = """
alter table audit.submit_attempts add column details jsonb;
alter table audit.submit_attempts add column resolved_at timestamptz;
alter table audit.submit_attempts add column resolution text check (resolution in ('booked', 'absent'));
create index submit_attempts_unresolved_idx on audit.submit_attempts (account) where resolved_at is null;
"""

DOWNGRADE = """
drop index if exists audit.submit_attempts_unresolved_idx;
alter table audit.submit_attempts drop column if exists resolution;
alter table audit.submit_attempts drop column if exists resolved_at;
alter table audit.submit_attempts drop column if exists details;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
