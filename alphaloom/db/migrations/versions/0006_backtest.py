"""Backtests: an LLM cache miss in a cache-only replay is recorded in the usage ledger as ``cache_miss``."""

from __future__ import annotations

from alembic import op

revision = "0006_backtest"
down_revision = "0003_ingest"
branch_labels = None
depends_on = None

_STATUSES = "'ok', 'cached', 'repaired', 'invalid', 'timeout', 'error', 'budget_exceeded'"


def upgrade() -> None:
    op.execute(
        f"""alter table audit.llm_usage drop constraint llm_usage_status_check,
            add constraint llm_usage_status_check check (status in ({_STATUSES}, 'cache_miss'))"""
    )


def downgrade() -> None:
    op.execute("delete from audit.llm_usage where status = 'cache_miss'")
    op.execute(
        f"""alter table audit.llm_usage drop constraint llm_usage_status_check,
            add constraint llm_usage_status_check check (status in ({_STATUSES}))"""
    )
