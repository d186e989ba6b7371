"""``--launcher slurm``: runs submitted as SLURM array jobs through submitit.

submitit's ``AutoExecutor`` picks SLURM where ``sbatch`` is present and otherwise its local executor,
which runs each job as a subprocess of this machine (``cluster="local"`` forces it, as the tests do).
On SLURM every run is submitted at once, as one array (``--jobs`` caps how many run at a time:
``slurm_array_parallelism``); the local executor has no queue, so the driver keeps ``--jobs`` in
flight. A job that dies (killed, timed out, preempted) is resubmitted up to ``--retries`` times.
Job logs and submitit's pickles are kept under ``<results>/slurm/<sweep>/``. The results folder must
be on a file system the nodes share.
"""
from __future__ import annotations

import shutil
import sys
import time

from mmbench.launchers.base import Completion, Launcher, gpus_for, import_optional, lost_reason
from mmbench.launchers.work import RunTask, execute_run

#: The local executor's own default (2 minutes) would kill any real run.
LOCAL_TIMEOUT_MIN = 24 * 60
#: How often job states are polled (submitit rate-limits its own SLURM queries further).
POLL_S = 0.5


class SubmititLauncher(Launcher):
    """One submitit executor for the sweep; a lost job is resubmitted ``retries`` times."""

    def __init__(self, folder, cluster: str | None, partition: str | None, time_min: int | None, jobs: int,
                 threads: int, retries: int, gpus_per_run: float | None):
        submitit = import_optional("submitit", "--launcher slurm")
        self._executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
        self.on_slurm = self._executor.cluster == "slurm"
        self.retries, self.gpus_per_run = retries, gpus_per_run
        self.capacity = sys.maxsize if self.on_slurm else jobs
        parameters = {"cpus_per_task": threads, "name": "mmbench", "slurm_array_parallelism": jobs}
        if partition:
            parameters["slurm_partition"] = partition
        if time_min or not self.on_slurm:
            parameters["timeout_min"] = time_min or LOCAL_TIMEOUT_MIN
        self._executor.update_parameters(**parameters)
        self._jobs: dict[object, RunTask] = {}
        self._losses: dict[str, int] = {}

    def submit(self, tasks: list[RunTask]) -> None:
        if not tasks:
            return
        gpus = max(gpus_for(task, self.gpus_per_run) for task in tasks)
        if not float(gpus).is_integer():
            raise ValueError(f"--gpus-per-run {gpus:g}: SLURM allocates whole GPUs; use --launcher ray "
                             "or --jobs N to pack several runs on one GPU")
        self._executor.update_parameters(gpus_per_node=int(gpus))
        for task, job in zip(tasks, self._executor.map_array(execute_run, tasks)):  # one array job
            self._jobs[job] = task

    def wait(self, timeout_s: float) -> list[Completion]:
        deadline = time.monotonic() + timeout_s
        done = [job for job in self._jobs if job.done()]
        while self._jobs and not done and time.monotonic() < deadline:
            time.sleep(POLL_S)
            done = [job for job in self._jobs if job.done()]
        completions = []
        for job in done:
            task = self._jobs.pop(job)
            try:
                completions.append(Completion(task, job.result()))
            except Exception as error:  # the job died or timed out; the run's own errors come back as outcomes
                completions += self._retry_or_give_up(task, f"submitit job {job.job_id}: {type(error).__name__}: "
                                                            f"{str(error)[-2000:]}")
        return completions

    def cancel(self) -> None:
        for job in self._jobs:
            job.cancel(check=False)
        self._jobs.clear()

    def _retry_or_give_up(self, task: RunTask, detail: str) -> list[Completion]:
        losses = self._losses[task.run_id] = self._losses.get(task.run_id, 0) + 1
        if losses > self.retries:
            return [Completion(task, None, lost_reason(losses, detail))]
        shutil.rmtree(task.run_dir, ignore_errors=True)  # the next attempt starts clean
        self._jobs[self._executor.submit(execute_run, task)] = task
        return []
