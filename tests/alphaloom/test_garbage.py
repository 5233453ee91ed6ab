"""The collector of a long replay (``alphaloom.garbage``): off inside the block, run by ``settle``, restored after."""

from __future__ import annotations

import gc
import threading
import weakref

from alphaloom.garbage import collected_between_chunks


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    """A two-object cycle no one references any more; the weak reference tells when it is freed."""
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_inside_the_block_only_settle_collects_cycles_and_it_freezes_the_survivors() -> None:
    assert gc.isenabled() and gc.get_freeze_count() == 0
    with collected_between_chunks() as settle:
        assert not gc.isenabled()
        kept = [_Node() for _ in range(100)]
        gone = _cycle()
        for _ in range(10_000):  # allocations that would start automatic collections
            _Node()
        assert gone() is not None  # no automatic collection ran
        settle()
        assert gone() is None
        assert gc.get_freeze_count() >= len(kept)  # the survivors are frozen: later collections skip them
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    cycle = _cycle()
    gc.collect()
    assert cycle() is None


def test_a_cycle_made_of_frozen_objects_is_freed_after_the_block() -> None:
    with collected_between_chunks() as settle:
        a, b = _Node(), _Node()
        settle()  # a and b frozen
        a.other, b.other = b, a
        freed = weakref.ref(a)
        del a, b
        settle()
        assert freed() is not None  # frozen: not scanned until the block ends
    gc.collect()
    assert freed() is None


def test_nested_and_concurrent_blocks_restore_the_collector_only_when_the_last_one_ends() -> None:
    inner_entered, outer_may_end = threading.Event(), threading.Event()
    seen: list[bool] = []

    def other_replay() -> None:
        with collected_between_chunks() as settle:
            inner_entered.set()
            outer_may_end.wait(timeout=30)
            settle()
        seen.append(gc.isenabled())

    with collected_between_chunks() as settle:
        worker = threading.Thread(target=other_replay)
        worker.start()
        assert inner_entered.wait(timeout=30)
        with collected_between_chunks():
            pass
        assert not gc.isenabled()  # the nested block's end leaves it off: two blocks are still open
        settle()
    assert not gc.isenabled()  # the other thread's block is still open
    outer_may_end.set()
    worker.join(timeout=30)
    assert seen == [True]
    assert gc.isenabled() and gc.get_freeze_count() == 0


def _frozen(obj: object) -> bool:
    """Whether the collector has frozen ``obj``: ``gc.get_objects()`` lists the tracked objects of its generations,
    never those of the permanent one."""
    assert gc.is_tracked(obj)
    return not any(o is obj for o in gc.get_objects())


def test_objects_frozen_before_the_block_stay_frozen_and_the_block_freezes_nothing() -> None:
    # each object is checked by identity: the freeze count alone can fall while the test runs, whenever a frozen
    # object elsewhere in the process is freed by reference counting (a CI run saw it drop by two)
    own = _Node()
    gc.freeze()
    try:
        assert _frozen(own)
        with collected_between_chunks() as settle:
            made_inside = _Node()
            gone = _cycle()
            settle()
            assert gone() is None  # still collected
            assert not _frozen(made_inside)  # nothing more frozen
            assert _frozen(own)
        assert _frozen(own)  # and nothing of the process's own unfrozen
        assert not _frozen(made_inside)
        assert gc.isenabled()
    finally:
        gc.unfreeze()
