"""The social post value type (``raw.social_posts``), shared by the social source and the social analyst. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from alphaloom.domain import require_utc


@dataclass(frozen=True, slots=True)
class SocialPost:
    """A community post as first seen (``first_seen_at``: the fetch time, or published + latency when assumed).
    ``author_created_at`` is set only when the feed says when the author's account was created; ``text_hash`` keys the
    repeated-text filter. ``symbols``: the symbols the post is known for (for a read: the one asked)."""

    id: str
    url: str | None
    author: str | None
    author_created_at: datetime | None
    title: str
    body: str
    text_hash: str
    published_at: datetime
    first_seen_at: datetime
    first_seen_assumed: bool
    symbols: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "published_at", require_utc(self.published_at, "SocialPost.published_at"))
        object.__setattr__(self, "first_seen_at", require_utc(self.first_seen_at, "SocialPost.first_seen_at"))

    @property
    def text(self) -> str:
        """What is scored for sentiment: title and body."""
        return f"{self.title}\n{self.body}".strip()
