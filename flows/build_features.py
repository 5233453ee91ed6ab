"""Flow: build the feature marts with dbt (a failed model or test fails the flow)."""

from __future__ import annotations

from prefect import flow, task

from alphaloom.features.dbt_runner import build_features as dbt_build
from flows._alerts import alert_on_failure
from flows._audit import audited_run


@task
def run_dbt_build() -> dict[str, object]:
    run = dbt_build()
    return {"invocation_id": run.invocation_id, "nodes": len(run.results), **run.counts(), "log": str(run.log_file)}


@flow(name="build_features", on_failure=[alert_on_failure])
def build_features() -> dict[str, object]:
    """`dbt build`: staging -> intermediate -> marts, with every data and unit test."""
    with audited_run("build_features", {}):
        return run_dbt_build()
