"""Benchmark: sentiment scoring of N headlines, batched vs one-by-one, through the same ``FinBertScorer`` code path.

FinBERT's weights cannot be downloaded here, so the benchmark builds a tiny BERT classifier (labels positive/negative/
neutral) in a temporary folder, exactly as the tests do, and loads it through ``FinBertScorer``; pass ``--model`` to
time a real FinBERT folder instead. The finance lexicon is timed on the same headlines for reference. Prints texts/s
for each and the ratio of their rates. One-by-one costs a full pipeline call per text (tens of ms on 2 loaded CPU cores), so
by default it is timed on the first ``--one-by-one`` texts (2,000) and compared by rate; pass ``--one-by-one 0`` to
time all of them. Usage: python bench/sentiment.py [--texts 10000] [--batch-size 64] [--one-by-one 2000]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = [
    "profit",
    "loss",
    "growth",
    "decline",
    "beats",
    "misses",
    "record",
    "weak",
    "strong",
    "lawsuit",
    "upgrade",
    "downgrade",
    "shares",
    "stock",
    "revenue",
    "guidance",
    "outlook",
    "merger",
    "deal",
    "rally",
    "plunge",
    "surge",
    "investors",
    "quarter",
    "earnings",
    "bank",
    "rates",
    "inflation",
    "crypto",
    "token",
    "exchange",
    "hack",
    "approval",
    "fund",
    "market",
]


def build_tiny_classifier(folder: Path, seed: int = 0) -> Path:
    """Save a tiny BERT sequence classifier and its tokenizer (labels positive/negative/neutral) into ``folder``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    torch.manual_seed(seed)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {token: i for i, token in enumerate(specials + sorted(set(WORDS)))}
    tokenizer = BertTokenizer(vocab=vocab, model_max_length=64)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, num_labels=3,
        id2label={0: "positive", 1: "negative", 2: "neutral"}, label2id={"positive": 0, "negative": 1, "neutral": 2},
    )  # fmt: skip
    model = BertForSequenceClassification(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def headlines(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))) for _ in range(count)]


def main(argv: list[str] | None = None) -> None:
    from agents.sentiment import FinBertScorer, LexiconScorer

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--one-by-one", type=int, default=2000, help="texts timed one by one (0: all)")
    parser.add_argument("--model", type=Path, default=None, help="a local FinBERT folder (default: a tiny BERT)")
    args = parser.parse_args(argv)

    texts = headlines(args.texts)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model or build_tiny_classifier(Path(tmp) / "tiny-bert")
        batched = FinBertScorer(folder, name=str(folder), batch_size=args.batch_size)
        single = FinBertScorer(folder, name=str(folder), batch_size=1)
        batched.score(texts[:8])  # warm up both paths before timing
        single.score(texts[:1])

        start = time.perf_counter()
        batched_scores = batched.score(texts)
        batched_s = time.perf_counter() - start
        start = time.perf_counter()
        sample = texts[: args.one_by_one] if args.one_by_one > 0 else texts
        single_scores = [single.score([t])[0] for t in sample]
        single_s = time.perf_counter() - start

    lexicon = LexiconScorer()
    start = time.perf_counter()
    lexicon.score(texts)
    lexicon_s = time.perf_counter() - start

    disagree = sum(a.label != b.label for a, b in zip(batched_scores, single_scores, strict=False))
    print(f"texts: {len(texts)}  model: {'tiny BERT' if args.model is None else args.model}  device: "
          f"{'cuda' if batched.pipeline.device.type == 'cuda' else 'cpu'}")  # fmt: skip
    print(f"batched (batch size {args.batch_size}): {batched_s:.2f} s  {len(texts) / batched_s:,.0f} texts/s")
    print(f"one-by-one ({len(sample)} texts):  {single_s:.2f} s  {len(sample) / single_s:,.0f} texts/s")
    print(f"lexicon ({lexicon.name}):     {lexicon_s:.2f} s  {len(texts) / lexicon_s:,.0f} texts/s")
    print(f"labels differing batched vs one-by-one on the {len(sample)} texts scored both ways: {disagree}")
    ratio = (len(texts) / batched_s) / (len(sample) / single_s)
    print(f"ratio batched/one-by-one (texts/s): {ratio:.2f}")


if __name__ == "__main__":
    main()
