"""Ingest state: per-feed conditional-GET state, broken-feed records, data-quality checkpoint summaries.

Revision ID: 0003_ingest
"""

from __future__ import annotations

from alembic import op

revision = "0003_ingest"
down_revision = "0004_agents"
branch_labels = None
depends_on = None

UPGRADE = """
create table raw.feed_state (
    feed             text primary key,
    etag             text,
    last_modified    text,
    last_status      integer,
    last_error       text,
    last_fetched_at  timestamptz not null,
    last_ok_at       timestamptz,
    run_id           text not null
);

create table raw.feed_failures (
    id          bigserial primary key,
    feed        text not null,
    http_status integer,
    reason      text not null,
    run_id      text not null references audit.runs (run_id),
    created_at  timestamptz not null default now()
);
create index feed_failures_feed_idx on raw.feed_failures (feed, created_at);

create table raw.quality_results (
    id              bigserial primary key,
    run_id          text not null references audit.runs (run_id),
    suite           text not null,
    batch           text not null,
    success         boolean not null,
    evaluated       integer not null,
    unexpected      integer not null,
    failed          jsonb not null default '[]'::jsonb,
    data_docs_path  text,
    created_at      timestamptz not null default now()
);
create index quality_results_created_idx on raw.quality_results (created_at);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("drop table if exists raw.quality_results, raw.feed_failures, raw.feed_state;")
