"""Run a sweep: resolve and check every run, skip finished ones, execute the rest, record every outcome.

Resumable: a run whose key (:mod:`mmbench.results.keys`: resolved config, data hash, code versions,
seed) is already finished in the store is not run again, so an interrupted sweep continues where it
stopped; a run finished by an older version is re-run. A run is claimed in the store before it
trains, so two sweeps started at once never train the same run twice. A run that raises is recorded
as failed with its traceback and the sweep goes on. Each run is saved in one transaction, so Ctrl-C
(or a kill) leaves the store consistent: the run is marked ``interrupted`` (by the next sweep, after
a kill) and its partial artifacts are removed.

With ``--jobs N`` or ``--launcher ray|slurm`` the same guarantees hold: this process (the driver)
still claims each run and saves its ``running`` row before a worker trains it
(:mod:`mmbench.launchers`), and alone writes what comes back. Ctrl-C cancels what has not started,
stops what runs, marks those runs ``interrupted`` and removes their folders.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import subprocess
import threading
import time
import traceback
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

import mmbench
from mmbench.faiss_index import faiss_index_kind
from mmbench.data.datamodule import DataInfo
from mmbench.data.loading import check_available, load_dataset
from mmbench.data.types import DatasetBundle
from mmbench.execute import ResolvedRun, check_overrides_apply, limit_bundle, prepare, resolve, train_and_evaluate
from mmbench.launchers import (Completion, DataSource, Launcher, RunTask, check_launch_options, is_sequential,
                               make_launcher, threads_per_run)
from mmbench.sweep import SweepOptions, expand
from mmbench.results import ResultStore, RunRecord
from mmbench.results.keys import config_id, key_hash, slot_id

log = logging.getLogger(__name__)


@dataclass
class SweepSummary:
    finished: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # another live process was training them
    failed: list[str] = field(default_factory=list)


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Runner:
    """Executes a sweep into one results directory."""

    def __init__(self, options: SweepOptions):
        self.options = options.with_profile()
        self.store = ResultStore(self.options.results_dir)
        self.masks_dir = Path(self.options.results_dir) / "masks"
        self.group = f"sweep-{dt.datetime.now():%Y%m%d-%H%M%S}"
        self._bundles: dict[str, DatasetBundle] = {}
        self._infos: dict[str, DataInfo] = {}
        self._commit = git_commit()

    def bundle(self, dataset: str) -> DatasetBundle:
        if dataset not in self._bundles:
            loaded = load_dataset(dataset, data_dir=self.options.data_dir, variant=self.options.data_variant,
                                  synth_size=self.options.synth_size)
            self._bundles[dataset] = limit_bundle(loaded, self.options.limit)
        return self._bundles[dataset]

    def data_info(self, dataset: str) -> DataInfo:
        """Computed once per dataset: its training statistics take a pass over the training split."""
        if dataset not in self._infos:
            self._infos[dataset] = DataInfo.from_bundle(self.bundle(dataset))
        return self._infos[dataset]

    def resolve(self) -> list[ResolvedRun]:
        """Every run of the sweep, resolved and checked before anything trains.

        A dataset whose files are absent, a typo in ``--set``, a value outside its type or range, an
        unsupported setting or protocol: each stops the sweep here with one message, and nothing is
        stored.
        """
        for dataset in self.options.datasets:
            check_available(dataset, data_dir=self.options.data_dir, variant=self.options.data_variant)
        specs = expand(self.options)
        check_overrides_apply(specs)
        return [resolve(spec, self.bundle(spec.dataset)) for spec in specs]

    def dry_run(self) -> list[dict]:
        """What ``run`` would do, one entry per run, with its status in the store; trains nothing."""
        finished = self.store.finished_keys()
        finished_slots = {slot_id(key) for key in finished.values()}
        entries = []
        for resolved in self.resolve():
            key, spec = resolved.key(), resolved.spec
            status = ("finished" if key_hash(key) in finished else
                      "stale" if slot_id(key) in finished_slots else "new")
            entries.append({"dataset": spec.dataset, "method": spec.method, "protocol": spec.protocol,
                            "condition": spec.condition, "seed": spec.seed, "train_setting": spec.train_setting,
                            "selection": spec.selection, "config": resolved.method_config,
                            "budget": resolved.budget, "config_id": config_id(key), "status": status,
                            **({"test_conditions": list(spec.test_conditions)} if spec.test_conditions else {})})
        return entries

    def run(self) -> SweepSummary:
        check_launch_options(self.options)
        runs = self.resolve()
        reaped = self.store.reap_abandoned()
        if reaped:
            log.warning("%d run(s) left by a killed process marked interrupted: %s", len(reaped), ", ".join(reaped))
        if not is_sequential(self.options):
            return self._run_launched(runs)
        summary = SweepSummary()
        with _Heartbeat(self.store), tqdm(runs, desc="mmbench sweep", unit="run", disable=None) as progress:
            for resolved in progress:
                progress.set_postfix_str(resolved.spec.label)
                outcome = self.run_one(resolved)
                getattr(summary, outcome).append(resolved.spec.label)
        return summary

    def run_one(self, resolved: ResolvedRun) -> str:
        """Run ``resolved`` unless finished already or held by another live process.

        Returns "finished", "skipped", "held" or "failed".
        """
        started, clock = _now(), time.monotonic()
        claimed = self._claim(resolved)
        if isinstance(claimed, str):
            return claimed
        key, digest, run_id = claimed
        spec = resolved.spec
        record = self._record(resolved, key, digest, run_id, started)
        try:
            self.store.save(record)  # the row exists before its folder: no orphan folder after a kill
            prepared = prepare(resolved, self.bundle(spec.dataset), self.data_info(spec.dataset), self.masks_dir)
            record.mask_sha256 = prepared.mask_sha256
            run_dir = Path(record.artifacts_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "config.json").write_text(json.dumps(key, indent=2, sort_keys=True, default=str))
            record.metrics, record.n_test = train_and_evaluate(prepared, run_dir, self.group)
            self._close(record, clock, "finished", None)  # before the claim goes: no gap for a second trainer
        except KeyboardInterrupt:
            shutil.rmtree(record.artifacts_dir, ignore_errors=True)  # a partial run keeps no artifacts
            record.artifacts_dir = ""
            self._close(record, clock, "interrupted", "interrupted by the user (Ctrl-C)")
            raise
        except Exception:  # a failing run must not stop the sweep
            error = traceback.format_exc()
            log.error("run failed: %s\n%s", spec.label, error)
            self._close(record, clock, "failed", error)
            return "failed"
        finally:
            self.store.release(digest)
        return "finished"

    def _claim(self, resolved: ResolvedRun) -> tuple[dict, str, str] | str:
        """(key, key hash, new run id) once this process holds the run; else "skipped" (finished) or "held"."""
        key = resolved.key()
        digest = key_hash(key)
        run_id = f"{digest[:12]}-{uuid.uuid4().hex[:6]}"
        claim = self.store.claim(digest, run_id)
        if claim != "claimed":
            return "skipped" if claim == "finished" else "held"
        return key, digest, run_id

    def _close(self, record: RunRecord, clock: float, status: str, error: str | None) -> None:
        record.status, record.error = status, error
        record.ended_at, record.duration_s = _now(), time.monotonic() - clock
        self.store.save(record)

    # -- several runs at once: this process claims and records, a launcher's workers train ------------
    def _run_launched(self, runs: list[ResolvedRun]) -> SweepSummary:
        """Keep the launcher's capacity in flight; record each run that comes back as it comes back."""
        summary, queue = SweepSummary(), deque(runs)
        in_flight: dict[str, _InFlight] = {}
        folder = Path(self.options.results_dir) / "slurm" / self.group
        with make_launcher(self.options, folder) as launcher, _Heartbeat(self.store), \
                tqdm(total=len(runs), desc="mmbench sweep", unit="run", disable=None) as progress:
            try:
                while queue or in_flight:
                    self._fill(launcher, queue, in_flight, summary, progress)
                    for completion in launcher.wait(timeout_s=1.0):
                        status = self._record_completion(in_flight[completion.task.run_id], completion)
                        del in_flight[completion.task.run_id]
                        getattr(summary, status).append(completion.task.label)
                        progress.update(1)
                    progress.set_postfix_str(f"done {len(summary.finished)} | running {len(in_flight)} | "
                                             f"failed {len(summary.failed)}")
            except BaseException as error:  # Ctrl-C, or the launcher itself failed: leave the store consistent
                launcher.cancel()
                why = ("interrupted by the user (Ctrl-C)" if isinstance(error, KeyboardInterrupt)
                       else f"the sweep stopped: {type(error).__name__}: {error}")
                for pending in in_flight.values():
                    self._abandon(pending, why)
                raise
        return summary

    def _fill(self, launcher: Launcher, queue: deque, in_flight: dict, summary: SweepSummary, progress) -> None:
        """Claim and open runs until the launcher's capacity is in flight, then submit them together."""
        tasks = []
        while queue and len(in_flight) < launcher.capacity:
            resolved = queue.popleft()
            pending = self._open(resolved)
            if isinstance(pending, str):  # finished already, or held by another live process
                getattr(summary, pending).append(resolved.spec.label)
                progress.total -= 1  # the bar and its ETA count what this sweep trains
                progress.refresh()
                continue
            in_flight[pending.task.run_id] = pending
            tasks.append(pending.task)
        if tasks:
            launcher.submit(tasks)  # several at once: one array job on SLURM

    def _open(self, resolved: ResolvedRun) -> "_InFlight | str":
        """Claim ``resolved`` and save its ``running`` row; "skipped" or "held" when it is not ours to run."""
        claimed = self._claim(resolved)
        if isinstance(claimed, str):
            return claimed
        key, digest, run_id = claimed
        record = self._record(resolved, key, digest, run_id, _now())
        self.store.save(record)  # the row exists before its folder: no orphan folder after a kill
        options = self.options
        task = RunTask(run_id=run_id, label=resolved.spec.label, resolved=resolved, key=key,
                       data=DataSource(_absolute(options.data_dir), options.data_variant, options.synth_size,
                                       options.limit),
                       masks_dir=self.masks_dir.absolute(), run_dir=Path(record.artifacts_dir).absolute(),
                       group=self.group, threads=threads_per_run(options.jobs))
        return _InFlight(task, record, digest, time.monotonic())

    def _record_completion(self, pending: "_InFlight", completion: Completion) -> str:
        """Write what a worker returned (or why it was lost) into the run's row; "finished" or "failed"."""
        record, outcome = pending.record, completion.outcome
        error = completion.lost_reason if outcome is None else outcome.error
        try:
            if error is None:
                record.metrics, record.n_test = outcome.metrics, outcome.n_test
                record.mask_sha256, record.device = outcome.mask_sha256, outcome.device or record.device
            else:
                log.error("run failed: %s\n%s", pending.task.label, error)
            record.status, record.error, record.ended_at = ("failed" if error else "finished"), error, _now()
            record.duration_s = time.monotonic() - pending.clock
            if outcome is not None and outcome.started_at:  # the worker's own clock: queueing is not training
                record.started_at, record.duration_s = outcome.started_at, outcome.duration_s
            self.store.save(record)
        finally:
            self.store.release(pending.digest)
        return record.status

    def _abandon(self, pending: "_InFlight", why: str) -> None:
        """A run stopped before it ended: no artifacts, status ``interrupted``, claim released."""
        record = pending.record
        shutil.rmtree(pending.task.run_dir, ignore_errors=True)
        record.artifacts_dir = ""
        self._close(record, pending.clock, "interrupted", why)
        self.store.release(pending.digest)

    def _record(self, resolved: ResolvedRun, key: dict, digest: str, run_id: str, started: str) -> RunRecord:
        spec = resolved.spec
        bundle = self.bundle(spec.dataset)
        device = "cuda" if torch.cuda.is_available() and self.options.accelerator in ("auto", "gpu", "cuda") \
            else "cpu"
        device = f"{device}; {faiss_index_kind(device)}"  # which nearest-neighbour index a retriever used
        return RunRecord(
            run_id=run_id, config_hash=digest, dataset=spec.dataset, data_sha256=bundle.source_sha256,
            method=spec.method, protocol=spec.protocol, condition=spec.condition, train_setting=spec.train_setting,
            selection=spec.selection, seed=spec.seed, mask_sha256="", status="running",
            started_at=started, synthetic=bundle.is_synthetic, package_version=mmbench.__version__,
            git_commit=self._commit, config=key, device=device, config_id=config_id(key),
            data_quality=dict(getattr(bundle, "quality", {}) or {}),
            artifacts_dir=str(Path(self.options.results_dir) / "runs" / run_id))


@dataclass
class _InFlight:
    """A run claimed and handed to a launcher: its task, its row, and when the driver opened it."""

    task: RunTask
    record: RunRecord
    digest: str
    clock: float


def _absolute(path: Path | None) -> Path | None:
    return None if path is None else Path(path).absolute()


class _Heartbeat:
    """Renews this process's claims in the store while a sweep runs (a dead process's claims expire)."""

    def __init__(self, store: ResultStore, every_s: float = 60.0):
        self.store, self.every_s = store, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="mmbench-claims", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.store.renew_claims()
            except Exception as error:  # a busy store must not kill the sweep; the next beat retries
                log.warning("could not renew run claims: %s", error)

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
