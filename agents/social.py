"""The social analyst: what community posts said about a symbol at ``as_of``, after the bot and spam filters.

``recent_social_by_symbol`` is the point-in-time read (ARCHITECTURE §4), the news agent's rule (``agents.feed_window``):
a post is known for a symbol from ``greatest(first_seen_at, first_known_at)`` and read when that time is in
``(as_of - window, as_of]``. ``posts_known`` is the same rule on posts already loaded (the replay cursor's window).

``filter_spam`` (pure) drops, among the posts known at ``as_of``:

- **repeated text**: a text (``text_hash``: normalised title and body) posted ``max_copies`` times or more in the
  window, every copy (a bot campaign), and further posts of the same text by the same author (only the first counts);
- **new accounts**: an author whose account, where the feed says so (``author_created_at``), was younger than
  ``min_account_age_days`` when the post was first seen.

``social_opinion`` (pure): the mean sentiment of the posts kept, BUY/SELL past ``action_threshold``; its confidence is
|mean| scaled by the mention rate (posts kept per hour in the window) against ``full_rate_per_hour``. No post known:
a skipped opinion (it does not count in the vote). Its details record the rate, the spam dropped by reason and every
post id read (the lineage rows name them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row

from agents.feed_window import KnownFeed, known_in_window, read_known_by_symbol
from agents.sentiment import SentimentScore, SentimentScorer
from alphaloom.domain import Action, AgentOpinion
from alphaloom.ingest.social_post import SocialPost

AGENT = "social"


@dataclass(frozen=True, slots=True)
class SocialParams:
    """Parameters of the social analyst; part of the decision's config version."""

    window_hours: float = 24.0
    action_threshold: float = 0.2
    full_rate_per_hour: float = 0.5  # mentions per hour at which the rate no longer scales the confidence down
    max_copies: int = 3  # this many posts of one text in the window: all of them are spam
    min_account_age_days: float = 7.0

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.window_hours)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


# The point-in-time window (``agents.feed_window``) over the posts and their symbol links.
SOCIAL = KnownFeed(
    items="raw.social_posts", links="raw.social_symbols", key="post_id",
    columns=("id", "url", "author", "author_created_at", "title", "body", "text_hash", "published_at",
             "first_seen_assumed"),
)  # fmt: skip


def recent_social_by_symbol(
    conn: Connection, symbols: Sequence[str], as_of: datetime, window: timedelta
) -> dict[str, list[SocialPost]]:
    """Posts known for each of ``symbols`` in ``(as_of - window, as_of]``, oldest first, in one query; each post's
    ``first_seen_at`` is its time for that symbol."""
    return read_known_by_symbol(conn, SOCIAL, symbols, as_of, window, _post)


def _post(r: Row[Any]) -> SocialPost:
    return SocialPost(
        id=r.id, url=r.url, author=r.author, author_created_at=r.author_created_at, title=r.title, body=r.body,
        text_hash=r.text_hash, published_at=r.published_at, first_seen_at=r.known_at,
        first_seen_assumed=r.first_seen_assumed, symbols=(r.symbol,),
    )  # fmt: skip


def posts_known(posts: Sequence[SocialPost], as_of: datetime, window: timedelta) -> list[SocialPost]:
    """The posts (each dated by its time for the symbol) known in ``(as_of - window, as_of]``, oldest first."""
    return known_in_window(posts, as_of, window)


@dataclass(frozen=True, slots=True)
class SpamVerdict:
    """The posts kept and, for each one dropped, why."""

    kept: tuple[SocialPost, ...]
    dropped: Mapping[str, str]

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.dropped.values()).items()))


def filter_spam(posts: Sequence[SocialPost], params: SocialParams = SocialParams()) -> SpamVerdict:
    """Drop repeated text and new accounts among ``posts`` (see the module docstring); order kept."""
    copies = Counter(p.text_hash for p in posts)
    seen_by_author: set[tuple[str | None, str]] = set()
    min_age = timedelta(days=params.min_account_age_days)
    kept: list[SocialPost] = []
    dropped: dict[str, str] = {}
    for post in sorted(posts, key=lambda p: (p.first_seen_at, p.id)):
        if copies[post.text_hash] >= params.max_copies:
            dropped[post.id] = "repeated_text"
        elif post.author is not None and (post.author, post.text_hash) in seen_by_author:
            dropped[post.id] = "repeated_by_author"
        elif post.author_created_at is not None and post.first_seen_at - post.author_created_at < min_age:
            dropped[post.id] = "new_account"
        else:
            kept.append(post)
        seen_by_author.add((post.author, post.text_hash))
    return SpamVerdict(tuple(kept), dropped)


def social_opinion(
    symbol: str,
    as_of: datetime,
    posts: Sequence[SocialPost],
    scores: Mapping[str, SentimentScore],
    params: SocialParams = SocialParams(),
) -> AgentOpinion:
    """The social view of ``posts`` known at ``as_of`` (``scores``: post id -> sentiment); see the module docstring."""
    if not posts:
        return AgentOpinion(AGENT, symbol, as_of, Action.HOLD, 0.0, "no social posts in the window", skipped=True,
                            details={"mentions": 0})  # fmt: skip
    verdict = filter_spam(posts, params)
    kept = verdict.kept
    rate = len(kept) / params.window_hours
    details = {"mentions": len(kept), "rate_per_hour": round(rate, 6), "spam": verdict.counts(),
               "post_ids": [p.id for p in posts], "kept_ids": [p.id for p in kept]}  # fmt: skip
    if not kept:
        return AgentOpinion(AGENT, symbol, as_of, Action.HOLD, 0.0,
                            f"{len(posts)} posts, all dropped as spam {verdict.counts()}", skipped=True,
                            details={**details, "mean": None})  # fmt: skip
    mean = sum(scores[p.id].score for p in kept) / len(kept)
    action = (
        Action.BUY
        if mean >= params.action_threshold
        else Action.SELL
        if mean <= -params.action_threshold
        else Action.HOLD
    )
    attention = min(1.0, rate / params.full_rate_per_hour)
    confidence = min(1.0, abs(mean)) * attention if action is not Action.HOLD else 1.0 - min(1.0, abs(mean))
    return AgentOpinion(
        agent=AGENT,
        symbol=symbol,
        as_of=as_of,
        action=action,
        confidence=round(confidence, 6),
        rationale=(
            f"{len(kept)} posts kept of {len(posts)} ({verdict.counts() or 'no spam'}), {rate:.2f} mentions/hour, "
            f"mean sentiment {mean:+.2f} (threshold ±{params.action_threshold:g}) -> {action.value}"
        ),
        details={**details, "mean": mean},
    )


def score_posts(scorer: SentimentScorer, posts: Sequence[SocialPost]) -> dict[str, SentimentScore]:
    """A sentiment score per post by the decision's scorer (the news agent's), each distinct text scored once."""
    texts = sorted({p.text for p in posts})
    if not texts:
        return {}
    scored = dict(zip(texts, scorer.score(texts), strict=True))
    return {p.id: scored[p.text] for p in posts}
