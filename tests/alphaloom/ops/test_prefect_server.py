"""The embedded Prefect server (issue 15): started by the first flow command, reused by the next, stopped by
`alphaloom stop` (which waits until it has exited). Through the real CLI in subprocesses, on a throwaway home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import URL

from alphaloom.db.engine import libpq_url
from alphaloom.ops import prefect_server
from alphaloom.settings import PROJECT_ROOT, Settings


def _alphaloom(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ALPHALOOM_"))}
    env |= {"PYTHONPATH": str(PROJECT_ROOT), "ALPHALOOM_HOME": str(home), "ALPHALOOM_SERVE_PORT": "0",
            "ALPHALOOM_DATABASE_URL": os.environ["ALPHALOOM_DATABASE_URL"]}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "alphaloom.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=home.parent.parent)  # fmt: skip


@pytest.fixture()
def home(database_url: URL, tmp_path: Path):
    home = tmp_path / "new" / "home"  # not created yet: the first command must work on a new home
    yield home
    settings = Settings(home=home)
    prefect_server.stop(settings)  # never leave a server behind, whatever the test did
    with psycopg.connect(libpq_url(database_url.set(database="postgres")), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{prefect_server.prefect_database_name(database_url)}" with (force)')


@pytest.mark.prefect  # starts the embedded Prefect server
def test_first_flow_command_starts_the_server_the_next_reuses_it_and_stop_stops_it(home: Path, tmp_path) -> None:
    bars = tmp_path / "bars.csv"
    bars.write_text("ts,open,high,low,close,volume,exchange,symbol,timeframe\n"
                    "2024-01-01T00:00:00,1,2,0.5,1.5,10,pfx,PFX/USDT,1h\n")  # fmt: skip
    first = _alphaloom(home, "ingest", "prices", str(bars), "--no-quality")
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    state = json.loads((home / "prefect" / "server.json").read_text())
    api = f"http://{state['host']}:{state['port']}/api"
    assert httpx.get(f"{api}/health", timeout=5).json() is True
    runs = httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).json()
    assert [r["state_type"] for r in runs] == ["COMPLETED"]  # the flow ran against the embedded server

    second = _alphaloom(home, "ingest", "prices", str(bars), "--no-quality")
    assert second.returncode == 0, (second.stdout + second.stderr)[-3000:]
    assert json.loads((home / "prefect" / "server.json").read_text())["pid"] == state["pid"]  # reused
    assert len(httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).json()) == 2

    status = _alphaloom(home, "db", "status")
    assert f"embedded Prefect server: running at http://{state['host']}:{state['port']}/" in status.stdout

    stopped = _alphaloom(home, "stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert f"embedded Prefect server stopped (pid {state['pid']}" in stopped.stdout
    assert not (home / "prefect" / "server.json").exists()
    assert not Path(f"/proc/{state['pid']}").exists() or not Path(f"/proc/{state['pid']}/cmdline").read_bytes()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{api}/health", timeout=2)
    again = _alphaloom(home, "stop")
    assert "embedded Prefect server was not running" in again.stdout
