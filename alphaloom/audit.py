"""The audit spine's identities (ARCHITECTURE §8): a new run id and the project's git sha.

Every flow run writes one ``audit.runs`` row keyed by its Prefect flow-run id (a uuid outside Prefect); every row it
produces carries that ``run_id``; the row is written and read by ``alphaloom.records.runs``. Lineage edges
(``audit.lineage``: which parent rows a child row was made from) are written in the same statement as the rows they describe, by ``agents.recording`` and ``execution.orders.store``.
"""

from __future__ import annotations

import subprocess
import uuid
from functools import lru_cache

from alphaloom.domain import RunId
from alphaloom.settings import PROJECT_ROOT


@lru_cache(maxsize=1)
def git_sha() -> str | None:
    """The project's commit, so a decision can name the code (and dbt models) it ran with."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def new_run_id() -> RunId:
    """A fresh run id (a uuid), for a run outside Prefect."""
    return RunId(str(uuid.uuid4()))
