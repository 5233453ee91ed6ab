"""Flow: ingest price files into raw.ohlcv (bad rows quarantined, re-runs add nothing)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from prefect import flow, get_run_logger, task

from alphaloom.errors import SchemaError
from alphaloom.ingest.prices import merge_bars, read_price_file
from alphaloom.ingest.quarantine import Rejected, quarantine
from alphaloom.settings import get_settings
from flows._alerts import alert_on_failure
from flows._audit import audited_run

PRICE_SUFFIXES = (".csv", ".parquet", ".pq")


def default_price_files() -> list[str]:
    folder = get_settings().offline_data_dir / "prices"
    return sorted(str(p) for p in folder.glob("*") if p.suffix.lower() in PRICE_SUFFIXES)


@task(retries=2, retry_delay_seconds=2)
def ingest_price_file(path: str, run_id: str) -> dict[str, int | str]:
    from alphaloom.db.engine import get_engine

    logger = get_run_logger()
    engine = get_engine()
    try:
        batch = read_price_file(path)
    except SchemaError as exc:
        logger.error("rejected %s", exc)
        with engine.begin() as conn:
            quarantine(conn, run_id, [Rejected(exc.source, exc.location, "", exc.reason)])
        return {"file": path, "error": str(exc), "staged": 0, "inserted": 0, "quarantined": 1}
    for rejected in batch.rejected[:20]:
        logger.warning("quarantined %s", rejected)
    with engine.begin() as conn:
        result = merge_bars(conn, batch, run_id)
    return {"file": path, **asdict(result)}


@flow(name="ingest_prices", on_failure=[alert_on_failure])
def ingest_prices(paths: list[str] | None = None) -> list[dict[str, int | str]]:
    """Ingest each price file (CSV/Parquet; default: the offline data folder) into raw.ohlcv."""
    files = paths or default_price_files()
    with audited_run("ingest_prices", {"paths": files}) as (_, run_id):
        return [ingest_price_file(str(Path(p)), run_id) for p in files]
