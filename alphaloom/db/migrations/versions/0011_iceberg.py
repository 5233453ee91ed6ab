"""Iceberg children in the TWAP schedule: a slice may wait for an earlier child to fill instead of for a time.

Revision ID: 0011_iceberg

``after_client_order_id``: for an iceberg child (not the first), the child of the same parent whose order must have
``filled`` before this one is due (``execution.algos.release``); null for TWAP slices, which wait for ``due_at`` only.
"""

from __future__ import annotations

from alembic import op

revision = "0011_iceberg"
down_revision = "0009_twap"
branch_labels = None
depends_on = None

UPGRADE = """
alter table audit.scheduled_slices add column after_client_order_id text;
"""

DOWNGRADE = """
alter table audit.scheduled_slices drop column if exists after_client_order_id;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
