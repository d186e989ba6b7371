"""What every launcher offers the driver: take runs, say which ended, stop on Ctrl-C.

A launcher only moves :class:`~mmbench.launchers.work.RunTask` values to workers and
:class:`~mmbench.launchers.work.RunOutcome` values back; it never touches the store. A run whose
worker died (killed, out of memory, a lost node) is tried again by the launcher, up to the sweep's
``--retries``, and only then reported, as a :class:`Completion` without an outcome.
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

from mmbench.determinism import thread_budget
from mmbench.launchers.work import RunOutcome, RunTask


@dataclass
class Completion:
    """A run that ended: its outcome, or why it was lost with its worker on every attempt."""

    task: RunTask
    outcome: RunOutcome | None
    lost_reason: str | None = None


class Launcher(ABC):
    """Runs tasks somewhere else; the driver keeps at most :attr:`capacity` of them in flight."""

    capacity: int = 1

    @abstractmethod
    def submit(self, tasks: list[RunTask]) -> None:
        """Start ``tasks`` (several at once may go as one array job)."""

    @abstractmethod
    def wait(self, timeout_s: float) -> list[Completion]:
        """The runs that ended since the last call, waiting up to ``timeout_s`` for the first one."""

    @abstractmethod
    def cancel(self) -> None:
        """Ctrl-C: drop what has not started and stop what runs; nothing of theirs comes back."""

    def close(self) -> None:
        """Release the workers (after the last run, or after :meth:`cancel`)."""

    def __enter__(self) -> "Launcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def threads_per_run(jobs: int, total: int | None = None) -> int:
    """The budget (``total``, default ``MMBENCH_THREADS``, see ``determinism.thread_budget``) split across
    ``jobs`` runs at once, at least one thread each.

    Example:
        >>> threads_per_run(2, total=4), threads_per_run(3, total=4), threads_per_run(8, total=4)
        (2, 1, 1)
    """
    return max(1, (thread_budget() if total is None else total) // max(1, jobs))


def gpus_for(task: RunTask, flag: float | None) -> float:
    """GPUs a run declares: ``--gpus-per-run`` if given, else its method's ``gpus_per_run`` (default 0)."""
    if flag is not None:
        return float(flag)
    return float(getattr(task.resolved.method_class, "gpus_per_run", 0) or 0)


def import_optional(module: str, needed_by: str):
    """Import an optional engine, or say in one line how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(f'{needed_by} needs the optional {module}: pip install -e ".[distributed]"') from None


def lost_reason(attempts: int, detail: str) -> str:
    """The error recorded for a run whose worker died on each of its ``attempts``."""
    return (f"lost {attempts} time(s): the worker process running it died (killed, out of memory or a lost "
            f"node; see the system log, e.g. dmesg, for an out-of-memory kill) and --retries were exhausted. "
            f"{detail}").strip()
