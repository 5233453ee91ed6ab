"""GX quality gate: row-level failures quarantined with the expectation's name, the rest merged; results kept."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
import pytest
from sqlalchemy import text

from alphaloom.domain import NewsItem
from alphaloom.ingest.news_source import ParsedFeed, store_news
from alphaloom.ingest.prices import COLUMNS, PriceBatch, merge_bars
from alphaloom.ingest.social_post import SocialPost
from alphaloom.ingest.social_source import ParsedSocialFeed, post_text_hash, store_social
from alphaloom.markets import MarketSpec
from alphaloom.quality.offline_docs import write_offline_index
from alphaloom.quality.offline_docs_html import FailedExpectation, SuiteEntry, ValidationEntry, render_offline_index
from alphaloom.quality.quality_gate import QualityGate, latest_reports, record_report
from alphaloom.quality.suites import price_checks
from alphaloom.records.runs import start_run


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> QualityGate:
    return QualityGate(tmp_path_factory.mktemp("home"), gap_tolerance_bars=1)


def bars(exchange: str, rows: list[tuple[str, str, str, str, str, str]]) -> PriceBatch:
    # Built directly, past the file validator, as a buggy source could: the gate is the second line of defence.
    data = [(exchange, "BTC/USDT", "1h", *r) for r in rows]
    return PriceBatch(
        "/data/prices/test source.csv", pa.table({c: [d[i] for d in data] for i, c in enumerate(COLUMNS)})
    )


def test_failing_rows_are_quarantined_with_the_expectation_and_the_rest_merged(engine, gate: QualityGate) -> None:
    exchange = f"gx-{uuid.uuid4().hex[:8]}"
    batch = bars(exchange, [
        ("2026-01-01T00:00:00Z", "100", "101", "99", "100.5", "5"),
        ("2026-01-01T01:00:00Z", "100", "99.5", "98", "99", "5"),  # high below open
        ("2026-01-01T02:00:00Z", "99", "100", "98", "99", "-1"),  # negative volume
        ("2026-01-01T03:00:00Z", "99", "100", "98", "99.5", "7"),
        ("2026-01-01T06:00:00Z", "99", "100", "98", "99.5", "7"),  # two bars missing before: a gap, reported only
    ])  # fmt: skip
    clean, report = gate.check_prices(batch)
    assert len(clean) == 3 and report.evaluated == 5 and report.unexpected == 2 and not report.success
    labels = {f["label"]: f for f in report.failed}
    assert labels["high >= open"]["unexpected_count"] == 1 and labels["volume >= 0"]["row_level"]
    assert not labels["no gap over 1 bars within the session calendar"]["row_level"]
    assert report.data_docs_path and Path(report.data_docs_path).is_file()

    run_id = start_run(engine, "test_quality", {})
    with engine.begin() as conn:
        record_report(conn, run_id, report)
        assert merge_bars(conn, clean, run_id).inserted == 3
        reasons = conn.execute(
            text("select location, reason from raw.quarantine where run_id = :r order by location"), {"r": run_id}
        ).all()
        stored = conn.execute(text("select count(*) from raw.ohlcv where exchange = :e"), {"e": exchange}).scalar()
        latest = [r for r in latest_reports(conn, 50) if r["run_id"] == run_id]
    assert stored == 3
    assert [r[0].split()[-1] for r in reasons] == ["2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"]
    assert "expect_column_pair_values_a_to_be_greater_than_b (high >= open)" in reasons[0][1]
    assert "expect_column_values_to_be_between (volume >= 0)" in reasons[1][1]
    assert latest[0]["suite"] == "alphaloom_prices" and latest[0]["unexpected"] == 2


def test_stock_closures_are_no_gaps(gate: QualityGate) -> None:
    # Friday's last session bar, then Monday's first: a weekend and two nights, but nothing missing.
    batch = bars(
        "gx-stocks",
        [("2026-01-02T20:00:00Z", "1", "1", "1", "1", "1"), ("2026-01-05T14:00:00Z", "1", "1", "1", "1", "1")],
    )
    batch = PriceBatch(batch.source, batch.table.set_column(1, "symbol", pa.array(["AAPL/USD"] * 2)))
    stock = MarketSpec("AAPL/USD", "equity", Decimal(1), source="config")  # ALPHALOOM_ASSET_CLASSES says so
    clean, report = gate.check_prices(batch, {("gx-stocks", "AAPL/USD"): stock})
    assert report.success and len(clean) == 2


def test_news_batch_quarantines_bad_stories(engine, gate: QualityGate) -> None:
    now = datetime(2026, 10, 6, 12, tzinfo=UTC)
    tag = uuid.uuid4().hex[:8]

    def item(n: int, url: str | None, published: datetime) -> NewsItem:
        return NewsItem(id=f"{tag}-{n}", url=url, title=f"story {n}", summary="", published_at=published,
                        first_seen_at=now, first_seen_assumed=False)  # fmt: skip

    feed = ParsedFeed([
        item(1, f"https://news.example/{tag}/1", now - timedelta(hours=1)),
        item(2, f"ftp://news.example/{tag}/2", now),  # not a web link
        item(3, None, now + timedelta(days=3)),  # dated three days after we saw it
    ], "feed-" + tag)  # fmt: skip
    (clean,), report = gate.check_news([feed], batch="test")
    assert [i.id for i in clean.items] == [f"{tag}-1"] and report.unexpected == 2
    run_id = start_run(engine, "test_quality_news", {})
    with engine.begin() as conn:
        result = store_news(conn, run_id, [clean])
        reasons = (
            conn.execute(text("select reason from raw.quarantine where run_id = :r order by location"), {"r": run_id})
            .scalars()
            .all()
        )
    assert result.new_items == 1 and result.quarantined == 2
    assert "url is http(s)" in reasons[0] and "published at most 24 h after first seen" in reasons[1]


def test_social_batch_quarantines_empty_future_and_unknown_symbol_posts(engine, gate: QualityGate) -> None:
    now = datetime(2026, 10, 6, 12, tzinfo=UTC)
    tag = uuid.uuid4().hex[:8]

    def post(n: int, title: str, body: str = "", *, seen: datetime = now, symbols: tuple[str, ...] = ("BTC/USDT",),
             url: str | None = None) -> SocialPost:  # fmt: skip
        return SocialPost(f"{tag}-{n}", url, "/u/a", None, title, body, post_text_hash(title, body), seen - timedelta(
            minutes=5), seen, False, symbols)  # fmt: skip

    feed = ParsedSocialFeed([
        post(1, "BTC breaking out", url=f"https://community.example/{tag}/1"),
        post(2, "  ", " "),  # no text
        post(3, "BTC to the moon", seen=now + timedelta(hours=2)),  # first seen after the check
        post(4, "ZZZ pump", symbols=("BTC/USDT", "ZZZ/USDT")),  # tagged with a symbol we do not know
        post(5, "BTC dip", seen=now + timedelta(seconds=30)),  # within the clock skew allowed
        post(6, "no symbol at all", symbols=()),
    ], "social-" + tag)  # fmt: skip
    (clean,), report = gate.check_social([feed], batch="test social", known_symbols={"BTC/USDT"}, now=now)
    assert [p.id for p in clean.posts] == [f"{tag}-1", f"{tag}-5", f"{tag}-6"]
    assert report.suite == "alphaloom_social" and report.unexpected == 3 and not report.success
    assert {f["label"] for f in report.failed} == {"text not empty", "first seen not in the future",
                                                  "tagged with known symbols only"}  # fmt: skip
    run_id = start_run(engine, "test_quality_social", {})
    with engine.begin() as conn:
        record_report(conn, run_id, report)
        result = store_social(conn, run_id, [clean])
        rows = conn.execute(text("select location, reason from raw.quarantine where run_id = :r order by location"),
                            {"r": run_id}).all()  # fmt: skip
        stored = conn.execute(text("select count(*) from raw.social_posts where id like :t"), {"t": f"{tag}-%"})
    assert result.new_posts == 3 and result.quarantined == 3 and stored.scalar_one() == 3
    reasons = {location: reason for location, reason in rows}
    assert "text not empty" in reasons[f"post {tag}-2"]
    assert "first seen not in the future" in reasons[f"post {tag}-3"]
    assert "tagged with known symbols only" in reasons[f"post {tag}-4"]


def test_a_clean_social_batch_passes_untouched(gate: QualityGate) -> None:
    now = datetime(2026, 10, 6, 12, tzinfo=UTC)
    post = SocialPost("ok-1", None, None, None, "ETH strong", "", post_text_hash("ETH strong", ""), now, now, False,
                      ("ETH/USDT",))  # fmt: skip
    feeds = [ParsedSocialFeed([post], "social-ok")]
    out, report = gate.check_social(feeds, batch="clean social", known_symbols={"ETH/USDT"}, now=now)
    assert out is feeds and report.success and report.evaluated == 1 and report.unexpected == 0


def _row_of(page: str, needle: str) -> str:
    (row,) = [r for r in page.split("<tr") if needle in r]
    return row


def test_offline_data_docs_page_lists_each_result_with_links_that_resolve(gate: QualityGate) -> None:
    tag = uuid.uuid4().hex[:8]
    failing = bars("gx-offline", [
        ("2026-02-01T00:00:00Z", "100", "101", "99", "100.5", "5"),
        ("2026-02-01T01:00:00Z", "100", "99.5", "98", "99", "5"),  # high below open
    ])  # fmt: skip
    gate.check_prices(PriceBatch(f"/data/prices/bad-{tag}.csv", failing.table))
    gate.check_prices(PriceBatch(f"/data/prices/good-{tag}.csv", failing.table.slice(0, 1)))

    page = gate.offline_index.read_text(encoding="utf-8").replace("<wbr>", "")  # line-break chances only
    bad, good = _row_of(page, f"bad-{tag}"), _row_of(page, f"good-{tag}")
    assert "FAILED" in bad and "high &gt;= open" in bad and "expect_column_pair_values_a_to_be_greater_than_b" in bad
    assert "1 row" in bad and "high &gt;= close" not in bad
    assert "passed" in good and "FAILED" not in good
    assert page.index(f"good-{tag}") < page.index(f"bad-{tag}")  # newest first
    suite = _row_of(page, 'href="uncommitted/data_docs/local_site/expectations/alphaloom_prices.html"')
    assert f'<td class="num">{len(price_checks(1))}</td>' in suite

    links = re.findall(r'(?:href|src)="([^"]*)"', page)
    assert len(links) >= 4 and not [link for link in links if "://" in link or link.startswith("//")]
    assert "<script" not in page and "<link" not in page and "@import" not in page
    for link in links:
        assert (gate.offline_index.parent / unquote(link)).is_file(), link
    bad_page = re.search(r'href="([^"]*)"', bad)
    assert bad_page and f"bad-{tag}" in (gate.offline_index.parent / unquote(bad_page.group(1))).read_text()


def test_offline_page_escapes_what_it_shows_and_names_unreadable_results(tmp_path: Path) -> None:
    hostile = "<script>alert(1)</script>"
    page = render_offline_index(
        [
            ValidationEntry(
                suite=hostile,
                run_name=f'x" onmouseover="{hostile}',
                run_time=None,
                success=False,
                failed=(FailedExpectation(type=hostile, label=hostile, unexpected_count=3),),
                page='a"b.html',
            )
        ],
        [SuiteEntry(hostile, 1)],
        total_results=5,
        gx_index=None,
        generated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert "<script" not in page and 'x" onmouseover' not in page and 'href="a&quot;b.html"' in page
    assert (
        page.replace("<wbr>", "").count("&lt;script&gt;alert(1)&lt;/script&gt;") == 5
        and "4 older results are not listed" in page
    )

    broken = tmp_path / "gx" / "uncommitted" / "validations" / "s" / "run" / "20260101T000000.000000Z" / "b.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json")
    written = write_offline_index(tmp_path / "gx").read_text()
    assert "unreadable" in _row_of(written, "s/run/20260101T000000.000000Z/b.json")
    assert "2026-01-01 00:00:00" in written and "GX has not built its Data Docs yet" in written
