"""Flow: ingest price bars into raw.ohlcv from files (CSV/Parquet) and ccxt exchanges.

Every batch is validated by the GX quality gate before it is merged; failing rows and bad files go to raw.quarantine
with the reason, re-runs add nothing, and a ccxt series resumes after its last stored bar. Inputs are local paths or
http(s) URLs of price files. One input failing as a whole (unreadable, unreachable, or an unexpected error) comes back
as a result with ``error`` ("<input>: <reason>") and never stops the inputs after it.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import cast

from prefect import flow, get_run_logger, task

from alphaloom.errors import InvalidInputError
from alphaloom.ingest.ccxt_prices import CcxtPriceSource, SeriesSpec, fetch_series, resume_points
from alphaloom.ingest.price_sources import SeriesSource, fetch_price_file, is_url, series_source, url_suffix
from alphaloom.ingest.prices import BarLimits, PriceBatch, merge_bars, read_price_bytes, read_price_file
from alphaloom.ingest.quarantine import Rejected, quarantine
from alphaloom.markets import MarketSpec, market_specs, store_specs
from alphaloom.quality.quality_gate import QualityGate, record_report
from alphaloom.settings import get_settings
from alphaloom.venues.ccxt_exchange import make_exchange
from flows._alerts import alert_on_failure
from flows._audit import audited_run

PRICE_SUFFIXES = (".csv", ".parquet", ".pq")


def default_price_files() -> list[str]:
    folder = get_settings().offline_data_dir / "prices"
    return sorted(str(p) for p in folder.glob("*") if p.suffix.lower() in PRICE_SUFFIXES)


def quality_gate() -> QualityGate:
    """The GX gate of the settings in force; one per (home, gap tolerance) per process (its set-up costs seconds)."""
    settings = get_settings()
    return _gate(settings.home, settings.ingest.quality_gap_tolerance_bars)


@lru_cache(maxsize=4)
def _gate(home: Path, gap_tolerance_bars: int) -> QualityGate:
    return QualityGate(home, gap_tolerance_bars=gap_tolerance_bars)


def batch_markets(batch: PriceBatch) -> dict[tuple[str, str], MarketSpec]:
    """Each series' market in the batch, as the trader sees it (venue metadata in raw.markets, else the configured
    asset class): the quality gate judges gaps by its session calendar."""
    from alphaloom.db.engine import get_engine

    settings = get_settings()
    # cast: a PriceBatch's columns are validated text with nulls filled (alphaloom.ingest.prices), never None
    pairs = zip(batch.table.column("exchange").to_pylist(), batch.table.column("symbol").to_pylist(), strict=True)
    series = sorted(cast(set[tuple[str, str]], set(pairs)))
    out: dict[tuple[str, str], MarketSpec] = {}
    with get_engine().connect() as conn:
        for exchange in sorted({e for e, _ in series}):
            specs = market_specs(conn, exchange=str(exchange), symbols=[str(s) for e, s in series if e == exchange],
                                 asset_classes=settings.asset_classes, quantity_steps=settings.quantity_steps)  # fmt: skip
            out.update({(str(exchange), symbol): spec for symbol, spec in specs.items()})
    return out


def store_batch(batch: PriceBatch, run_id: str, *, quality: bool) -> dict[str, object]:
    """Quality gate, then merge; one transaction per batch."""
    from alphaloom.db.engine import get_engine

    report = None
    if quality:
        batch, report = quality_gate().check_prices(batch, batch_markets(batch))
    for rejected in batch.rejected[:20]:
        get_run_logger().warning("quarantined %s", rejected)
    with get_engine().begin() as conn:
        if report is not None:
            record_report(conn, run_id, report)
        result = merge_bars(conn, batch, run_id, limits=BarLimits.from_settings())
    return {**asdict(result), "quality": None if report is None else report.success}


def read_price_source(source: str) -> PriceBatch:
    """A local price file or an http(s) URL of one (its path's suffix says CSV or Parquet), read and validated."""
    limits = BarLimits.from_settings()
    if is_url(source):
        data = fetch_price_file(source)
        return read_price_bytes(data, source=source, suffix=url_suffix(source), limits=limits)
    return read_price_file(source, limits=limits)


@task(retries=2, retry_delay_seconds=2)
def ingest_price_file(path: str, run_id: str, quality: bool = True) -> dict[str, object]:
    from alphaloom.db.engine import get_engine

    try:
        batch = read_price_source(path)
    except InvalidInputError as exc:  # the whole input: missing, unreadable, wrong shape, unreachable
        get_run_logger().error("rejected %s", exc)
        with get_engine().begin() as conn:
            quarantine(conn, run_id, [Rejected(exc.source, exc.location, "", exc.reason)])
        return {"file": path, "error": f"{exc.source}: {exc.reason}", "staged": 0, "inserted": 0, "quarantined": 1}
    return {"file": path, **store_batch(batch, run_id, quality=quality)}


def _ingest_isolated(source: str, run_id: str, quality: bool) -> dict[str, object]:
    """One input through ``ingest_price_file``; an unexpected failure (a bug, the database gone) becomes this input's
    error, logged with its traceback, and the inputs after it still run."""
    state = ingest_price_file(source, run_id, quality, return_state=True)
    if state.is_completed():
        return state.result()
    exc = state.result(raise_on_failure=False)
    get_run_logger().error("%s failed: %s", source, state.message)
    reason = f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else str(state.message)
    return {"file": source, "error": f"{source}: {reason}", "staged": 0, "inserted": 0, "quarantined": 0}


def _series_source(venue: str) -> SeriesSource:
    """The venue's own source (Alpaca, OANDA), else ccxt's."""
    return series_source(venue) or CcxtPriceSource(make_exchange(venue))


@task
def ingest_ccxt(sources: list[str], run_id: str, quality: bool = True) -> list[dict[str, object]]:
    """Fetch closed bars of every series (bounded concurrency), resuming after the last stored bar of each."""
    from alphaloom.db.engine import get_engine

    settings = get_settings()
    specs = [SeriesSpec.parse(s) for s in sources]
    with get_engine().begin() as conn:
        since = resume_points(conn, specs)
    results = fetch_series(
        specs, since, source_for=_series_source,
        max_concurrency=settings.ingest.ccxt_max_concurrency,
        default_since=datetime.now(UTC) - timedelta(days=settings.ingest.ccxt_backfill_days),
    )  # fmt: skip
    with get_engine().begin() as conn:  # first: the quality gate judges each batch by its market's calendar
        for r in results:
            if r.market is not None:
                store_specs(conn, r.spec.exchange, [r.market], run_id)
    out: list[dict[str, object]] = []
    for r in results:
        if r.batch is None:
            get_run_logger().error("%s: %s", r.spec, r.error)
            out.append({"file": str(r.spec), "error": r.error, "staged": 0, "inserted": 0, "quarantined": 0})
        else:
            out.append({"file": str(r.spec), **store_batch(r.batch, run_id, quality=quality)})
    return out


@flow(name="ingest_prices", on_failure=[alert_on_failure])
def ingest_prices(
    paths: list[str] | None = None, ccxt_sources: list[str] | None = None, quality: bool = True
) -> list[dict[str, object]]:
    """Ingest price files (default: the offline data folder, unless ccxt sources are given) and ccxt series
    (default: ``ALPHALOOM_CCXT_SOURCES``) into raw.ohlcv."""
    sources = ccxt_sources if ccxt_sources is not None else get_settings().ingest.ccxt_sources
    files = paths or ([] if sources else default_price_files())
    with audited_run("ingest_prices", {"paths": files, "ccxt_sources": sources, "quality": quality}) as (_, run_id):
        results = [_ingest_isolated(p if is_url(p) else str(Path(p)), run_id, quality) for p in files]
        if sources:
            results.extend(ingest_ccxt(sources, run_id, quality))
        return results
