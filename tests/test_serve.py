"""`alphaloom serve`'s machinery: a Prefect server on the project's PostgreSQL answers health and takes the deployments."""

from __future__ import annotations

import uuid

import httpx
import psycopg

from alphaloom.db.engine import libpq_url
from alphaloom.serve import free_port, local_prefect
from alphaloom.settings import get_settings


def test_a_served_prefect_api_on_postgres_answers_health_and_registers_the_deployments(database_url, tmp_path) -> None:
    settings = get_settings()
    stack = local_prefect(settings, database_url, port=free_port())
    dbname = f"prefect_test_{uuid.uuid4().hex[:8]}"  # a throwaway Prefect database, not the operator's
    from alphaloom.serve import prefect_database_url

    stack.env["PREFECT_API_DATABASE_CONNECTION_URL"] = prefect_database_url(database_url, dbname)
    stack.env["PREFECT_HOME"] = str(tmp_path / "prefect")
    stack.log_dir = tmp_path / "logs"
    assert stack.host == "127.0.0.1"  # not on the network unless configured
    try:
        stack.start_server(timeout=120)
        assert httpx.get(f"{stack.api_url}/health", timeout=5).json() is True
        deployed, skipped = stack.deploy(settings.serve_work_pool)
        found = httpx.post(f"{stack.api_url}/deployments/filter", json={}, timeout=10).json()
        by_name = {d["name"]: d for d in found}
        assert set(deployed) == set(by_name) and {"decide", "ingest-prices"} <= set(by_name)
        assert [s["schedule"]["cron"] for s in by_name["decide"]["schedules"]] == ["1 * * * *"]
        assert by_name["decide"]["work_pool_name"] == settings.serve_work_pool
        pool = httpx.get(f"{stack.api_url}/work_pools/{settings.serve_work_pool}", timeout=10).json()
        assert pool["type"] == "process"
        assert "quality" in deployed or "quality" in skipped
    finally:
        stack.stop()
        with psycopg.connect(libpq_url(database_url.set(database="postgres")), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{dbname}" with (force)')
