"""The news agent: which stories were known about a symbol at ``as_of``, and what their sentiment says.

``recent_news`` is the point-in-time read (ARCHITECTURE §4, ``agents.feed_window``): only stories known for the symbol
in ``(as_of - window, as_of]``, where a story is known for a symbol from ``greatest(first_seen_at, first_known_at)``:
its first sighting, or the later sighting that first linked it to the symbol (``raw.news_symbols.first_known_at``), so
a tag added by a later sighting never reaches a replay before that sighting. The items' ``first_seen_at`` is that
per-symbol time.
``news_opinion`` is pure: mean sentiment of the scored stories; HOLD with confidence 0 when there are none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row

from agents.feed_window import KnownFeed, read_known_by_symbol
from agents.sentiment import SentimentScore
from alphaloom.domain import Action, AgentOpinion, NewsId, NewsItem, Signal

AGENT = "news"


@dataclass(frozen=True, slots=True)
class NewsParams:
    """Strategy parameters; part of the decision's config version."""

    window_hours: float = 24.0
    action_threshold: float = 0.2
    full_confidence_count: int = 3
    # How much a detected sentiment shock (agents.strategies.event_driven) adds to the mean sentiment.
    event_weight: float = 0.5

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.window_hours)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def recent_news(conn: Connection, symbol: str, as_of: datetime, window: timedelta) -> list[NewsItem]:
    """Stories known for ``symbol`` in ``(as_of - window, as_of]``, oldest first."""
    return recent_news_by_symbol(conn, [symbol], as_of, window)[symbol]


# The point-in-time window (``agents.feed_window``) over the stories and their symbol links.
NEWS = KnownFeed(
    items="raw.news", links="raw.news_symbols", key="news_id",
    columns=("id", "url", "title", "summary", "published_at", "first_seen_assumed", "published_unknown"),
)  # fmt: skip


def recent_news_by_symbol(
    conn: Connection, symbols: Sequence[str], as_of: datetime, window: timedelta
) -> dict[str, list[NewsItem]]:
    """``recent_news`` for each of ``symbols``, in one query."""
    return read_known_by_symbol(conn, NEWS, symbols, as_of, window, _story)


def _story(r: Row[Any]) -> NewsItem:
    """A story as known for one symbol: first seen at its time for that symbol."""
    return NewsItem(
        id=NewsId(r.id), url=r.url, title=r.title, summary=r.summary, published_at=r.published_at,
        first_seen_at=r.known_at, first_seen_assumed=r.first_seen_assumed, symbols=(r.symbol,),
        published_unknown=r.published_unknown,
    )  # fmt: skip


def news_opinion(
    symbol: str,
    as_of: datetime,
    scores: Mapping[NewsId, SentimentScore],
    params: NewsParams = NewsParams(),
    event: Signal | None = None,
) -> AgentOpinion:
    """BUY when the mean score >= threshold, SELL when <= -threshold; confidence = |mean| scaled down while fewer
    than ``full_confidence_count`` stories back it. A detected ``event`` (a sentiment shock) moves the mean by
    ``event_weight * event.strength`` before the thresholds apply."""
    count = len(scores)
    if count == 0:
        return AgentOpinion(
            agent=AGENT,
            symbol=symbol,
            as_of=as_of,
            action=Action.HOLD,
            confidence=0.0,
            rationale="no news in the window",
            details={"count": 0, "mean": None},
        )
    sentiment_mean = sum(s.score for s in scores.values()) / count
    event_strength = event.strength if event is not None else 0.0
    mean = max(-1.0, min(1.0, sentiment_mean + params.event_weight * event_strength))
    action = (
        Action.BUY
        if mean >= params.action_threshold
        else Action.SELL
        if mean <= -params.action_threshold
        else Action.HOLD
    )
    breadth = min(1.0, count / params.full_confidence_count)
    confidence = min(1.0, abs(mean)) * breadth if action is not Action.HOLD else 1.0 - min(1.0, abs(mean))
    labels = {label: sum(s.label == label for s in scores.values()) for label in ("positive", "negative", "neutral")}
    return AgentOpinion(
        agent=AGENT,
        symbol=symbol,
        as_of=as_of,
        action=action,
        confidence=round(confidence, 6),
        rationale=(
            f"{count} stories, mean sentiment {sentiment_mean:+.2f} ({labels['positive']} positive, "
            f"{labels['negative']} negative, {labels['neutral']} neutral)"
            + (f"; event: {event.reason}" if event is not None and event.strength != 0 else "")
            + f"; score {mean:+.2f} (threshold ±{params.action_threshold:g}) -> {action.value}"
        ),
        details={"count": count, "mean": sentiment_mean, "score": mean, "event": event_strength, "labels": labels},
    )
