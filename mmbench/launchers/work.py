"""One run inside a worker process: load the data (once per process), prepare, train, evaluate.

What a launcher sends a worker (:class:`RunTask`) and what comes back (:class:`RunOutcome`) are plain
picklable values, and :func:`execute_run` is a top-level function, so the same work runs in a local
process pool, as a Ray task or as a SLURM job. A worker never opens the results store: the driver
(:class:`mmbench.runner.Runner`) claimed the run and saved its ``running`` row before sending it, and
writes what comes back itself, so no worker on another process or machine can leave the store half
written.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import signal
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from mmbench.data.datamodule import DataInfo
from mmbench.data.loading import load_dataset
from mmbench.data.types import DatasetBundle
from mmbench.determinism import uses_cuda
from mmbench.execute import ResolvedRun, limit_bundle, prepare, train_and_evaluate
from mmbench.results.records import MetricRow

#: The worker's log inside its run folder: interleaved progress bars of N workers would bury the sweep's.
WORKER_LOG = "worker.log"


@dataclass(frozen=True)
class DataSource:
    """How a worker loads a dataset exactly as the driver did (``Runner.bundle``)."""

    data_dir: Path | None
    data_variant: str | None
    synth_size: str
    limit: float | None


@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs for one run; paths are absolute (a job may start in another folder)."""

    run_id: str
    label: str
    resolved: ResolvedRun
    key: dict  # the run key, written beside the artifacts as config.json
    data: DataSource
    masks_dir: Path
    run_dir: Path
    group: str  # the sweep's name (the wandb logger groups runs by it)
    threads: int  # torch / faiss threads of this run (MMBENCH_THREADS inside the worker)


@dataclass
class RunOutcome:
    """What a worker returns: the run's numbers, or the traceback of the exception it raised."""

    run_id: str
    metrics: list[MetricRow] = field(default_factory=list)
    n_test: int = 0
    mask_sha256: str = ""
    device: str = ""
    error: str | None = None
    started_at: str = ""
    duration_s: float = 0.0


#: (dataset, data source) -> the bundle and its statistics: loaded once per worker process.
_LOADED: dict[tuple, tuple[DatasetBundle, DataInfo]] = {}


def load_data(dataset: str, source: DataSource) -> tuple[DatasetBundle, DataInfo]:
    """The limited bundle and its data facts, as the sequential runner computes them, cached per process."""
    cache_key = (dataset, source)
    if cache_key not in _LOADED:
        loaded = load_dataset(dataset, data_dir=source.data_dir, variant=source.data_variant,
                              synth_size=source.synth_size)
        bundle = limit_bundle(loaded, source.limit)
        _LOADED[cache_key] = bundle, DataInfo.from_bundle(bundle)
    return _LOADED[cache_key]


def init_worker(threads: int) -> None:
    """Set up a pool worker: its thread budget, quiet library banners, Ctrl-C left to the driver.

    The driver alone decides what an interrupt means (it stops the workers and records their runs
    interrupted); a worker that died of the terminal's SIGINT on its own would look lost instead.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["MMBENCH_THREADS"] = str(threads)
    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)


def execute_run(task: RunTask) -> RunOutcome:
    """Prepare and train ``task``'s run; an exception it raises comes back as a traceback, not raised."""
    # before train_and_evaluate configures determinism, which reads it (Ray and SLURM skip init_worker)
    os.environ["MMBENCH_THREADS"] = str(task.threads)
    started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    clock = time.monotonic()
    outcome = RunOutcome(task.run_id, started_at=started_at)
    task.run_dir.mkdir(parents=True, exist_ok=True)
    with open(task.run_dir / WORKER_LOG, "a") as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        try:
            _train(task, outcome)
        except Exception:  # a failing run is recorded as failed by the driver; the worker goes on
            outcome.error = traceback.format_exc()
            print(outcome.error, file=log)
    outcome.duration_s = time.monotonic() - clock
    return outcome


def _train(task: RunTask, outcome: RunOutcome) -> None:
    spec = task.resolved.spec
    bundle, info = load_data(spec.dataset, task.data)
    prepared = prepare(task.resolved, bundle, info, task.masks_dir)
    outcome.mask_sha256 = prepared.mask_sha256
    (task.run_dir / "config.json").write_text(json.dumps(task.key, indent=2, sort_keys=True, default=str))
    outcome.metrics, outcome.n_test = train_and_evaluate(prepared, task.run_dir, task.group)
    outcome.device = "cuda" if uses_cuda(spec.options.accelerator) else "cpu"  # the worker's, not the driver's
