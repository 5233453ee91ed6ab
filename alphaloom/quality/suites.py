"""Expectation suites for price, news and social batches. Pure: builds GX expectation objects, touches no context or data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PRICES_SUITE = "alphaloom_prices"
NEWS_SUITE = "alphaloom_news"
SOCIAL_SUITE = "alphaloom_social"
# Clock skew allowed between a post's first-seen time and the check (a fetched post is first seen at the fetch time).
SOCIAL_MAX_AHEAD_SECONDS = 60
# How many hours a story may be dated after we first saw it before the date is taken as wrong (clock skew, time zones).
NEWS_MAX_LEAD_HOURS = 24


@dataclass(frozen=True, slots=True)
class Check:
    """One expectation: GX ``type`` and keyword arguments, a human ``label``, and whether it judges single rows."""

    type: str
    kwargs: dict[str, Any]
    label: str
    row_level: bool


def price_checks(gap_tolerance_bars: int) -> list[Check]:
    """Bars: high >= max(open, close), low <= min(open, close), volume >= 0, unique keys, no gap within the session
    calendar beyond ``gap_tolerance_bars`` (batch-level: reported, nothing quarantined)."""
    pair = "expect_column_pair_values_a_to_be_greater_than_b"
    return [
        Check(pair, {"column_A": "high", "column_B": "open", "or_equal": True}, "high >= open", True),
        Check(pair, {"column_A": "high", "column_B": "close", "or_equal": True}, "high >= close", True),
        Check(pair, {"column_A": "open", "column_B": "low", "or_equal": True}, "low <= open", True),
        Check(pair, {"column_A": "close", "column_B": "low", "or_equal": True}, "low <= close", True),
        Check("expect_column_values_to_be_between", {"column": "volume", "min_value": 0}, "volume >= 0", True),
        Check(
            "expect_compound_columns_to_be_unique",
            {"column_list": ["exchange", "symbol", "timeframe", "ts"]},
            "unique (exchange, symbol, timeframe, ts)",
            True,
        ),
        Check(
            "expect_column_values_to_be_between",
            {"column": "gap_bars", "min_value": 0, "max_value": gap_tolerance_bars},
            f"no gap over {gap_tolerance_bars} bars within the session calendar",
            False,
        ),
    ]


def news_checks() -> list[Check]:
    """Stories: a title, an http(s) URL when there is one, a date not far after first sight; (id, source) unique is
    reported only (a feed listing one story twice is merged as one, not an error)."""
    return [
        Check("expect_column_values_to_not_be_null", {"column": "title"}, "title present", True),
        Check(
            "expect_column_value_lengths_to_be_between", {"column": "title", "min_value": 1}, "title not empty", True
        ),
        Check("expect_column_values_to_match_regex", {"column": "url", "regex": r"^https?://"}, "url is http(s)", True),
        Check(
            "expect_column_values_to_be_between",
            {"column": "lead_hours", "max_value": NEWS_MAX_LEAD_HOURS},
            f"published at most {NEWS_MAX_LEAD_HOURS} h after first seen",
            True,
        ),
        Check("expect_compound_columns_to_be_unique", {"column_list": ["id", "source"]}, "unique (id, source)", False),
    ]


def social_checks() -> list[Check]:
    """Posts: non-empty text (title and body), first seen no later than the check (``ahead_seconds``, within
    ``SOCIAL_MAX_AHEAD_SECONDS`` of clock skew), tagged only with known symbols (``unknown_symbols`` = 0), an http(s)
    URL when there is one; (id, source) unique is reported only, as for news."""
    return [
        Check("expect_column_values_to_not_be_null", {"column": "text"}, "text present", True),
        Check("expect_column_value_lengths_to_be_between", {"column": "text", "min_value": 1}, "text not empty", True),
        Check(
            "expect_column_values_to_be_between",
            {"column": "ahead_seconds", "max_value": SOCIAL_MAX_AHEAD_SECONDS},
            "first seen not in the future",
            True,
        ),
        Check(
            "expect_column_values_to_be_between",
            {"column": "unknown_symbols", "min_value": 0, "max_value": 0},
            "tagged with known symbols only",
            True,
        ),
        Check("expect_column_values_to_match_regex", {"column": "url", "regex": r"^https?://"}, "url is http(s)", True),
        Check("expect_compound_columns_to_be_unique", {"column_list": ["id", "source"]}, "unique (id, source)", False),
    ]
