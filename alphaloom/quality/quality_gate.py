"""``QualityGate``: Great Expectations checkpoints run on in-flight batches before they are merged into ``raw``.

``check_prices(batch)`` / ``check_news(feeds)`` / ``check_social(feeds, known_symbols=...)`` validate, then return the clean part and ``Rejected`` rows naming the
expectation each row failed (for ``raw.quarantine``), plus a ``QualityReport``. Nothing else is dropped: rows failing
only batch-level expectations stay in. GX keeps every checkpoint result in its validation store under ``<home>/gx``
and the Data Docs site there is rebuilt after each run, with our offline entry page ``<home>/gx/index.html``.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection, text

from alphaloom.ingest.calendars import calendar_class_of, calendar_for
from alphaloom.ingest.news_source import ParsedFeed
from alphaloom.ingest.prices import COLUMNS, PRICE_COLUMNS, PriceBatch
from alphaloom.ingest.quarantine import Rejected
from alphaloom.ingest.social_source import ParsedSocialFeed
from alphaloom.markets import UNCLASSIFIED, MarketSpec
from alphaloom.quality.offline_docs import OFFLINE_INDEX, write_offline_index
from alphaloom.quality.suites import (
    NEWS_SUITE,
    PRICES_SUITE,
    SOCIAL_SUITE,
    Check,
    news_checks,
    price_checks,
    social_checks,
)

_SOURCE = "alphaloom_inflight"
_LOCK = threading.Lock()
# One GX context per home per process, and one checkpoint per (home, suite, settings): a second context on the same
# folder would rebuild the data source and suites under the first one's checkpoints.
_CONTEXTS: dict[Path, Any] = {}
_CHECKPOINTS: dict[
    tuple[Path, str, int, bool], Any
] = {}  # a GX context is not thread-safe; batches are validated one at a time


@dataclass(frozen=True)
class QualityReport:
    """One checkpoint run: ``evaluated`` rows, ``unexpected`` rows failing a row-level expectation, and per failed
    expectation ``{"expectation", "label", "row_level", "unexpected_count"}`` in ``failed``."""

    suite: str
    batch: str
    success: bool
    evaluated: int
    unexpected: int
    failed: list[dict[str, Any]] = field(default_factory=list)
    data_docs_path: str | None = None


class QualityGate:
    """Validates batches in a GX file context rooted at ``home`` (the context lives in ``home/gx``)."""

    def __init__(self, home: Path, *, gap_tolerance_bars: int = 3, build_docs: bool = True) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        self.home = Path(home)
        self.gap_tolerance_bars = gap_tolerance_bars
        self.build_docs = build_docs
        self._context: Any = None

    @property
    def docs_index(self) -> Path:
        """GX's own Data Docs index (its list of results needs bootstrap-table etc. from public CDNs)."""
        return self.home / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"

    @property
    def offline_index(self) -> Path:
        """AlphaLoom's self-contained entry page to the same results; works without internet."""
        return self.home / "gx" / OFFLINE_INDEX

    def write_offline_index(self) -> Path:
        """Rewrite the offline entry page from GX's store (also done after each checkpoint when docs are built)."""
        return write_offline_index(self.home / "gx")

    def _checkpoint(self, suite_name: str, checks: list[Check]) -> Any:
        key = (self.home.resolve(), suite_name, self.gap_tolerance_bars, self.build_docs)
        self._context = self._context or _CONTEXTS.get(self.home.resolve())
        if key in _CHECKPOINTS:
            return _CHECKPOINTS[key]
        import great_expectations as gx
        import great_expectations.expectations as gxe
        from great_expectations.checkpoint.actions import UpdateDataDocsAction, ValidationAction
        from great_expectations.data_context.types.base import ProgressBarsConfig

        if self._context is None:
            self.home.mkdir(parents=True, exist_ok=True)
            context = gx.get_context(mode="file", project_root_dir=str(self.home))
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            context.variables.save()
            # The in-flight data source is rebuilt by each process with every asset at once: a pandas data source
            # read back from the file config (or replaced later) leaves checkpoints without a context to run in.
            if _SOURCE in context.data_sources.all():
                context.data_sources.delete(_SOURCE)
            source = context.data_sources.add_pandas(_SOURCE)
            for name in (PRICES_SUITE, NEWS_SUITE, SOCIAL_SUITE):
                source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("batch")
            self._context = _CONTEXTS[self.home.resolve()] = context
        context = self._context
        definition = context.data_sources.get(_SOURCE).get_asset(suite_name).get_batch_definition("batch")
        suite = gx.ExpectationSuite(name=suite_name)
        for check in checks:
            cls = getattr(gxe, "".join(part.capitalize() for part in check.type.split("_")))
            suite.add_expectation(cls(**check.kwargs, meta={"label": check.label, "row_level": check.row_level}))
        suite = context.suites.add_or_update(suite)
        validation = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=suite_name, data=definition, suite=suite)
        )
        actions: list[ValidationAction] = [UpdateDataDocsAction(name="data_docs")] if self.build_docs else []
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=suite_name,
                validation_definitions=[validation],
                actions=actions,
                result_format={"result_format": "COMPLETE"},
            )
        )
        _CHECKPOINTS[key] = checkpoint
        return checkpoint

    def run(
        self, suite_name: str, checks: list[Check], frame: pd.DataFrame, batch: str
    ) -> tuple[QualityReport, dict[int, str]]:
        """Validate ``frame`` (a fresh RangeIndex); returns the report and row position -> failed expectation labels."""
        frame = frame.reset_index(drop=True)
        with _LOCK:
            checkpoint = self._checkpoint(suite_name, checks)
            # GX resolves batches through one process-wide "current project"; another gate (another home) may have
            # replaced it since, so point it back at ours for this run.
            from great_expectations.data_context.data_context.context_factory import project_manager

            project_manager.set_project(self._context)
            from great_expectations.core.run_identifier import RunIdentifier

            # The run name shows in Data Docs, so a result page says which batch it judged.
            result = checkpoint.run(
                batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=_run_name(batch))
            )
            if self.build_docs:
                self.write_offline_index()
        (validation,) = result.run_results.values()
        bad: dict[int, list[str]] = {}
        failed = []
        for outcome in validation.results:
            if outcome.success:
                continue
            meta = outcome.expectation_config.meta or {}
            rows = outcome.result.get("unexpected_index_list") or []
            failed.append({
                "expectation": outcome.expectation_config.type, "label": meta.get("label"),
                "row_level": bool(meta.get("row_level")), "unexpected_count": outcome.result.get("unexpected_count"),
            })  # fmt: skip
            if meta.get("row_level"):
                for row in rows:
                    index = row if isinstance(row, int | np.integer) else row.get("index")
                    bad.setdefault(int(index), []).append(f"{outcome.expectation_config.type} ({meta.get('label')})")
        report = QualityReport(
            suite=suite_name, batch=batch, success=bool(validation.success), evaluated=len(frame),
            unexpected=len(bad), failed=failed,
            data_docs_path=str(self.docs_index) if self.build_docs and self.docs_index.exists() else None,
        )  # fmt: skip
        return report, {row: "; ".join(labels) for row, labels in bad.items()}

    def check_prices(
        self, batch: PriceBatch, markets: Mapping[tuple[str, str], MarketSpec] | None = None
    ) -> tuple[PriceBatch, QualityReport]:
        """The batch without rows failing a row-level expectation (those are added to its ``rejected``); ``markets``
        (by exchange and symbol) say which session calendar judges gaps (``price_frame``)."""
        frame = price_frame(batch.table, markets)
        report, bad = self.run(PRICES_SUITE, price_checks(self.gap_tolerance_bars), frame, batch.source)
        if not bad:
            return batch, report
        keep = np.ones(batch.table.num_rows, dtype=bool)
        keep[list(bad)] = False
        rows = batch.table.take(pa.array(sorted(bad))).to_pylist()
        rejected = [
            Rejected(
                batch.source,
                f"{r['exchange']} {r['symbol']} {r['timeframe']} {r['ts']}",
                ",".join(str(r[c]) for c in COLUMNS),
                f"failed quality check {bad[i]}",
            )
            for i, r in zip(sorted(bad), rows, strict=True)
        ]
        clean = PriceBatch(batch.source, batch.table.filter(pa.array(keep)), [*batch.rejected, *rejected],
                           batch.duplicates)  # fmt: skip
        return clean, report

    def check_news(self, feeds: list[ParsedFeed], batch: str) -> tuple[list[ParsedFeed], QualityReport]:
        """The feeds without items failing a row-level expectation (those join each feed's ``rejected``)."""
        frame = news_frame(feeds)
        report, bad = self.run(NEWS_SUITE, news_checks(), frame, batch)
        if not bad:
            return feeds, report
        out, position = [], 0
        for feed in feeds:
            items, rejected = [], list(feed.rejected)
            for item in feed.items:
                if position in bad:
                    payload = json.dumps({"id": item.id, "url": item.url, "title": item.title,
                                          "published_at": item.published_at.isoformat()})  # fmt: skip
                    rejected.append(
                        Rejected(feed.source, f"story {item.id}", payload, f"failed quality check {bad[position]}")
                    )
                else:
                    items.append(item)
                position += 1
            out.append(ParsedFeed(items, feed.source, rejected, feed.bozo))
        return out, report

    def check_social(
        self,
        feeds: list[ParsedSocialFeed],
        batch: str,
        *,
        known_symbols: Collection[str],
        now: datetime | None = None,
    ) -> tuple[list[ParsedSocialFeed], QualityReport]:
        """The social feeds without posts failing a row-level expectation (those join each feed's ``rejected``, so
        ``store_social`` quarantines them): empty text, first seen after ``now`` (the check time), a symbol not in
        ``known_symbols``, a non-web link."""
        frame = social_frame(feeds, known_symbols, now or datetime.now(UTC))
        report, bad = self.run(SOCIAL_SUITE, social_checks(), frame, batch)
        if not bad:
            return feeds, report
        out, position = [], 0
        for feed in feeds:
            posts, rejected = [], list(feed.rejected)
            for post in feed.posts:
                if position in bad:
                    payload = json.dumps({"id": post.id, "url": post.url, "author": post.author, "title": post.title,
                                          "symbols": list(post.symbols),
                                          "first_seen_at": post.first_seen_at.isoformat()})  # fmt: skip
                    rejected.append(
                        Rejected(feed.source, f"post {post.id}", payload, f"failed quality check {bad[position]}")
                    )
                else:
                    posts.append(post)
                position += 1
            out.append(replace(feed, posts=posts, rejected=rejected))
        return out, report


def _run_name(batch: str) -> str:
    # GX stores results under a folder named after the run: no path separators, and keep it short.
    return re.sub(r"[^A-Za-z0-9._-]+", "_", batch).strip("_")[-100:] or "batch"


def price_frame(table: pa.Table, markets: Mapping[tuple[str, str], MarketSpec] | None = None) -> pd.DataFrame:
    """The numeric view GX validates, with ``gap_bars``: expected bars missing just before each bar (session calendar
    of the series' market, ``markets`` by (exchange, symbol): ``alphaloom.markets``, the venue's metadata or
    configuration; a series not in it is unclassified, judged 24/7)."""
    frame = table.select(list(COLUMNS)).to_pandas()
    for column in (*PRICE_COLUMNS, "volume"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    frame["gap_bars"] = 0
    for (exchange, symbol, timeframe), series in frame.groupby(["exchange", "symbol", "timeframe"], sort=False):
        rows = series.index
        market = (markets or {}).get((str(exchange), str(symbol))) or MarketSpec(str(symbol), UNCLASSIFIED, Decimal(0))
        calendar = calendar_for(calendar_class_of(market))
        frame.loc[rows, "gap_bars"] = calendar.gap_before(frame.loc[rows, "ts"], str(timeframe))
    return frame


def news_frame(feeds: list[ParsedFeed]) -> pd.DataFrame:
    rows = [
        {
            "id": i.id,
            "source": f.source,
            "title": i.title,
            "url": i.url,
            "lead_hours": (i.published_at - i.first_seen_at).total_seconds() / 3600,
        }
        for f in feeds
        for i in f.items
    ]
    return pd.DataFrame(rows, columns=["id", "source", "title", "url", "lead_hours"])


def social_frame(feeds: list[ParsedSocialFeed], known_symbols: Collection[str], now: datetime) -> pd.DataFrame:
    """The view of social posts GX validates: ``text`` (title and body), ``ahead_seconds`` (first seen minus the
    check time) and ``unknown_symbols`` (tags not among ``known_symbols``), one row per post in feed order."""
    known = set(known_symbols)
    rows = [
        {
            "id": p.id,
            "source": f.source,
            "text": p.text,
            "url": p.url,
            "ahead_seconds": (p.first_seen_at - now).total_seconds(),
            "unknown_symbols": sum(1 for s in p.symbols if s not in known),
        }
        for f in feeds
        for p in f.posts
    ]
    return pd.DataFrame(rows, columns=["id", "source", "text", "url", "ahead_seconds", "unknown_symbols"])


def record_report(conn: Connection, run_id: str, report: QualityReport) -> None:
    """Keep the checkpoint's summary in ``raw.quality_results`` (the full result stays in GX's store)."""
    conn.execute(
        text(
            "insert into raw.quality_results (run_id, suite, batch, success, evaluated, unexpected, failed, data_docs_path)"
            " values (:run_id, :suite, :batch, :success, :evaluated, :unexpected, cast(:failed as jsonb), :docs)"
        ),
        {"run_id": run_id, "suite": report.suite, "batch": report.batch, "success": report.success,
         "evaluated": report.evaluated, "unexpected": report.unexpected, "failed": json.dumps(report.failed),
         "docs": report.data_docs_path},
    )  # fmt: skip


def latest_reports(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            "select run_id, suite, batch, success, evaluated, unexpected, failed, data_docs_path, created_at"
            " from raw.quality_results order by created_at desc, id desc limit :n"
        ),
        {"n": limit},
    ).mappings()
    return [dict(r) for r in rows]
