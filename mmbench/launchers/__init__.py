"""Where a sweep's runs train: in this process, in a local pool, on a Ray cluster or through SLURM.

The driver (:class:`mmbench.runner.Runner`) resolves and claims every run and writes every result;
a launcher only carries :class:`RunTask` values to workers and :class:`RunOutcome` values back:

- ``local`` with ``--jobs 1`` (the default): no launcher, the runner trains in its own process;
- ``local`` with ``--jobs N``: :class:`~mmbench.launchers.pool.LocalPoolLauncher`, N worker processes;
- ``ray``: :class:`~mmbench.launchers.ray_cluster.RayLauncher`, one Ray task per run;
- ``slurm``: :class:`~mmbench.launchers.slurm.SubmititLauncher`, array jobs through submitit.

``MMBENCH_THREADS`` (default: up to 4) is the thread budget of the runs that train at once, split
across ``--jobs`` (at least one thread each). Ray and submitit are the optional extra
``distributed`` (``pip install -e ".[distributed]"``) and imported only when chosen.
"""
from __future__ import annotations

from pathlib import Path

from mmbench.launchers.base import Completion, Launcher, threads_per_run
from mmbench.launchers.work import DataSource, RunOutcome, RunTask, execute_run

LAUNCHERS = ("local", "ray", "slurm")

__all__ = ["LAUNCHERS", "Completion", "DataSource", "Launcher", "RunOutcome", "RunTask", "check_launch_options",
           "execute_run", "is_sequential", "make_launcher", "threads_per_run"]


def check_launch_options(options) -> None:
    """Refuse launch options that cannot work, in one line, before anything is claimed or trained."""
    if options.launcher not in LAUNCHERS:
        raise ValueError(f"--launcher {options.launcher!r}: choose from {', '.join(LAUNCHERS)}")
    if options.jobs < 1:
        raise ValueError(f"--jobs {options.jobs}: give at least 1 (runs trained at once)")
    if options.retries < 0:
        raise ValueError(f"--retries {options.retries}: give 0 or more (tries again of a run lost with its worker)")
    if options.gpus_per_run is not None and options.gpus_per_run < 0:
        raise ValueError(f"--gpus-per-run {options.gpus_per_run:g}: give 0 or more (a fraction shares a GPU)")
    if options.slurm_time is not None and options.slurm_time < 1:
        raise ValueError(f"--slurm-time {options.slurm_time}: give the minutes a job may run (at least 1)")
    if options.ray_address and options.launcher != "ray":
        raise ValueError("--ray-address is for --launcher ray")
    if (options.slurm_partition or options.slurm_time) and options.launcher != "slurm":
        raise ValueError("--slurm-partition and --slurm-time are for --launcher slurm")


def is_sequential(options) -> bool:
    """The default: every run in the runner's own process, one after another."""
    return options.launcher == "local" and options.jobs == 1


def make_launcher(options, folder: Path) -> Launcher:
    """The launcher of ``options``; ``folder`` holds what it needs on disk (submitit's job files)."""
    threads = threads_per_run(options.jobs)
    if options.launcher == "ray":
        from mmbench.launchers.ray_cluster import RayLauncher

        return RayLauncher(options.ray_address, options.jobs, threads, options.retries, options.gpus_per_run)
    if options.launcher == "slurm":
        from mmbench.launchers.slurm import SubmititLauncher

        return SubmititLauncher(folder, options.slurm_cluster, options.slurm_partition, options.slurm_time,
                                options.jobs, threads, options.retries, options.gpus_per_run)
    from mmbench.launchers.pool import LocalPoolLauncher

    return LocalPoolLauncher(options.jobs, threads, options.retries)
