"""Prefect's Dask task runner, connecting where it is told and submitting without hashing the task's inputs (imported
only when Dask is configured).

Two departures from ``prefect_dask.DaskTaskRunner``:

- Where it connects: ``prefect_dask`` first asks Dask for the process's default client (``distributed.get_client``:
  the newest ``Client`` made in the process) and, when there is one, runs on that client's cluster whatever address or
  cluster it was given. A process holding a client of another cluster (a notebook, a benchmark comparing clusters)
  would run the flow there. This runner connects to its ``address``, or starts its own cluster, always.
- How it submits: ``prefect_dask`` submits each task run with Dask's default ``pure=True``: Dask then tokenizes every
  input (pickling what it cannot hash, such as a walk-forward window's frames) to name the work, although each Prefect
  task run has its own id and so can never share a result with another. ``pure=False`` names the work at random
  instead; what runs, and where, is unchanged.

And one for the workers: Dask's nanny starts each worker process with ``MALLOC_TRIM_THRESHOLD_=65536``
(``distributed.nanny.pre-spawn-environ``), which also turns off glibc's sliding mmap threshold: an allocation over
128 KiB (any frame of a walk-forward window) that the heap's free memory cannot serve is then mapped afresh, faulted in
page by page and unmapped when freed, and little freed memory stays in the heap. How often depends on the heap's past
layout: a walk-forward sweep's windows made some 110,000 minor page faults each in one worker process and few in
another, up to 40% of a worker's CPU seconds spent in the kernel (``bench/scale.py``: 2 workers spent 1.75 times the
CPU seconds of 1 on the same windows). The runner registers a worker plugin (``KeepFreedMemory``) on every cluster it
connects to: each worker keeps freed memory for the next allocation (``keep_freed_memory``: glibc's mmap threshold set
to 32 MiB and its trim threshold to 64 MiB, where its sliding thresholds would settle), unless
``MALLOC_MMAP_THRESHOLD_`` is set in the worker's environment.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable
from typing import Any

import distributed
from distributed.diagnostics.plugin import WorkerPlugin
from prefect_dask.client import PrefectDaskClient
from prefect_dask.task_runners import DaskTaskRunner as _PrefectDaskTaskRunner
from prefect_dask.task_runners import PrefectDaskFuture

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (glibc's malloc.h)
# glibc's ceiling for its sliding mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # where glibc's sliding trim threshold follows it


def keep_freed_memory() -> bool:
    """Set this process's glibc malloc to keep freed memory for the next allocation: allocations up to
    ``MMAP_THRESHOLD`` come from its heaps and up to ``TRIM_THRESHOLD`` of free memory stays there (see the module
    docstring). Nothing (False) off Linux, without glibc's ``mallopt`` or when ``MALLOC_MMAP_THRESHOLD_`` is set in the
    environment (the operator's choice); True when set."""
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


class KeepFreedMemory(WorkerPlugin):
    """Each worker of the cluster, present and to come, runs ``keep_freed_memory`` (registered once per cluster:
    ``idempotent``)."""

    name = "alphaloom-keep-freed-memory"
    idempotent = True

    def setup(self, worker: distributed.Worker) -> None:
        keep_freed_memory()


class DaskTaskRunner(_PrefectDaskTaskRunner):
    """``prefect_dask.DaskTaskRunner`` that connects to its own address or cluster and submits with ``pure=False``
    (see the module docstring)."""

    @property
    def client(self) -> PrefectDaskClient:
        """The run's client, made on first use: connected to ``address`` when given, else to a cluster of
        ``cluster_class`` (``cluster_kwargs``) started here and closed with the runner; never the process's default
        Dask client. Its workers keep freed memory (``KeepFreedMemory``)."""
        if self._client is None:
            target: str | distributed.deploy.Cluster
            if self.address:
                target = self.address
            else:
                cluster_class: Any = self.resolved_cluster_class or distributed.LocalCluster
                self._cluster = self._exit_stack.enter_context(cluster_class(**self.cluster_kwargs))
                target = self._cluster
            self._connect_to = target  # type: ignore[assignment]  # prefect_dask stores an address here too
            client = PrefectDaskClient(target, **self.client_kwargs)  # type: ignore[no-untyped-call]  # unannotated
            self._client = self._exit_stack.enter_context(client)
            client.register_plugin(KeepFreedMemory())
        return self._client

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
