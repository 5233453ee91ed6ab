"""Flow: rebuild the Great Expectations Data Docs and return the latest checkpoint summaries."""

from __future__ import annotations

from prefect import flow

from alphaloom.quality.gate import latest_reports
from flows._alerts import alert_on_failure
from flows._audit import audited_run
from flows.ingest_prices import quality_gate


@flow(name="quality_report", on_failure=[alert_on_failure])
def quality_report(limit: int = 20) -> dict[str, object]:
    """Latest results from raw.quality_results and the Data Docs index path."""
    with audited_run("quality_report", {"limit": limit}) as (engine, _), engine.connect() as conn:
        reports = latest_reports(conn, limit)
    return {"results": reports, "data_docs": str(quality_gate().docs_index)}
