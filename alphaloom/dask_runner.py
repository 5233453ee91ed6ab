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
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import distributed
from prefect_dask.client import PrefectDaskClient
from prefect_dask.task_runners import DaskTaskRunner as _PrefectDaskTaskRunner
from prefect_dask.task_runners import PrefectDaskFuture


class DaskTaskRunner(_PrefectDaskTaskRunner):
    """``prefect_dask.DaskTaskRunner`` that connects to its own address or cluster and submits with ``pure=False``
    (see the module docstring)."""

    @property
    def client(self) -> PrefectDaskClient:
        """The run's client, made on first use: connected to ``address`` when given, else to a cluster of
        ``cluster_class`` (``cluster_kwargs``) started here and closed with the runner; never the process's default
        Dask client."""
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
