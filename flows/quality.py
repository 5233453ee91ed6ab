"""Flow: rewrite the offline Data Docs entry page and return the latest checkpoint summaries."""

from __future__ import annotations

from prefect import flow

from alphaloom.quality.quality_gate import latest_reports
from flows._alerts import alert_on_failure
from flows._audit import audited_run
from flows.ingest_prices import quality_gate


@flow(name="quality_report", on_failure=[alert_on_failure])
def quality_report(limit: int = 20) -> dict[str, object]:
    """Latest results from raw.quality_results, GX's Data Docs index path and our offline entry page (rewritten
    here from GX's store, so it is there even when no batch was checked since an upgrade)."""
    with audited_run("quality_report", {"limit": limit}) as (engine, _), engine.connect() as conn:
        reports = latest_reports(conn, limit)
        gate = quality_gate()
        offline = gate.write_offline_index()
    return {"results": reports, "data_docs": str(gate.docs_index), "offline_docs": str(offline)}
