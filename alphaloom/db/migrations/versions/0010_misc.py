"""Realised P&L per fill, so it can be converted into the account's base currency at the rate of its own time.

Revision ID: 0010_misc

``audit.fills.realized_pnl``: what a sell fill realised, in the symbol's quote currency (quantity * price - fee -
quantity * the position's average cost before it; the same arithmetic as ``execution.ledger``); null for a buy and for
fills booked before this column existed (their realised P&L is still in ``audit.positions.realized_pnl``, and the
account view converts that remainder at its current rate).
"""

from __future__ import annotations

from alembic import op

revision = "0010_misc"
down_revision = "0008_live"
branch_labels = None
depends_on = None

UPGRADE = """
alter table audit.fills add column realized_pnl numeric;
"""

DOWNGRADE = """
alter table audit.fills drop column if exists realized_pnl;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
