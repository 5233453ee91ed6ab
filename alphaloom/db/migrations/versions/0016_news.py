"""News: undated stories from URL feeds, and when each symbol link became known.

Revision ID: 0016_news

``raw.news.published_unknown``: the feed gave the story no date; it was kept because it came from a URL feed, whose
fetch time is a true first-seen time, and ``published_at`` holds that fetch time.

``raw.news_symbols.first_known_at``: the first-seen time of the earliest sighting that linked the story to the symbol.
A later sighting can tag a story with another symbol; point-in-time readers take the story for that symbol only from
``greatest(raw.news.first_seen_at, first_known_at)``. Links stored before this revision, and a link inserted without a
time (a hand-made fixture, an older writer), are taken as known when their story was first seen: the most that was
recorded. The ingest always writes the time.
"""

from __future__ import annotations

from alembic import op

revision = "0016_news"
down_revision = "0013_orders"
branch_labels = None
depends_on = None

UPGRADE = """
alter table raw.news add column published_unknown boolean not null default false;

alter table raw.news_symbols add column first_known_at timestamptz;
update raw.news_symbols s set first_known_at = n.first_seen_at from raw.news n where n.id = s.news_id;
alter table raw.news_symbols alter column first_known_at set not null;

create function raw.news_symbols_known_default() returns trigger language plpgsql as $$
begin
    select first_seen_at into new.first_known_at from raw.news where id = new.news_id;
    return new;
end $$;
create trigger news_symbols_known_default before insert on raw.news_symbols
    for each row when (new.first_known_at is null) execute function raw.news_symbols_known_default();
create index news_symbols_symbol_known_idx on raw.news_symbols (symbol, first_known_at);
"""

DOWNGRADE = """
drop trigger if exists news_symbols_known_default on raw.news_symbols;
drop function if exists raw.news_symbols_known_default();
drop index if exists raw.news_symbols_symbol_known_idx;
alter table raw.news_symbols drop column if exists first_known_at;
alter table raw.news drop column if exists published_unknown;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
