"""Benchmark: dedupe and merge of N news items from many feeds vs a raw psycopg COPY of the distinct stories.

Generates ``--feeds`` RSS documents holding ``--items`` entries in all, of which about 40% are copies of a story in
another feed: the same link with tracking parameters added (one identity through the canonical URL) or the same
headline under another link within minutes (one identity through the normalised title). Each document is parsed with
feedparser (``parse_document``, timed apart: it is the parser's cost, not ours), then ``store_news`` dedupes the whole
batch (guid / canonical URL / normalised title against the batch and what is stored) and merges stories, sightings
and symbols in one transaction. A second ``store_news`` of the same feeds (everything already stored) is timed too.

Baseline, same run and server: a raw COPY of the distinct stories into a bare table with the same primary key.
Prints the timings, items/s and the ratio ours/raw. Usage: python bench/news.py [--items 100000] [--feeds 20]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

import numpy as np
import psycopg
from _throwaway import create_throwaway_database, drop_throwaway_database
from sqlalchemy import create_engine, text

from alphaloom.db.engine import libpq_url
from alphaloom.db.migrate import upgrade
from alphaloom.ingest.news_source import ParsedFeed, parse_document, store_news
from alphaloom.records.runs import start_run

ALIASES = {"bitcoin": "BTC/USDT", "ether": "ETH/USDT", "apple": "AAPL/USD", "microsoft": "MSFT/USD"}
SUBJECTS = ["Bitcoin", "Ether", "Apple", "Microsoft", "Regulators", "Miners", "Funds", "Banks"]
VERBS = ["jumps", "slides", "steadies", "rallies", "tumbles", "holds", "surges", "dips"]
RAW_TABLE = """
create table bench_news_copy (
    id text primary key, url text, title text not null, summary text not null,
    published_at timestamptz not null, first_seen_at timestamptz not null
)
"""


def make_feeds(items: int, feeds: int, seed: int = 7) -> list[list[tuple[str, str, datetime]]]:
    """Entries (link, title, published) per feed; ~60% distinct stories, the rest syndicated copies."""
    rng = np.random.default_rng(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    stories = int(items * 0.6)
    base = [
        (
            f"https://news{n % 7}.example.com/markets/{n}",
            f"{SUBJECTS[n % len(SUBJECTS)]} {VERBS[(n // 8) % len(VERBS)]} as story {n} unfolds",
            start + timedelta(minutes=int(n * 3)),
        )
        for n in range(stories)
    ]
    out: list[list[tuple[str, str, datetime]]] = [[] for _ in range(feeds)]
    for n, entry in enumerate(base):
        out[n % feeds].append(entry)
    for k in range(items - stories):
        link, title, published = base[int(rng.integers(0, stories))]
        if k % 2:
            copy = (f"{link}?utm_source=feed{k % feeds}&utm_medium=rss", title, published)
        else:
            copy = (f"https://mirror{k % 5}.example.org/a/{k}", title.upper() + "!", published + timedelta(minutes=4))
        out[(k * 7 + 3) % feeds].append(copy)
    return out


def rss(entries: list[tuple[str, str, datetime]], n: int) -> str:
    body = "".join(
        f"<item><title>{escape(title)}</title><link>{escape(link)}</link><guid>{escape(link)}</guid>"
        f"<pubDate>{format_datetime(published)}</pubDate><description>{escape(title)} in detail.</description></item>"
        for link, title, published in entries
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Bench feed {n}</title>{body}</channel></rss>'


def main(items: int, feeds: int) -> float:
    url = create_throwaway_database()
    engine = create_engine(url)
    try:
        upgrade(engine)
        documents = [rss(entries, n) for n, entries in enumerate(make_feeds(items, feeds))]
        start = time.perf_counter()
        latency = timedelta(minutes=5)
        parsed: list[ParsedFeed] = [
            parse_document(
                doc, source=f"bench://{n}", name=f"feed{n}", fetched_at=None, assumed_latency=latency, aliases=ALIASES
            )
            for n, doc in enumerate(documents)
        ]
        parse_seconds = time.perf_counter() - start
        assert sum(len(p.items) for p in parsed) == items, "every generated entry parses"

        run_id = start_run(engine, "bench_news", {"items": items})
        start = time.perf_counter()
        with engine.begin() as conn:
            first = store_news(conn, run_id, parsed)
        ours_seconds = time.perf_counter() - start
        start = time.perf_counter()
        with engine.begin() as conn:
            again = store_news(conn, run_id, parsed)
        again_seconds = time.perf_counter() - start
        assert again.new_items == 0, again

        with engine.connect() as conn:
            stored = conn.execute(text("select count(*) from raw.news")).scalar_one()
            rows = conn.execute(text("select id, url, title, summary, published_at, first_seen_at from raw.news")).all()
        with psycopg.connect(libpq_url(url)) as conn:
            conn.execute(RAW_TABLE)
            conn.commit()
            start = time.perf_counter()
            with conn.cursor() as cur, cur.copy("copy bench_news_copy from stdin") as copy:
                for row in rows:
                    copy.write_row(row)
            conn.commit()
            raw_seconds = time.perf_counter() - start
    finally:
        engine.dispose()
        drop_throwaway_database(url)

    ratio = raw_seconds / ours_seconds
    print(f"items: {items:,} in {feeds} feeds -> {stored:,} distinct stories ({first.duplicate_items:,} duplicates)")
    print(
        f"feedparser parse (not ours):                 {parse_seconds:7.2f} s  {items / parse_seconds:10,.0f} items/s"
    )
    print(f"dedupe + merge, first load (store_news):     {ours_seconds:7.2f} s  {items / ours_seconds:10,.0f} items/s")
    print(
        f"dedupe + merge, same feeds again (0 new):    {again_seconds:7.2f} s  {items / again_seconds:10,.0f} items/s"
    )
    print(f"raw COPY of the distinct stories (baseline):  {raw_seconds:7.2f} s")
    print(f"ratio ours/raw (time of raw COPY / time of ours): {ratio:.2f}")
    return ours_seconds


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--feeds", type=int, default=20)
    args = parser.parse_args()
    main(args.items, args.feeds)
