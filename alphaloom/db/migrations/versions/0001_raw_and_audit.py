"""Schemas raw and audit (ARCHITECTURE §3).

Revision ID: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = """
create schema if not exists raw;
create schema if not exists audit;

create table audit.runs (
    run_id       text primary key,
    flow         text not null,
    status       text not null default 'running' check (status in ('running', 'completed', 'failed')),
    parameters   jsonb not null default '{}'::jsonb,
    git_sha      text,
    started_at   timestamptz not null default now(),
    finished_at  timestamptz,
    error        text
);

create table raw.ohlcv (
    exchange    text not null,
    symbol      text not null,
    timeframe   text not null,
    ts          timestamptz not null,
    open        numeric not null check (open > 0),
    high        numeric not null check (high > 0),
    low         numeric not null check (low > 0),
    close       numeric not null check (close > 0),
    volume      numeric not null check (volume >= 0),
    -- No foreign key here: a per-row FK check doubles the cost of a bulk merge; ingest writes its run row first.
    run_id      text not null,
    ingested_at timestamptz not null default now(),
    primary key (exchange, symbol, timeframe, ts),
    check (high >= greatest(open, close) and low <= least(open, close))
);

create table raw.news (
    id                 text primary key,
    url                text,
    title              text not null,
    summary            text not null default '',
    published_at       timestamptz not null,
    first_seen_at      timestamptz not null,
    first_seen_assumed boolean not null,
    run_id             text not null references audit.runs (run_id),
    ingested_at        timestamptz not null default now()
);
create index news_first_seen_idx on raw.news (first_seen_at);

create table raw.news_sightings (
    news_id  text not null references raw.news (id),
    source   text not null,
    seen_at  timestamptz not null,
    run_id   text not null references audit.runs (run_id),
    primary key (news_id, source)
);

create table raw.news_symbols (
    news_id text not null references raw.news (id),
    symbol  text not null,
    primary key (news_id, symbol)
);
create index news_symbols_symbol_idx on raw.news_symbols (symbol, news_id);

create table raw.quarantine (
    id          bigserial primary key,
    source      text not null,
    location    text,
    payload     text not null,
    reason      text not null,
    run_id      text not null references audit.runs (run_id),
    created_at  timestamptz not null default now()
);

create table audit.accounts (
    id             text primary key,
    venue          text not null,
    base_currency  text not null,
    mode           text not null check (mode in ('paper', 'live', 'shadow')),
    starting_cash  numeric not null default 0,
    created_at     timestamptz not null default now()
);

create table audit.balances (
    account     text not null references audit.accounts (id),
    currency    text not null,
    amount      numeric not null,
    run_id      text references audit.runs (run_id),
    updated_at  timestamptz not null default now(),
    primary key (account, currency)
);

create table audit.sentiment_scores (
    text_hash   text not null,
    scorer      text not null,
    news_id     text not null references raw.news (id),
    label       text not null check (label in ('positive', 'negative', 'neutral')),
    score       double precision not null check (score between -1 and 1),
    run_id      text not null references audit.runs (run_id),
    created_at  timestamptz not null default now(),
    primary key (text_hash, scorer)
);
create index sentiment_scores_news_idx on audit.sentiment_scores (news_id);

create table audit.decisions (
    decision_id       text primary key,
    run_id            text not null references audit.runs (run_id),
    account           text not null references audit.accounts (id),
    symbol            text not null,
    timeframe         text not null,
    as_of             timestamptz not null,
    action            text not null check (action in ('buy', 'sell', 'hold')),
    score             double precision not null,
    config_version    text not null,
    dbt_invocation_id text,
    git_sha           text,
    inputs            jsonb not null,
    created_at        timestamptz not null default now()
);
create index decisions_account_asof_idx on audit.decisions (account, symbol, as_of);

create table audit.agent_outputs (
    id           bigserial primary key,
    run_id       text not null references audit.runs (run_id),
    decision_id  text not null references audit.decisions (decision_id),
    agent        text not null,
    symbol       text not null,
    as_of        timestamptz not null,
    model        text,
    prompt_hash  text,
    input_ref    jsonb not null default '{}'::jsonb,
    output       jsonb not null,
    skipped      boolean not null default false,
    tokens       integer,
    latency_ms   integer,
    created_at   timestamptz not null default now(),
    unique (decision_id, agent)
);

create table audit.risk_checks (
    id           bigserial primary key,
    run_id       text not null references audit.runs (run_id),
    decision_id  text not null references audit.decisions (decision_id),
    account      text not null,
    symbol       text not null,
    check_name   text not null,
    approved     boolean not null,
    reason       text not null,
    numbers      jsonb not null default '{}'::jsonb,
    created_at   timestamptz not null default now(),
    unique (decision_id, check_name)
);

create table audit.orders (
    client_order_id  text primary key,
    decision_id      text not null references audit.decisions (decision_id),
    leg              integer not null,
    run_id           text not null references audit.runs (run_id),
    account          text not null references audit.accounts (id),
    venue            text not null,
    symbol           text not null,
    side             text not null check (side in ('buy', 'sell')),
    order_type       text not null default 'market',
    quantity         numeric not null check (quantity > 0),
    limit_price      numeric,
    reference_price  numeric not null,
    status           text not null,
    venue_order_id   text,
    filled_quantity  numeric not null default 0,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    unique (decision_id, leg)
);

create table audit.order_events (
    id               bigserial primary key,
    client_order_id  text not null references audit.orders (client_order_id),
    run_id           text not null references audit.runs (run_id),
    event            text not null,
    from_status      text,
    to_status        text not null,
    event_ts         timestamptz not null,
    recorded_at      timestamptz not null default now(),
    details          jsonb not null default '{}'::jsonb
);

create table audit.fills (
    fill_id          text primary key,
    client_order_id  text not null references audit.orders (client_order_id),
    run_id           text not null references audit.runs (run_id),
    account          text not null,
    symbol           text not null,
    side             text not null check (side in ('buy', 'sell')),
    quantity         numeric not null check (quantity > 0),
    price            numeric not null check (price > 0),
    fee              numeric not null,
    fee_currency     text not null,
    slippage         numeric not null,
    ts               timestamptz not null,
    recorded_at      timestamptz not null default now()
);

create table audit.positions (
    account       text not null references audit.accounts (id),
    symbol        text not null,
    quantity      numeric not null,
    avg_price     numeric not null,
    realized_pnl  numeric not null default 0,
    run_id        text references audit.runs (run_id),
    updated_at    timestamptz not null default now(),
    primary key (account, symbol)
);

create table audit.kill_switch (
    id          bigserial primary key,
    engaged     boolean not null,
    reason      text not null,
    changed_by  text not null,
    changed_at  timestamptz not null default now()
);

create table audit.llm_cache (
    prompt_hash  text primary key,
    model        text not null,
    response     jsonb not null,
    tokens       integer,
    created_at   timestamptz not null default now()
);

create table audit.lineage (
    id            bigserial primary key,
    run_id        text not null references audit.runs (run_id),
    child_table   text not null,
    child_id      text not null,
    parent_table  text not null,
    parent_key    jsonb not null,
    created_at    timestamptz not null default now()
);
create index lineage_child_idx on audit.lineage (child_table, child_id);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("drop schema if exists raw cascade; drop schema if exists audit cascade;")
