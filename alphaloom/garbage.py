"""Python's cyclic garbage collector in a long replay: run between its chunks of steps, not during them.

A replay holds a great many long-lived objects (its window's rows and signals, the memory's opinions, the account's
marks, the audit rows held for the next write). The collector, run automatically as objects are allocated, scans them
again and again: each of its full collections scans every object it tracks, so a step got slower as the replay's
history grew (about a fifth of a 10 x 8,760 ``--audit none`` replay's CPU time went into collections).

``collected_between_chunks()`` is a context manager yielding ``settle()``:

- Inside it the automatic collection is off, for the whole process (the collector is process-wide).
- ``settle()``, called after the window's load and at the end of each chunk, collects the unreachable cycles among
  the objects made since the last call (the youngest generation: with the automatic collection off, nothing leaves
  it but by a collection), then freezes the survivors (``gc.freeze``): later collections no longer scan them.
  Garbage without cycles is freed at once, as always (reference counting does not wait for the collector).
- A frozen object, or one older than the block, that becomes part of unreachable cycles inside it waits for the
  exit: leaving the block (the outermost one, when replays nest or run side by side in threads) unfreezes every
  object it froze and turns the automatic collection back on if it was on, so a later collection frees them.
- A process that froze objects of its own before (``gc.get_freeze_count()`` above zero: e.g. a server preparing a
  fork) keeps them frozen: ``settle()`` then only collects, and the exit unfreezes nothing.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0  # blocks entered and not yet left, in every thread
_restore = False  # whether the automatic collection was on when the outermost block was entered
_freezing = False  # whether settle() may freeze (nobody else's objects were frozen when the outermost was entered)


@contextmanager
def collected_between_chunks() -> Iterator[Callable[[], None]]:
    """See the module docstring."""
    global _depth, _restore, _freezing
    with _lock:
        if _depth == 0:
            _restore, _freezing = gc.isenabled(), gc.get_freeze_count() == 0
            gc.disable()
        _depth += 1
    try:
        yield _settle
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                if _freezing:
                    gc.unfreeze()
                if _restore:
                    gc.enable()


def _settle() -> None:
    # the youngest generation only: with the automatic collection off, it holds every object made since the last
    # settle (the rest was frozen then, or is older than the block and is not scanned again here)
    gc.collect(0)
    with _lock:
        if _freezing and _depth > 0:
            gc.freeze()
