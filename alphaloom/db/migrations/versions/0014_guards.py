"""LLM spend reserved before a call: ``audit.llm_usage.status`` may be ``reserved`` (``agents.llm.budget.reserve``)
until the call's real usage is settled into the row.

Revision ID: 0014_guards
"""

from __future__ import annotations

from alembic import op

revision = "0014_guards"
down_revision = "0016_news"
branch_labels = None
depends_on = None

_STATUSES = "'ok', 'cached', 'repaired', 'invalid', 'timeout', 'error', 'budget_exceeded', 'cache_miss'"


def upgrade() -> None:
    op.execute(
        f"""alter table audit.llm_usage drop constraint llm_usage_status_check,
            add constraint llm_usage_status_check check (status in ({_STATUSES}, 'reserved'))"""
    )


def downgrade() -> None:
    op.execute(
        "update audit.llm_usage set status = 'error', detail = 'reservation never settled' where status = 'reserved'"
    )
    op.execute(
        f"""alter table audit.llm_usage drop constraint llm_usage_status_check,
            add constraint llm_usage_status_check check (status in ({_STATUSES}))"""
    )
