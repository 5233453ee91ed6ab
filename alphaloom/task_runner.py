"""Where a flow's tasks run, chosen by ``ALPHALOOM_DASK_ADDRESS`` when each flow run starts.

Flows that spread independent work over tasks (the decision fan-out, walk-forward windows, backtest shards) declare
``task_runner=SettingsTaskRunner()``. At the start of a run it becomes:

- unset: Prefect's ``ThreadPoolTaskRunner``, in the flow's process (as before Dask);
- ``local``: a Dask ``LocalCluster`` of ``ALPHALOOM_DASK_WORKERS`` worker processes (one thread each), started for the
  run and stopped after it; the workers inherit the flow process's environment;
- ``tcp://host:8786`` (any Dask scheduler address): an existing cluster, whose workers run this project with the same
  ``ALPHALOOM_`` environment (``docker-compose.yml``: ``dask-scheduler``, ``dask-worker``).

Work too small to pay Prefect's cost per task run (walk-forward windows, sent in blocks of consecutive windows, one
per worker thread, after the sweep's bars are read once as one piece per worker thread) goes to the same cluster as plain Dask futures from inside one task (``flow_dask_client``: the running flow's Dask client; None when its tasks run in the
flow's process).

Tasks on Dask workers read their settings from the worker's environment and open their own database engine
(``alphaloom.db.engine.get_engine``): no engine, connection or broker is shipped between processes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from alphaloom.settings import Settings, get_settings

if TYPE_CHECKING:
    from distributed import Client

    from alphaloom.dask_runner import DaskTaskRunner


def runs_on_dask(settings: Settings | None = None) -> bool:
    """Whether flow tasks run on Dask workers (other processes) under these settings."""
    return (settings or get_settings()).ops.dask_address is not None


def configured_task_runner(settings: Settings | None = None) -> TaskRunner:
    """A fresh, not yet started task runner for ``settings`` (see the module docstring)."""
    settings = settings or get_settings()
    if settings.ops.dask_address is None:
        return ThreadPoolTaskRunner()
    from alphaloom.dask_runner import DaskTaskRunner  # imported only when Dask is configured

    if settings.ops.dask_address == "local":
        return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                              cluster_kwargs={"n_workers": settings.ops.dask_workers, "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": ":0"})  # fmt: skip
    return DaskTaskRunner(address=settings.ops.dask_address)


class SettingsTaskRunner(TaskRunner[PrefectFuture[Any]]):
    """A task runner that is, for each flow run, the one ``ALPHALOOM_DASK_ADDRESS`` names (read when the run
    starts, so a deployment follows the worker's configuration); submissions go to it unchanged."""

    def __init__(self) -> None:
        self._inner: TaskRunner | None = None
        super().__init__()  # type: ignore[no-untyped-call]  # prefect's TaskRunner.__init__ is unannotated

    @property
    def name(self) -> str:
        return "alphaloom-settings"

    def duplicate(self) -> SettingsTaskRunner:
        return type(self)()

    def __enter__(self) -> SettingsTaskRunner:
        inner = configured_task_runner(get_settings())
        inner.__enter__()
        self._inner = inner
        super().__enter__()
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        inner, self._inner = self._inner, None
        try:
            if inner is not None:
                inner.__exit__(exc_type, exc_value, traceback)
        finally:
            super().__exit__(exc_type, exc_value, traceback)

    def _started_inner(self) -> TaskRunner:
        if self._inner is None:
            raise RuntimeError("The task runner must be started before submitting work.")
        return self._inner

    def dask_client(self) -> Client | None:
        """The Dask client of this run when it runs on Dask, else None (also when not started)."""
        dask_runner = sys.modules.get("alphaloom.dask_runner")  # imported only when Dask is configured
        if dask_runner is None:
            return None
        dask_type: type[DaskTaskRunner] = dask_runner.DaskTaskRunner
        if not isinstance(self._inner, dask_type):
            return None
        return self._inner.client

    def submit(
        self,
        task: Any,
        parameters: dict[str, Any],
        wait_for: Iterable[Any] | None = None,
        dependencies: dict[str, Any] | None = None,
    ) -> Any:
        return self._started_inner().submit(task, parameters, wait_for, dependencies)

    def map(self, task: Any, parameters: dict[str, Any], wait_for: Iterable[Any] | None = None) -> Any:
        return self._started_inner().map(task, parameters, wait_for)


def flow_dask_client() -> Client | None:
    """The Dask client of the flow run this code runs in, when its task runner (``SettingsTaskRunner``) runs on Dask;
    None outside a flow run or with another task runner. Meant for the flow's process: the flow body, or a task it
    calls directly (which runs there); not for a task submitted to Dask (on a worker the run's task runner is rebuilt
    from the worker's own settings)."""
    context = FlowRunContext.get()
    runner = context.task_runner if context is not None else None
    return runner.dask_client() if isinstance(runner, SettingsTaskRunner) else None
