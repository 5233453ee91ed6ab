"""Execution: the USD/USDT peg stored as an explicit, visible fx rate.

Revision ID: 0005_exec

P&L and equity are converted into the account's base currency with ``audit.fx_rates`` only (a missing rate is an
error). The shipped symbols mix USDT-quoted crypto and USD-quoted stocks in one USDT account, so the 1:1 peg they were
always valued at is stored as a rate with its source saying so; a live account stores market rates after it (the
newest rate at or before a time wins).
"""

from __future__ import annotations

from alembic import op

revision = "0005_exec"
down_revision = "0006_backtest"
branch_labels = None
depends_on = None

UPGRADE = """
insert into audit.fx_rates (base, quote, rate, as_of, source)
values ('USD', 'USDT', 1, '1970-01-01T00:00:00Z', 'assumed peg: 1 USDT = 1 USD (store market rates to replace it)')
on conflict (base, quote, as_of) do nothing;
"""

DOWNGRADE = """
delete from audit.fx_rates where base = 'USD' and quote = 'USDT' and as_of = '1970-01-01T00:00:00Z'
    and source like 'assumed peg:%';
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
