"""Flow: rebuild the Great Expectations Data Docs and return the latest checkpoint summaries."""

from __future__ import annotations

from prefect import flow

from alphaloom.db.engine import get_engine
from alphaloom.quality.gate import latest_reports
from flows.ingest_prices import quality_gate


@flow(name="quality_report")
def quality_report(limit: int = 20) -> dict[str, object]:
    """Latest results from raw.quality_results and the Data Docs index path."""
    with get_engine().begin() as conn:
        reports = latest_reports(conn, limit)
    return {"results": reports, "data_docs": str(quality_gate().docs_index)}
