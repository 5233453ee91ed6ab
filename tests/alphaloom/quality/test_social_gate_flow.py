"""The news flow runs social feeds through the GX social suite before they are stored: a post tagged with a symbol we
do not know is quarantined with the expectation's label, the others stored, the checkpoint summary recorded."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import Engine, text

ENTRY = """<entry><title>{title}</title><id>{id}</id><link href="https://www.reddit.com/r/x/comments/{id}/"/>
<author><name>/u/{author}</name></author><updated>2026-10-06T09:00:00+00:00</updated>
<content type="html">{body}</content><category term="{symbol}"/></entry>"""


def test_the_news_flow_quarantines_social_posts_the_gate_rejects(
    engine: Engine, prefect_harness, tmp_path: Path
) -> None:
    from flows.ingest_news import ingest_news

    tag = uuid.uuid4().hex[:8]
    entries = [
        ENTRY.format(title="Bitcoin breakout today", id=f"t3_{tag}_ok", author="a", body="Strong.", symbol="BTC/USDT"),
        ENTRY.format(title="Unknown coin pump", id=f"t3_{tag}_zz", author="b", body="Buy.", symbol="ZZZ/USDT"),
    ]
    feed = tmp_path / f"r_gate_{tag}.atom"
    feed.write_text('<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
                    f"<title>r/x</title><id>https://www.reddit.com/r/x/.rss</id>{''.join(entries)}</feed>",
                    encoding="utf-8")  # fmt: skip
    result = ingest_news([f"social:{feed}"])
    assert result["social"]["new_posts"] == 1 and result["social"]["quarantined"] == 1
    with engine.connect() as conn:
        run_id = conn.execute(
            text("select run_id from raw.social_posts where title = 'Bitcoin breakout today' and url like :u"),
            {"u": f"%t3_{tag}_ok%"},
        ).scalar_one()
        reason = conn.execute(
            text("select reason from raw.quarantine where run_id = :r and location like 'post %'"), {"r": run_id}
        ).scalar_one()
        summary = conn.execute(
            text("select success, evaluated, unexpected from raw.quality_results where run_id = :r and suite = :s"),
            {"r": run_id, "s": "alphaloom_social"},
        ).one()
    assert "tagged with known symbols only" in reason
    assert (summary.success, summary.evaluated, summary.unexpected) == (False, 2, 1)
