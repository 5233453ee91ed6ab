"""Walk-forward of the team: the strategy of a walk-forward run, and per window the team parameters chosen and the
out-of-sample replay run that traded them.

Revision ID: 0023_teamwf

``audit.walk_forward_runs.strategy``: ``sma_cross`` (the vectorized SMA walk-forward; its ``grid`` is the list of
(fast, slow) pairs) or ``team`` (the replay engine; its ``grid`` is the list of team candidates). Per window,
``audit.walk_forward_windows.params`` holds the team parameters chosen in sample (``fast``/``slow`` are null then),
``candidates`` every candidate's in-sample score, and ``replay_run_id`` the backtest run of the out-of-sample replay,
whose decisions, orders and fills are audited in full under that run id.
"""

from __future__ import annotations

from alembic import op

revision = "0023_teamwf"
down_revision = "0024_llmteam"
branch_labels = None
depends_on = None

UPGRADE = """
alter table audit.walk_forward_runs add column strategy text not null default 'sma_cross'
    check (strategy in ('sma_cross', 'team'));
alter table audit.walk_forward_windows alter column fast drop not null;
alter table audit.walk_forward_windows alter column slow drop not null;
alter table audit.walk_forward_windows add column params jsonb;
alter table audit.walk_forward_windows add column candidates jsonb;
alter table audit.walk_forward_windows add column replay_run_id text references audit.runs (run_id);
alter table audit.walk_forward_windows add constraint walk_forward_windows_choice_check
    check ((fast is not null and slow is not null) or params is not null);
"""

DOWNGRADE = """
delete from audit.walk_forward_windows where fast is null or slow is null;
alter table audit.walk_forward_windows drop constraint if exists walk_forward_windows_choice_check;
alter table audit.walk_forward_windows drop column if exists replay_run_id;
alter table audit.walk_forward_windows drop column if exists candidates;
alter table audit.walk_forward_windows drop column if exists params;
alter table audit.walk_forward_windows alter column fast set not null;
alter table audit.walk_forward_windows alter column slow set not null;
alter table audit.walk_forward_runs drop column if exists strategy;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
