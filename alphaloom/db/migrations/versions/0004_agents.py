"""Agent memory (opinion outcomes, agent weights) and the LLM usage ledger (tokens, latency, cost, budget skips).

Revision ID: 0004_agents
"""

from __future__ import annotations

from alembic import op

revision = "0004_agents"
down_revision = "0002_risk"
branch_labels = None
depends_on = None

UPGRADE = """
-- One row per scored opinion: the realised return over the opinion's horizon, known at realised_at.
-- Memory is point in time: a decision at T reads only rows with realised_at <= T.
create table audit.opinion_outcomes (
    decision_id      text not null references audit.decisions (decision_id),
    agent            text not null,
    account          text not null,
    symbol           text not null,
    as_of            timestamptz not null,
    realised_at      timestamptz not null,
    horizon_bars     integer not null check (horizon_bars > 0),
    action           text not null check (action in ('buy', 'sell', 'hold')),
    confidence       double precision not null,
    entry_price      double precision not null,
    exit_price       double precision not null,
    realised_return  double precision not null,
    hit              boolean,
    score            double precision not null,
    run_id           text not null references audit.runs (run_id),
    created_at       timestamptz not null default now(),
    primary key (decision_id, agent)
);
create index opinion_outcomes_account_realised_idx on audit.opinion_outcomes (account, realised_at);

-- The weights each agent had at a decision time, derived from the outcomes realised by then.
create table audit.agent_weights (
    account     text not null,
    agent       text not null,
    as_of       timestamptz not null,
    weight      double precision not null,
    hit_rate    double precision,
    scored      integer not null,
    run_id      text not null references audit.runs (run_id),
    created_at  timestamptz not null default now(),
    primary key (account, agent, as_of)
);

-- Every LLM call, cache hit and skip, with what it cost: the budget caps sum this ledger.
create table audit.llm_usage (
    id                 bigserial primary key,
    run_id             text not null references audit.runs (run_id),
    symbol             text,
    as_of              timestamptz,
    model              text not null,
    prompt_hash        text,
    status             text not null check (status in ('ok', 'cached', 'repaired', 'invalid', 'timeout', 'error',
                                                       'budget_exceeded')),
    prompt_tokens      integer not null default 0,
    completion_tokens  integer not null default 0,
    total_tokens       integer not null default 0,
    cost               numeric not null default 0,
    latency_ms         integer,
    detail             text,
    created_at         timestamptz not null default now()
);
create index llm_usage_created_idx on audit.llm_usage (created_at);
create index llm_usage_run_idx on audit.llm_usage (run_id);

alter table audit.llm_cache add column if not exists prompt_version text;
"""

DOWNGRADE = """
alter table audit.llm_cache drop column if exists prompt_version;
drop table if exists audit.llm_usage;
drop table if exists audit.agent_weights;
drop table if exists audit.opinion_outcomes;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
