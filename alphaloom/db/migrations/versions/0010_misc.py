"""Realised P&L per fill (converted into the account's base currency at the rate of its own time), and walk-forward
results.

Revision ID: 0010_misc

``audit.fills.realized_pnl``: what a sell fill realised, in the symbol's quote currency (quantity * price - fee -
quantity * the position's average cost before it; the same arithmetic as ``execution.accounts.holdings``); null for a buy and for
fills booked before this column existed (their realised P&L is still in ``audit.positions.realized_pnl``, and the
account view converts that remainder at its current rate).

``audit.walk_forward_runs`` / ``audit.walk_forward_windows``: one row per walk-forward run (its setup, the metrics of the
chained out-of-sample curve, the path of its HTML page) and one per window (the in-sample choice with its in-sample
score, and what it did out of sample). Walk-forward runs on the vectorized fast path, so scores are floats.
"""

from __future__ import annotations

from alembic import op

revision = "0010_misc"
down_revision = "0008_live"
branch_labels = None
depends_on = None

UPGRADE = """
alter table audit.fills add column realized_pnl numeric;

-- Routing now walks several book levels: a leg's venue price is the size-weighted price of the levels it takes.
comment on column audit.route_legs.venue_price is
    'expected price of the leg before fees: size-weighted over the book levels it takes at its venue';
comment on column audit.route_legs.effective_price is 'venue_price after the venue''s taker fee';

create table audit.walk_forward_runs (
    run_id           text primary key references audit.runs (run_id),
    exchange         text not null,
    timeframe        text not null,
    symbols          text[] not null,
    objective        text not null,
    in_sample_bars   integer not null,
    out_sample_bars  integer not null,
    grid             jsonb not null,
    metrics          jsonb not null,
    page             text,
    created_at       timestamptz not null default now()
);

create table audit.walk_forward_windows (
    run_id                text not null references audit.walk_forward_runs (run_id),
    window_no             integer not null,
    in_sample_start       timestamptz not null,
    in_sample_end         timestamptz not null,
    out_of_sample_start   timestamptz not null,
    out_of_sample_end     timestamptz not null,
    fast                  integer not null,
    slow                  integer not null,
    in_sample_score       double precision,
    out_of_sample_score   double precision,
    out_of_sample_return  double precision not null,
    out_of_sample_fills   integer not null,
    primary key (run_id, window_no)
);
"""

DOWNGRADE = """
comment on column audit.route_legs.venue_price is null;
comment on column audit.route_legs.effective_price is null;
drop table if exists audit.walk_forward_windows;
drop table if exists audit.walk_forward_runs;
alter table audit.fills drop column if exists realized_pnl;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
