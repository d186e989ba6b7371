"""``--launcher ray``: each run a Ray task with declared resources, on a Ray cluster or a local one.

A task declares ``num_cpus`` = its thread budget and ``num_gpus`` = ``--gpus-per-run`` (or the
method's ``gpus_per_run`` class attribute; a fraction packs several runs on one GPU). Ray retries a
task lost with its worker (``max_retries`` = ``--retries``); then it is reported lost. Results travel
back to the driver through ``ObjectRef.future()``. Without ``--ray-address`` (and no Ray started in
this process already) a local cluster is started and shut down with the sweep. The results folder
must be on a file system every node sees (masks and artifacts are written there by the workers).
"""
from __future__ import annotations

import concurrent.futures as cf
import logging

from mmbench.launchers.base import Completion, Launcher, gpus_for, import_optional, lost_reason
from mmbench.launchers.work import RunOutcome, RunTask, execute_run


class RayLauncher(Launcher):
    """Runs each task as a Ray task; keeps as many in flight as the cluster has CPUs for (or ``jobs``)."""

    def __init__(self, address: str | None, jobs: int, threads: int, retries: int, gpus_per_run: float | None):
        self._ray = import_optional("ray", "--launcher ray")
        self.retries, self.gpus_per_run = retries, gpus_per_run
        self._owns_connection = not self._ray.is_initialized()
        if self._owns_connection:
            local_cpus = None if address or jobs == 1 else jobs * threads  # None: every CPU of this machine
            self._ray.init(address=address, num_cpus=local_cpus, include_dashboard=False,
                           logging_level=logging.WARNING, log_to_driver=False)
        cpus = self._ray.cluster_resources().get("CPU", 1.0)
        self.capacity = jobs if jobs > 1 else max(1, int(cpus // threads))
        self._remote = self._ray.remote(execute_run)
        self._futures: dict[cf.Future, tuple[RunTask, object]] = {}

    def submit(self, tasks: list[RunTask]) -> None:
        for task in tasks:
            ref = self._remote.options(num_cpus=task.threads, num_gpus=gpus_for(task, self.gpus_per_run),
                                       max_retries=self.retries, name=f"mmbench {task.run_id}").remote(task)
            self._futures[ref.future()] = (task, ref)

    def wait(self, timeout_s: float) -> list[Completion]:
        if not self._futures:
            return []
        done, _ = cf.wait(self._futures, timeout=timeout_s, return_when=cf.FIRST_COMPLETED)
        completions = []
        for future in done:
            task, _ = self._futures.pop(future)
            try:
                completions.append(Completion(task, future.result()))
            except self._ray.exceptions.RayTaskError as error:  # the function itself raised past its own handler
                completions.append(Completion(task, RunOutcome(task.run_id, error=str(error))))
            except Exception as error:  # the worker or its node died, on every attempt Ray made
                detail = f"Ray: {type(error).__name__}: {error}"
                completions.append(Completion(task, None, lost_reason(self.retries + 1, detail)))
        return completions

    def cancel(self) -> None:
        for _, ref in self._futures.values():
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # already finished or gone: nothing left to stop
                pass
        self._futures.clear()

    def close(self) -> None:
        if self._owns_connection and self._ray.is_initialized():
            self._ray.shutdown()
