"""Prefect's Dask task runner, submitting without hashing the task's inputs (imported only when Dask is configured).

``prefect_dask.DaskTaskRunner`` submits each task run with Dask's default ``pure=True``: Dask then tokenizes every
input (pickling what it cannot hash, such as a walk-forward window's frames) to name the work, although each Prefect
task run has its own id and so can never share a result with another. ``pure=False`` names the work at random instead;
what runs, and where, is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prefect_dask.task_runners import DaskTaskRunner as _PrefectDaskTaskRunner
from prefect_dask.task_runners import PrefectDaskFuture


class DaskTaskRunner(_PrefectDaskTaskRunner):
    """``prefect_dask.DaskTaskRunner`` with ``pure=False`` submissions (see the module docstring)."""

    def submit(  # type: ignore[override]
        self,
        task: Any,
        parameters: dict[str, Any],
        wait_for: Iterable[Any] | None = None,
        dependencies: dict[str, Any] | None = None,
    ) -> PrefectDaskFuture[Any]:
        if not self._started:
            raise RuntimeError("The task runner must be started before submitting work.")
        future = self.client.submit(  # type: ignore[no-untyped-call]  # PrefectDaskClient.submit is unannotated
            task,
            parameters=self._optimize_futures(parameters),
            wait_for=self._optimize_futures(wait_for) if wait_for else None,
            dependencies=dependencies,
            return_type="state",
            pure=False,
        )
        return PrefectDaskFuture[Any](wrapped_future=future, task_run_id=future.task_run_id)
