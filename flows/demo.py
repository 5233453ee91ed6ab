"""The embedded-default pipeline end to end: data, the four flows in order, on the paper account."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alphaloom.ingest.sampledata import SampleData, generate
from alphaloom.settings import get_settings
from flows.build_features import build_features
from flows.decide import decide_flow
from flows.ingest_news import ingest_news
from flows.ingest_prices import ingest_prices


@dataclass(frozen=True)
class DemoResult:
    data: SampleData
    as_of: datetime
    prices: list[dict[str, Any]]
    news: dict[str, object]
    features: dict[str, Any]
    decisions: dict[str, int]


def run_demo(
    steps: int,
    progress: Callable[[str], None] = lambda _: None,
    done: Callable[[str, dict[str, Any]], None] = lambda *_: None,
) -> DemoResult:
    """Generate (or reuse) the offline data, ingest it, build features, decide over the last ``steps`` bars.
    ``progress`` is told when a stage starts, ``done`` when it ended, with its result."""
    settings = get_settings()
    progress(f"data: generating offline data in {settings.offline_data_dir}")
    data = generate(
        settings.offline_data_dir, seed=settings.data_seed, days=settings.data_days, exchange=settings.exchange
    )
    done("data", {"price_files": len(data.price_files), "news_files": len(data.news_files), "dir": data.out_dir})
    progress("ingest_prices: price files -> raw.ohlcv")
    prices = ingest_prices([str(p) for p in data.price_files])
    done("ingest_prices", {"files": prices})
    progress("ingest_news: feeds -> raw.news")
    news = ingest_news([str(p) for p in data.news_files])
    done("ingest_news", news)
    progress("build_features: dbt build -> marts.features")
    features = build_features()
    done("build_features", features)
    progress(f"decide: {steps} hourly steps up to {data.end.isoformat()}")
    decisions = decide_flow(symbols=list(data.symbols), as_of=data.end, steps=steps)
    done("decide", decisions)
    return DemoResult(data, data.end, prices, news, features, decisions)
