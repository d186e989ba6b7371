"""Run a sweep: resolve and check every run, skip finished ones, execute the rest, record every outcome.

Resumable: a run whose key (:mod:`mmbench.results.keys`: resolved config, data hash, code versions,
seed) is already finished in the store is not run again, so an interrupted sweep continues where it
stopped; a run finished by an older version is re-run. A run is claimed in the store before it
trains, so two sweeps started at once never train the same run twice. A run that raises is recorded
as failed with its traceback and the sweep goes on. Each run is saved in one transaction, so Ctrl-C
(or a kill) leaves the store consistent: the run is marked ``interrupted`` (by the next sweep, after
a kill) and its partial artifacts are removed.
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
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

import mmbench
from mmbench.data.datamodule import DataInfo
from mmbench.data.loading import check_available, load_dataset
from mmbench.data.types import DatasetBundle
from mmbench.execute import ResolvedRun, check_overrides_apply, limit_bundle, prepare, resolve, train_and_evaluate
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
                            "budget": resolved.budget, "config_id": config_id(key), "status": status})
        return entries

    def run(self) -> SweepSummary:
        runs = self.resolve()
        reaped = self.store.reap_abandoned()
        if reaped:
            log.warning("%d run(s) left by a killed process marked interrupted: %s", len(reaped), ", ".join(reaped))
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
        key = resolved.key()
        digest = key_hash(key)
        run_id = f"{digest[:12]}-{uuid.uuid4().hex[:6]}"
        claim = self.store.claim(digest, run_id)
        if claim != "claimed":
            return "skipped" if claim == "finished" else "held"
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
        self._close(record, clock, "finished", None)
        return "finished"

    def _close(self, record: RunRecord, clock: float, status: str, error: str | None) -> None:
        record.status, record.error = status, error
        record.ended_at, record.duration_s = _now(), time.monotonic() - clock
        self.store.save(record)

    def _record(self, resolved: ResolvedRun, key: dict, digest: str, run_id: str, started: str) -> RunRecord:
        spec = resolved.spec
        bundle = self.bundle(spec.dataset)
        device = "cuda" if torch.cuda.is_available() and self.options.accelerator in ("auto", "gpu", "cuda") \
            else "cpu"
        return RunRecord(
            run_id=run_id, config_hash=digest, dataset=spec.dataset, data_sha256=bundle.source_sha256,
            method=spec.method, protocol=spec.protocol, condition=spec.condition, train_setting=spec.train_setting,
            selection=spec.selection, seed=spec.seed, mask_sha256="", status="running",
            started_at=started, synthetic=bundle.is_synthetic, package_version=mmbench.__version__,
            git_commit=self._commit, config=key, device=device, config_id=config_id(key),
            data_quality=dict(getattr(bundle, "quality", {}) or {}),
            artifacts_dir=str(Path(self.options.results_dir) / "runs" / run_id))


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
