"""One write at a time on a thread of its own, on a connection and in a transaction of its own, while the caller
goes on computing (ARCHITECTURE §5: a replay's chunk of rows is written while the next chunk's steps run).

Why: writing a bulk of rows (``COPY``) is mostly waiting for the server to check and index them; psycopg releases the
GIL while it waits, so on a second core the server's work and the caller's Python overlap instead of taking turns.

What callers can rely on:

- ``submit(write)`` first waits for the write before it (at most one in flight: a write may reference the rows of
  the one before) and raises that one's failure; then it runs ``write(conn)`` on a new thread, on a connection of its
  own from the engine in force (``alphaloom.db.engine.get_engine``, or the one given), in one transaction, committed
  when ``write`` returns and rolled back when it raises. ``write`` must own what it writes: the caller hands over
  rows it no longer touches (no state is shared with the thread).
- A failure is never lost: the write's exception is raised in the caller's thread, by ``check()`` (without waiting,
  once the write ended), ``wait()``, the next ``submit`` or the exit of the ``with`` block, whichever comes first,
  and only once. ``wait()`` returns once nothing is in flight: rows a caller reads next are committed.
- The exit of the ``with`` block waits for the write in flight. When another exception is leaving the block, that one
  goes on and the write's failure, if any, is logged (the block failed already).
- The thread is not a daemon: a process that ends while a write is in flight lets it finish.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Connection, Engine

from alphaloom.db.engine import get_engine

log = logging.getLogger(__name__)

Write = Callable[[Connection], object]


class BackgroundWriter:
    """See the module docstring."""

    def __init__(self, engine: Engine | None = None, name: str = "background-writer") -> None:
        self._engine, self._name = engine, name
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if error is None:
            self.wait()
            return
        self._join()
        failed, self._error = self._error, None
        if failed is not None:
            log.error("%s: the write in flight failed too: %r", self._name, failed, exc_info=failed)

    @property
    def busy(self) -> bool:
        """Whether a write is in flight."""
        return self._thread is not None and self._thread.is_alive()

    def submit(self, write: Write) -> None:
        """Run ``write`` on a thread of its own once the write before it is done (see the module docstring)."""
        self.wait()
        engine = self._engine if self._engine is not None else get_engine()
        self._thread = threading.Thread(target=self._run, args=(engine, write), name=self._name)
        self._thread.start()

    def check(self) -> None:
        """Raise the failure of a write that ended; never waits."""
        if self._thread is not None and not self._thread.is_alive():
            self.wait()

    def wait(self) -> None:
        """Wait for the write in flight (if any) and raise its failure."""
        self._join()
        failed, self._error = self._error, None
        if failed is not None:
            raise failed

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self, engine: Engine, write: Write) -> None:
        try:
            with engine.connect() as conn, conn.begin():
                write(conn)
        except BaseException as exc:  # handed to the caller's thread: raised there by check, wait or submit
            self._error = exc
