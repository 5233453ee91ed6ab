"""`alphaloom serve`'s machinery: the embedded Prefect server on PostgreSQL answers health and takes the deployments."""

from __future__ import annotations

import httpx
import psycopg

from alphaloom.db.engine import libpq_url
from alphaloom.ops import prefect_server
from alphaloom.ops.serve import free_port, local_prefect
from alphaloom.settings import get_settings


def test_a_served_prefect_api_on_postgres_answers_health_and_registers_the_deployments(database_url, tmp_path) -> None:
    # the session's database gets its own Prefect database (<db>_prefect), dropped here, and the server its own home
    settings = get_settings().model_copy(update={"home": tmp_path, "ops.serve_port": free_port()})
    assert settings.ops.serve_host == "127.0.0.1"  # not on the network unless configured
    dbname = prefect_server.prefect_database_name(database_url)
    assert dbname != "prefect"  # not the operator's
    try:
        server = prefect_server.ensure_running(settings, database_url, timeout=120)
        stack = local_prefect(settings, database_url, server)
        assert stack.api_url == server.api_url == f"http://127.0.0.1:{settings.ops.serve_port}/api"
        assert httpx.get(f"{stack.api_url}/health", timeout=5).json() is True
        deployed, skipped = stack.deploy(settings.ops.serve_work_pool)
        found = httpx.post(f"{stack.api_url}/deployments/filter", json={}, timeout=10).json()
        by_name = {d["name"]: d for d in found}
        assert set(deployed) == set(by_name) and {"decide", "ingest-prices"} <= set(by_name)
        assert [s["schedule"]["cron"] for s in by_name["decide"]["schedules"]] == ["1 * * * *"]
        assert by_name["decide"]["work_pool_name"] == settings.ops.serve_work_pool
        pool = httpx.get(f"{stack.api_url}/work_pools/{settings.ops.serve_work_pool}", timeout=10).json()
        assert pool["type"] == "process"
        assert "quality" in deployed or "quality" in skipped
    finally:
        prefect_server.stop(settings)
        with psycopg.connect(libpq_url(database_url.set(database="postgres")), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{dbname}" with (force)')
