"""A local Prefect control plane for AlphaLoom: a process worker and the deployments on top of the embedded server.

``prefect_database_url`` derives the server's database (a ``prefect`` database on the same PostgreSQL server as
AlphaLoom's, created when missing). The server itself is the home's embedded one (``alphaloom.ops.prefect_server``,
started on first use); ``LocalPrefect`` adds to it: ``deploy`` registers ``prefect.yaml``, ``start_worker`` starts a
process worker on the work pool, stopped by ``stop``; nothing here imports the flows.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import URL

from alphaloom.errors import DatabaseError
from alphaloom.ops.prefect_server import ServerState
from alphaloom.settings import PROJECT_ROOT, Settings, prefect_home

PREFECT_DATABASE = "prefect"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def prefect_database_url(alphaloom_url: URL, dbname: str = PREFECT_DATABASE) -> str:
    """``postgresql+asyncpg://`` URL of ``dbname`` on AlphaLoom's server, creating the database when missing."""
    admin = alphaloom_url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            if conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone() is None:
                conn.execute(f'create database "{dbname}"')
    except psycopg.errors.DuplicateDatabase:
        pass
    except psycopg.Error as exc:
        raise DatabaseError(f"could not create the Prefect database {dbname!r}: {exc}") from exc
    return alphaloom_url.set(drivername="postgresql+asyncpg", database=dbname).render_as_string(hide_password=False)


def deployable(prefect_file: Path) -> tuple[list[str], list[str]]:
    """Names of the deployments in ``prefect_file`` whose entrypoint file exists, and of those whose file does not."""
    import yaml

    config = yaml.safe_load(prefect_file.read_text()) or {}
    ready: list[str] = []
    skipped: list[str] = []
    for deployment in config.get("deployments") or []:
        path = deployment["entrypoint"].split(":", 1)[0]
        (ready if (prefect_file.parent / path).is_file() else skipped).append(deployment["name"])
    return ready, skipped


def prefect_cli() -> list[str]:
    """The ``prefect`` command of this interpreter's environment."""
    candidate = Path(sys.executable).parent / "prefect"
    return [str(candidate)] if candidate.exists() else [sys.executable, "-m", "prefect"]


def wait_healthy(api_url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``{api_url}/health`` until it answers 200; raise when ``timeout`` passes or the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with code {process.returncode} before becoming healthy")
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)  # polling a readiness condition, bounded by the deadline
    raise TimeoutError(f"the Prefect API at {api_url} did not become healthy within {timeout:.0f} s")


@dataclass
class LocalPrefect:
    """The children ``alphaloom serve`` runs on top of ``server`` and the environment they share."""

    server: ServerState
    env: dict[str, str]
    log_dir: Path
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return self.server.api_url

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("ab") as log:  # the child writes to its own copy of the file
            child = subprocess.Popen(
                args, env=self.env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.children[name] = child
        return child

    def run(self, args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """A ``prefect`` CLI command against this server (non-interactive); raises with its output when it fails."""
        result = subprocess.run(
            [*prefect_cli(), "--no-prompt", *args], env=self.env, cwd=PROJECT_ROOT, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)} failed:\n{(result.stdout + result.stderr)[-3000:]}")
        return result

    def deploy(self, pool: str) -> tuple[list[str], list[str]]:
        """Create the process work pool (if absent) and register the deployments of ``prefect.yaml`` whose flow file
        exists; returns (deployed, skipped) deployment names (a flow still being written is skipped, not fatal)."""
        ready, skipped = deployable(PROJECT_ROOT / "prefect.yaml")
        # Through the API rather than `prefect work-pool create`: one CLI start less (seconds each).
        response = httpx.post(f"{self.api_url}/work_pools/", json={"name": pool, "type": "process"}, timeout=30)
        if response.status_code not in (201, 409):  # 409: it exists already
            raise RuntimeError(f"creating work pool {pool!r} failed: HTTP {response.status_code} {response.text[:500]}")
        if ready:
            names = [arg for name in ready for arg in ("--name", name)]
            self.run(["deploy", *names, "--prefect-file", str(PROJECT_ROOT / "prefect.yaml")])
        return ready, skipped

    def start_worker(self, pool: str) -> None:
        self._spawn("worker", [*prefect_cli(), "worker", "start", "--pool", pool, "--type", "process"])

    def stop(self, timeout: float = 15) -> None:
        """Stop the worker (SIGTERM to its process group, SIGKILL after ``timeout``); the server is left running."""
        for name in list(self.children):
            child = self.children.pop(name, None)
            if child is None or child.poll() is not None:
                continue
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(timeout)


def local_prefect(settings: Settings, database: URL, server: ServerState) -> LocalPrefect:
    """A ``LocalPrefect`` on the running ``server`` (``alphaloom.ops.prefect_server.ensure_running``): its worker's flow
    runs use ``database``, the operator's."""
    env = {
        **os.environ,
        "PREFECT_API_URL": server.api_url,
        "PREFECT_UI_API_URL": server.api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_HOME": prefect_home(settings),
        # The worker's flow runs use the same database as the operator's CLI, and prefect.yaml's pull step needs this.
        "ALPHALOOM_DATABASE_URL": database.set(drivername="postgresql").render_as_string(hide_password=False),
        "ALPHALOOM_PROJECT_DIR": str(PROJECT_ROOT),
    }
    return LocalPrefect(server, env, settings.home / "serve")
