"""A progress bar for long commands (replays, walk-forward): steps done, steps per second, time left, drawn with rich
on stderr when it is a terminal, and nothing at all otherwise (pipes, CI logs, tests).

``progress(total, description)`` is a context manager yielding ``advance(n=1)``; bars nest (an outer walk-forward
and the replays inside it each get a line). The ``progress`` setting (``ALPHALOOM_PROGRESS=never|always``) overrides
the terminal test.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from alphaloom.settings import get_settings

_active: list[Progress] = []


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.1f} steps/s" if task.speed else "", style="progress.data.speed")


def _wanted() -> bool:
    choice = get_settings().ops.progress
    return choice == "always" or (choice == "auto" and sys.stderr.isatty())


@contextmanager
def progress(total: int, description: str) -> Iterator[Callable[..., None]]:
    """Show ``description`` with a bar of ``total`` steps while the body runs; yields ``advance(n=1)``."""
    if not _wanted():
        yield lambda n=1: None
        return
    if _active:  # nested: one more line on the bar already shown
        bar = _active[-1]
        task = bar.add_task(description, total=total)
        try:
            yield lambda n=1: bar.advance(task, n)
        finally:
            bar.remove_task(task)
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _Rate(), TimeElapsedColumn(),
                   TextColumn("left"), TimeRemainingColumn(), console=Console(stderr=True))  # fmt: skip
    _active.append(bar)
    try:
        with bar:
            task = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(task, n)
    finally:
        _active.pop()
