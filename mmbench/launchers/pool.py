"""``--jobs N`` on this machine: a pool of N worker processes, each with its share of the threads.

Workers are started with ``spawn`` (a forked copy of a driver that already ran torch is not safe)
and keep their loaded datasets between runs. A worker that dies (SIGKILL, the out-of-memory killer)
breaks a :class:`~concurrent.futures.ProcessPoolExecutor` and every run in it with it: the pool is
recreated and the runs it held are resubmitted. The pool cannot tell which run killed the worker, so
a lost run's last attempt runs alone (a run lost beside others gets such an attempt even with
``--retries 0``): a run is recorded failed only for a death of its own.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import shutil
import traceback
from collections import deque
from concurrent.futures.process import BrokenProcessPool

from mmbench.launchers.base import Completion, Launcher, lost_reason
from mmbench.launchers.work import RunOutcome, RunTask, execute_run, init_worker


class LocalPoolLauncher(Launcher):
    """``jobs`` spawned worker processes with ``threads`` threads each; a lost run is tried ``retries`` more times."""

    def __init__(self, jobs: int, threads: int, retries: int):
        self.capacity, self.threads, self.retries = jobs, threads, retries
        self._executor: cf.ProcessPoolExecutor | None = None
        self._running: dict[cf.Future, RunTask] = {}
        self._waiting: deque[RunTask] = deque()  # handed over by the driver, not yet in the pool
        self._losses: dict[str, int] = {}  # run id -> times lost with its worker
        self._alone: str | None = None  # the run id now running by itself (its last attempt)

    def submit(self, tasks: list[RunTask]) -> None:
        self._waiting.extend(tasks)
        self._dispatch()

    def wait(self, timeout_s: float) -> list[Completion]:
        self._dispatch()
        if not self._running:
            return []
        done, _ = cf.wait(self._running, timeout=timeout_s, return_when=cf.FIRST_COMPLETED)
        completions, lost = [], []
        for future in done:
            self._collect(future, completions, lost)
        if lost:  # the pool is broken: everything in it ended or is lost now
            self._executor.shutdown(wait=True)  # its manager thread has resolved every future when this returns
            self._executor, self._alone = None, None
            for future in list(self._running):
                if future.done():
                    self._collect(future, completions, lost)
                else:  # cannot happen after shutdown; never keep a future of a dead pool
                    lost.append(self._running.pop(future))
            completions += self._retry_or_give_up(lost)
        self._dispatch()
        return completions

    def cancel(self) -> None:
        self._waiting.clear()
        if self._executor is not None:
            self._stop_workers()
        self._running.clear()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    # -- inside ---------------------------------------------------------------------------------
    def _pool(self) -> cf.ProcessPoolExecutor:
        if self._executor is None:
            self._executor = cf.ProcessPoolExecutor(max_workers=self.capacity,
                                                    mp_context=multiprocessing.get_context("spawn"),
                                                    initializer=init_worker, initargs=(self.threads,))
        return self._executor

    def _dispatch(self) -> None:
        """Move waiting runs into the pool; a run on its last attempt waits for an empty pool and runs alone."""
        while self._waiting and self._alone is None:
            task = self._waiting[0]
            alone = self._losses.get(task.run_id, 0) >= max(1, self.retries)  # its verdict: nothing else runs
            if alone and self._running:
                return
            try:
                future = self._pool().submit(execute_run, task)
            except BrokenProcessPool:  # broke since the last wait: that wait collects the lost runs first
                return
            self._waiting.popleft()
            self._running[future] = task
            if alone:
                self._alone = task.run_id

    def _collect(self, future: cf.Future, completions: list[Completion], lost: list[RunTask]) -> None:
        """Sort an ended future into a completion or a run lost with its worker."""
        task = self._running.pop(future)
        if self._alone == task.run_id:
            self._alone = None
        try:
            completions.append(Completion(task, future.result()))
        except BrokenProcessPool:
            lost.append(task)
        except Exception:  # the task or its outcome could not travel (pickling): a failure of the run
            completions.append(Completion(task, RunOutcome(task.run_id, error=traceback.format_exc())))

    def _retry_or_give_up(self, lost: list[RunTask]) -> list[Completion]:
        """Requeue lost runs; give one up only past its retries and when it was the only run lost."""
        given_up = []
        for task in lost:
            losses = self._losses[task.run_id] = self._losses.get(task.run_id, 0) + 1
            if losses > self.retries and len(lost) == 1:  # the only run in the pool: its own death
                given_up.append(Completion(task, None, lost_reason(losses, "")))
            else:
                shutil.rmtree(task.run_dir, ignore_errors=True)  # the next attempt starts clean
                self._waiting.appendleft(task)
        return given_up

    def _stop_workers(self) -> None:
        """Stop running workers now (shutdown alone would wait for their runs to end)."""
        executor, self._executor = self._executor, None
        terminate = getattr(executor, "terminate_workers", None)  # Python >= 3.14
        # before 3.14 the pool has no public way to stop a busy worker; its process table is the only handle
        processes = [] if terminate else list(getattr(executor, "_processes", {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        if terminate:
            terminate()
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=30)
