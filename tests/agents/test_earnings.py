"""Earnings extraction from hand-written press releases and an EDGAR-style 8-K Atom feed, and the earnings opinion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from agents.earnings import earnings_opinion, earnings_signal, extract_earnings, report_score
from alphaloom.domain import Action, NewsId, NewsItem
from alphaloom.ingest.news_source import parse_feed

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
T0 = datetime(2026, 11, 2, 21, 0, tzinfo=UTC)

BEAT_RAISE = (
    "Acme Robotics Reports Record Third Quarter 2026 Results, Raises Full-Year Guidance",
    "SAN JOSE, Calif. -- Acme Robotics today reported third quarter revenue of $2.45 billion, up 18% year over year, "
    "ahead of the consensus estimate of $2.31 billion. GAAP diluted earnings per share were $0.87, compared with "
    "analysts' expectations of $0.75. The company raises its full-year 2026 revenue outlook to $9.6 billion.",
)
MISS_CUT = (
    "Globex Q2 results miss estimates; company cuts fiscal 2027 forecast",
    "Globex posted a loss of $(0.12) per share versus a consensus of $0.04. Net sales were $640 million, below "
    "estimates of $700 million. Management lowered its fiscal 2027 guidance.",
)
IN_LINE_REAFFIRM = (
    "Initech announces fourth quarter results",
    "Adjusted EPS of $1.01 vs. the FactSet estimate of $1.01. Revenue totaled $310.4 million. Initech reaffirms its "
    "2027 outlook.",
)
WORDS_ONLY = ("Hooli earnings beat analysts' expectations on cloud strength", "")
NOT_EARNINGS = ("Acme Robotics names new chief operating officer", "The appointment is effective December 1.")


def test_a_beat_with_raised_guidance_is_extracted_with_its_surprises() -> None:
    report = extract_earnings(*BEAT_RAISE)
    assert report is not None
    assert report.revenue is not None and report.eps is not None
    assert report.revenue.actual == Decimal("2450000000.00") and report.revenue.estimate == Decimal("2310000000.00")
    assert report.revenue.outcome == "beat"
    assert report.revenue.surprise_pct == pytest.approx((2.45 - 2.31) / 2.31 * 100)
    assert (report.eps.actual, report.eps.estimate, report.eps.outcome) == (Decimal("0.87"), Decimal("0.75"), "beat")
    assert report.eps.surprise_pct == pytest.approx(16.0)
    assert report.guidance == "raised"


def test_a_miss_with_a_loss_and_lowered_guidance() -> None:
    report = extract_earnings(*MISS_CUT)
    assert report is not None and report.eps is not None and report.revenue is not None
    assert (report.eps.actual, report.eps.estimate, report.eps.outcome) == (Decimal("-0.12"), Decimal("0.04"), "miss")
    assert report.eps.surprise_pct == pytest.approx(-400.0)
    assert report.revenue.actual == Decimal(640_000_000) and report.revenue.estimate == Decimal(700_000_000)
    assert report.revenue.outcome == "miss" and report.guidance == "lowered"
    # eps -400% caps at -1 (weight 0.4), revenue -8.57% of the 10% scale (0.3), guidance lowered -1 (0.3)
    assert report_score(report) == pytest.approx(-(0.4 + 0.3 * (60 / 700 * 100) / 10 + 0.3))


def test_in_line_figures_and_reaffirmed_guidance_state_no_surprise() -> None:
    report = extract_earnings(*IN_LINE_REAFFIRM)
    assert report is not None and report.eps is not None and report.revenue is not None
    assert report.eps.outcome == "in_line" and report.eps.surprise_pct == 0.0
    # revenue given without an estimate: a figure, no outcome
    assert report.revenue.actual == Decimal("310400000.0") and report.revenue.estimate is None
    assert report.revenue.outcome is None
    assert report.guidance == "maintained"
    assert report_score(report) == 0.0


def test_beat_stated_in_words_only_and_a_story_that_is_not_about_earnings() -> None:
    words = extract_earnings(*WORDS_ONLY)
    assert words is not None and words.outcome_words == "beat" and words.eps is None and words.revenue is None
    assert report_score(words) == pytest.approx(0.5)
    assert extract_earnings(*NOT_EARNINGS) is None


def _item(story_id: str, title: str, summary: str, seen: datetime) -> NewsItem:
    return NewsItem(NewsId(story_id), None, title, summary, seen, seen, False, ("ACME/USD",))


def test_the_opinion_follows_the_newest_report_known_and_skips_without_one() -> None:
    old = _item("a", *MISS_CUT, seen=T0 - timedelta(hours=5))
    new = _item("b", *BEAT_RAISE, seen=T0 - timedelta(hours=1))
    chatter = _item("c", *NOT_EARNINGS, seen=T0)
    opinion = earnings_opinion("ACME/USD", T0, [old, new, chatter])
    assert opinion.action is Action.BUY and not opinion.skipped
    assert opinion.details["news_id"] == "b" and opinion.details["guidance"] == "raised"
    # point in time: before the beat was first seen, only the miss is known
    assert earnings_opinion("ACME/USD", T0, [old]).action is Action.SELL
    skipped = earnings_opinion("ACME/USD", T0, [chatter])
    assert skipped.skipped and skipped.action is Action.HOLD and skipped.confidence == 0.0
    signal = earnings_signal("ACME/USD", [old, new])
    assert signal is not None and signal.name == "earnings_surprise" and signal.strength > 0.5


def test_an_edgar_8k_atom_feed_yields_item_2_02_reports() -> None:
    feed = parse_feed(FEEDS / "edgar_8k.atom", fetched_at=T0, assumed_latency=timedelta(0),
                      aliases={"ACME": "ACME/USD", "GLOBEX": "GLOBEX/USD", "INITECH": "INIT/USD"})  # fmt: skip
    assert not feed.rejected and len(feed.items) == 3
    by_symbol = {item.symbols[0]: item for item in feed.items}
    acme = extract_earnings(by_symbol["ACME/USD"].title, by_symbol["ACME/USD"].summary)
    assert acme is not None and acme.eps is not None and acme.revenue is not None
    assert (acme.eps.actual, acme.eps.estimate, acme.eps.outcome) == (Decimal("1.42"), Decimal("1.30"), "beat")
    assert acme.revenue.estimate == Decimal("11800000000.00") and acme.guidance == "raised"
    globex = extract_earnings(by_symbol["GLOBEX/USD"].title, by_symbol["GLOBEX/USD"].summary)
    assert globex is not None and globex.eps is not None and globex.eps.outcome == "miss"
    assert globex.revenue is not None and globex.revenue.outcome == "miss" and globex.guidance == "lowered"
    # an 8-K about a director leaving is not an earnings report
    assert extract_earnings(by_symbol["INIT/USD"].title, by_symbol["INIT/USD"].summary) is None
    assert earnings_opinion("GLOBEX/USD", T0, [by_symbol["GLOBEX/USD"]]).action is Action.SELL
