"""The embedded Prefect server: like the embedded PostgreSQL, started on first use and reused by every later command.

``ensure_running`` returns the API URL of the home's server, starting ``prefect server start`` detached (its state in
a Prefect database on AlphaLoom's PostgreSQL, ``prefect_database_name``) when none answers. Which server belongs to a
home is kept in ``$ALPHALOOM_HOME/prefect/server.json`` (pid, port, API URL); starting is serialised by a file lock,
so two commands started together share one server. ``stop`` asks the server to shut down (SIGTERM to its process
group), waits until it has exited (SIGKILL after the grace period) and removes the state file.

The port is ``ALPHALOOM_SERVE_PORT`` when free, else any free port (several homes on one machine each get their own
server). ``alphaloom serve`` adds a worker and the deployments on top of the same server.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.engine import URL

from alphaloom.settings import PROJECT_ROOT, Settings, prefect_home


@dataclass(frozen=True)
class ServerState:
    pid: int
    host: str
    port: int
    database: str

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.port}/"


def state_file(settings: Settings) -> Path:
    return settings.home / "prefect" / "server.json"


def log_file(settings: Settings) -> Path:
    return settings.home / "serve" / "prefect-server.log"


def prefect_database_name(alphaloom_url: URL) -> str:
    """``prefect`` beside AlphaLoom's own database (the production layout); ``<db>_prefect`` when AlphaLoom's database
    is not the server's default, so each database on a shared server (a test session's, say) has its own."""
    name = alphaloom_url.database or "postgres"
    return "prefect" if name in ("postgres", "alphaloom") else f"{name}_prefect"


def _alive(pid: int) -> bool:
    """The process exists and (where /proc tells) is a Prefect server, not an unrelated process that reused the pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        args = cmdline.read_bytes()
    except OSError:
        return not cmdline.parent.parent.exists() or cmdline.parent.exists()
    if not args:  # a zombie (exited, not yet collected)
        _reap(pid)
        return False
    return b"prefect" in args and b"server" in args


def _healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def read_state(settings: Settings) -> ServerState | None:
    """The recorded server when its process is still alive (a stale record is removed)."""
    path = state_file(settings)
    try:
        data = json.loads(path.read_text())
        state = ServerState(int(data["pid"]), str(data["host"]), int(data["port"]), str(data.get("database", "")))
    except (OSError, ValueError, KeyError):
        return None
    if not _alive(state.pid):
        path.unlink(missing_ok=True)
        return None
    return state


def running(settings: Settings) -> ServerState | None:
    """The home's server when it is alive and answers its health check."""
    state = read_state(settings)
    return state if state is not None and _healthy(state.api_url) else None


@contextmanager
def _start_lock(settings: Settings) -> Iterator[None]:
    path = settings.home / "prefect" / "server.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _port(host: str, preferred: int) -> int:
    """``preferred`` when free, else (or for 0) a free port."""
    with socket.socket() as s:
        try:
            s.bind((host, preferred))
        except OSError:
            s.bind((host, 0))
        return int(s.getsockname()[1])


def ensure_running(settings: Settings, database: URL, *, timeout: float = 120) -> ServerState:
    """The home's Prefect server, started (detached, outliving this process) when none answers."""
    from alphaloom.ops.serve import prefect_cli, prefect_database_url, wait_healthy

    current = running(settings)
    if current is not None:
        return current
    with _start_lock(settings):
        current = running(settings)  # another command may have started it while we waited
        if current is not None:
            return current
        stale = read_state(settings)
        if stale is not None:  # alive but not answering: replace it
            stop(settings)
        host = settings.ops.serve_host
        port = _port(host, settings.ops.serve_port)
        dbname = prefect_database_name(database)
        env = {
            **os.environ,
            "PREFECT_API_DATABASE_CONNECTION_URL": prefect_database_url(database, dbname),
            "PREFECT_SERVER_API_HOST": host,
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_UI_API_URL": f"http://{host}:{port}/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_HOME": prefect_home(settings),
        }
        env.pop("PREFECT_API_URL", None)
        log = log_file(settings)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            child = subprocess.Popen(
                [*prefect_cli(), "server", "start", "--host", host, "--port", str(port)], env=env, cwd=PROJECT_ROOT,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        _started[child.pid] = child
        state = ServerState(child.pid, host, port, dbname)
        state_file(settings).write_text(json.dumps({"pid": child.pid, "host": host, "port": port, "database": dbname}))
        try:
            wait_healthy(state.api_url, timeout, child)
        except Exception as exc:
            stop(settings)
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise RuntimeError(f"the embedded Prefect server did not start ({exc}); log {log}:\n{tail}") from exc
        return state


def stop(settings: Settings, *, grace: float = 20) -> ServerState | None:
    """Stop the home's server and wait until it has exited; returns what was stopped (None: none was running)."""
    state = read_state(settings)
    if state is None:
        state_file(settings).unlink(missing_ok=True)
        return None
    with suppress(ProcessLookupError):
        os.killpg(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(state.pid) and time.monotonic() < deadline:
        _reap(state.pid)
        time.sleep(0.1)  # waiting for the exit the signal asked for, bounded by the deadline
    if _alive(state.pid):
        with suppress(ProcessLookupError):
            os.killpg(state.pid, signal.SIGKILL)
        while _alive(state.pid):
            _reap(state.pid)
            time.sleep(0.05)
    state_file(settings).unlink(missing_ok=True)
    return state


# The servers this process started: their ``Popen`` kept while they run (one collected earlier says "subprocess is
# still running", a ResourceWarning) and asked for their exit status when they stop.
_started: dict[int, subprocess.Popen[bytes]] = {}


def _reap(pid: int) -> None:
    """Collect the exit status when the server is our own child (started by this process), so it is not a zombie."""
    child = _started.get(pid)
    if child is not None:
        if child.poll() is not None:
            del _started[pid]
        return
    with suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
