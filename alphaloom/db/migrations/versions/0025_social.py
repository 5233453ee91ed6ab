"""Social posts: a source kind of their own (Reddit-style and other community feeds, any feed marked ``social``).

Revision ID: 0025_social

``raw.social_posts``: one row per post, ``id`` = hash of its canonical link (else of feed and guid), as ``raw.news``;
``first_seen_at`` the earliest sighting (a live fetch: the fetch time; a file: published + the assumed latency,
flagged ``first_seen_assumed``). ``author`` and ``author_created_at`` (only when the feed says so) feed the new-account
filter, ``text_hash`` (normalised title and body) the repeated-text filter; both filters run when a decision reads the
posts, over what was known by then. ``raw.social_symbols``: (post, symbol) with ``first_known_at``, the first sighting
that tagged the post with the symbol. ``raw.social_sightings``: (post, feed), so a post cross-posted to two
communities is one post seen twice.
"""

from __future__ import annotations

from alembic import op

revision = "0025_social"
down_revision = "0023_teamwf"
branch_labels = None
depends_on = None

UPGRADE = """
create table raw.social_posts (
    id                  text primary key,
    url                 text,
    author              text,
    author_created_at   timestamptz,
    title               text not null,
    body                text not null,
    text_hash           text not null,
    published_at        timestamptz not null,
    first_seen_at       timestamptz not null,
    first_seen_assumed  boolean not null,
    run_id              text not null references audit.runs (run_id),
    created_at          timestamptz not null default now()
);
create index social_posts_text_idx on raw.social_posts (text_hash, first_seen_at);
create table raw.social_sightings (
    post_id   text not null references raw.social_posts (id),
    source    text not null,
    seen_at   timestamptz not null,
    run_id    text not null references audit.runs (run_id),
    primary key (post_id, source)
);
create table raw.social_symbols (
    post_id         text not null references raw.social_posts (id),
    symbol          text not null,
    first_known_at  timestamptz not null,
    primary key (post_id, symbol)
);
create index social_symbols_symbol_known_idx on raw.social_symbols (symbol, first_known_at);
"""

DOWNGRADE = """
drop table if exists raw.social_symbols;
drop table if exists raw.social_sightings;
drop table if exists raw.social_posts;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
