"""Risk and execution: durable paper venue, live arming, guard trips, account halts, FX rates, reconciliation,
order parents and arrival prices, protective exits, shadow drift, encrypted credentials.

Revision ID: 0002_risk
"""

from __future__ import annotations

from alembic import op

revision = "0002_risk"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
-- The paper venue's own book, written in its own transaction like a real venue's: it survives a crash of the process
-- that submitted, so an order whose outcome is unknown can be looked up by client order id.
create schema if not exists paper_venue;
create table paper_venue.orders (
    -- Like Binance, the client order id is unique only among open orders: resending a filled order's id would make
    -- a second venue order, so a double submit is visible here (the crash-recovery tests count rows per client id).
    venue_order_id   text primary key,
    client_order_id  text not null,
    account          text not null,
    symbol           text not null,
    side             text not null check (side in ('buy', 'sell')),
    order_type       text not null,
    quantity         numeric not null check (quantity > 0),
    limit_price      numeric,
    stop_price       numeric,
    status           text not null,
    fills            jsonb not null default '[]'::jsonb,
    reason           text not null default '',
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now()
);
create index paper_venue_orders_client_idx on paper_venue.orders (client_order_id, created_at);
create unique index paper_venue_orders_open_idx on paper_venue.orders (client_order_id)
    where status in ('submitted', 'partially_filled');

-- Write-ahead record of every submit attempt, committed before the broker is called (its own transaction): an
-- attempt with no audit order is an outcome unknown, looked up at the venue by client order id before any resend.
create table audit.submit_attempts (
    client_order_id  text primary key,
    account          text not null,
    venue            text not null,
    attempted_at     timestamptz not null default now()
);

-- Live orders need this flag on top of credentials (and mode live or shadow).
alter table audit.accounts add column live_enabled boolean not null default false;

-- Child orders (TWAP, iceberg, routed splits) point at their parent; arrival price is the mid/last at decision time.
alter table audit.orders add column parent_client_order_id text;
alter table audit.orders add column arrival_price numeric;
create index orders_parent_idx on audit.orders (parent_client_order_id) where parent_client_order_id is not null;
create index orders_open_idx on audit.orders (account, status) where status in ('new', 'submitted', 'partially_filled');

-- Every trip of a fat-finger check or execution guard, with its numbers; shown by the CLI.
create table audit.guard_trips (
    id               bigserial primary key,
    run_id           text references audit.runs (run_id),
    account          text not null,
    symbol           text,
    client_order_id  text,
    decision_id      text,
    guard            text not null,
    reason           text not null,
    numbers          jsonb not null default '{}'::jsonb,
    created_at       timestamptz not null default now()
);
create index guard_trips_account_idx on audit.guard_trips (account, created_at);

-- An account halted (daily loss limit, drawdown) sends nothing until released; latest row per account wins.
create table audit.account_halts (
    id          bigserial primary key,
    account     text not null references audit.accounts (id),
    halted      boolean not null,
    reason      text not null,
    numbers     jsonb not null default '{}'::jsonb,
    changed_at  timestamptz not null default now()
);
create index account_halts_account_idx on audit.account_halts (account, id desc);

-- Equity marked at each decision time: the drawdown controller's peak is the highest mark known at as_of.
create table audit.equity_marks (
    account  text not null references audit.accounts (id),
    as_of    timestamptz not null,
    equity   numeric not null,
    primary key (account, as_of)
);

-- Conversion rates: 1 unit of base = rate units of quote, known from as_of.
create table audit.fx_rates (
    base    text not null,
    quote   text not null,
    rate    numeric not null check (rate > 0),
    as_of   timestamptz not null,
    source  text not null default 'manual',
    primary key (base, quote, as_of)
);

-- Start-of-session reconciliation of a live account with its venue: one row per difference found (or one 'ok').
create table audit.reconciliations (
    id          bigserial primary key,
    run_id      text references audit.runs (run_id),
    account     text not null references audit.accounts (id),
    kind        text not null check (kind in ('position', 'balance', 'order', 'ok')),
    item        text not null,
    ours        numeric,
    venue       numeric,
    difference  numeric,
    details     jsonb not null default '{}'::jsonb,
    created_at  timestamptz not null default now()
);

-- Stop-loss / take-profit levels protected between decision runs.
create table audit.protective_exits (
    account            text not null references audit.accounts (id),
    symbol             text not null,
    quantity           numeric not null check (quantity > 0),
    entry_price        numeric not null,
    stop_price         numeric,
    take_profit_price  numeric,
    mode               text not null check (mode in ('venue_native', 'bar_check')),
    venue_order_id     text,
    status             text not null default 'active' check (status in ('active', 'triggered', 'cancelled')),
    triggered_by       text,
    exit_client_order_id text,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    primary key (account, symbol)
);

-- Shadow mode: paper beside live on the same intents; the drift per order.
create table audit.shadow_drift (
    client_order_id      text primary key references audit.orders (client_order_id),
    account              text not null,
    symbol               text not null,
    side                 text not null,
    quantity             numeric not null,
    arrival_price        numeric not null,
    live_price           numeric,
    paper_price          numeric,
    live_filled          numeric not null,
    paper_filled         numeric not null,
    live_slippage_bps    numeric,
    paper_slippage_bps   numeric,
    price_drift_bps      numeric,
    created_at           timestamptz not null default now()
);

-- Venue credentials, encrypted (Fernet); the plaintext is never stored, logged or audited.
create schema if not exists secrets;
create table secrets.credentials (
    exchange    text not null,
    account     text not null,
    ciphertext  text not null,
    created_at  timestamptz not null default now(),
    primary key (exchange, account)
);
"""

DOWNGRADE = """
drop schema if exists secrets cascade;
drop table if exists audit.submit_attempts, audit.equity_marks, audit.shadow_drift, audit.protective_exits, audit.reconciliations, audit.fx_rates,
    audit.account_halts, audit.guard_trips;
drop index if exists audit.orders_open_idx;
drop index if exists audit.orders_parent_idx;
alter table audit.orders drop column if exists arrival_price;
alter table audit.orders drop column if exists parent_client_order_id;
alter table audit.accounts drop column if exists live_enabled;
drop schema if exists paper_venue cascade;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
