"""The LLM team's debates, turn by turn: every message, tool call and tool answer of a decision's LLM roles.

Revision ID: 0024_llmteam

``audit.llm_transcripts``: one row per turn, keyed by the transcript's hash (``agents.llm.team_agent``; it is the
``prompt_hash`` of the team's ``audit.agent_outputs`` row, or of the risk reviewer's verdict) and the turn's place
in it. A replay that reproduces a debate finds its rows already there. Keys are never stored: only messages.
"""

from __future__ import annotations

from alembic import op

revision = "0024_llmteam"
down_revision = "0020_console"
branch_labels = None
depends_on = None

UPGRADE = """
create table audit.llm_transcripts (
    transcript_hash  text not null,
    seq              integer not null,
    run_id           text not null references audit.runs (run_id),
    symbol           text,
    as_of            timestamptz,
    role             text not null,
    kind             text not null check (kind in ('message', 'tool_call', 'tool_answer', 'answer', 'skipped')),
    content          jsonb not null,
    created_at       timestamptz not null default now(),
    primary key (transcript_hash, seq)
);
create index llm_transcripts_run_idx on audit.llm_transcripts (run_id);
"""

DOWNGRADE = """
drop table if exists audit.llm_transcripts;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
