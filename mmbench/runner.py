"""Run a sweep: expand it, skip finished runs, execute the rest, record every outcome.

Resumable: a run whose key (its resolved config, data and mask hashes) is already finished in the
store is not run again, so an interrupted sweep continues where it stopped. A run that raises is
recorded as failed with its traceback and the sweep goes on. Each run is saved in one transaction,
so Ctrl-C leaves the store consistent (the interrupted run is marked ``interrupted``).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

import mmbench
from mmbench.config import config_hash
from mmbench.data.loading import check_available, load_dataset
from mmbench.data.registry import get_spec
from mmbench.data.types import DatasetBundle
from mmbench.data.datamodule import DataInfo
from mmbench.execute import (PreparedRun, check_overrides_apply, check_protocol_applies, check_supported,
                             limit_bundle, prepare, train_and_evaluate)
from mmbench.plan import RunPlan, SweepOptions, expand
from mmbench.results import ResultStore, RunRecord

log = logging.getLogger(__name__)


@dataclass
class SweepSummary:
    finished: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
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

    def run(self) -> SweepSummary:
        # Fail before any training when a dataset's files are absent.
        for dataset in self.options.datasets:
            check_available(dataset, data_dir=self.options.data_dir, variant=self.options.data_variant)
        plans = expand(self.options)
        check_overrides_apply(plans)  # a typo or an impossible combination stops the sweep before training
        for plan in plans:
            check_supported(plan)
        for dataset in self.options.datasets:
            for protocol in self.options.protocols:
                check_protocol_applies(protocol, self.bundle(dataset))
        summary = SweepSummary()
        with tqdm(plans, desc="mmbench sweep", unit="run", disable=None) as progress:
            for plan in progress:
                progress.set_postfix_str(plan.label)
                outcome = self.run_one(plan)
                getattr(summary, outcome).append(plan.label)
        return summary

    def run_one(self, plan: RunPlan) -> str:
        """Run ``plan`` unless finished already; return "finished", "skipped" or "failed"."""
        started, clock = _now(), time.monotonic()
        record = None
        try:
            prepared = prepare(plan, self.bundle(plan.dataset), self.data_info(plan.dataset), self.masks_dir)
            key_hash = config_hash(prepared.key())
            if self.store.is_finished(key_hash):
                return "skipped"
            record = self._record(prepared, key_hash, started)
            run_dir = Path(record.artifacts_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "config.json").write_text(json.dumps(prepared.key(), indent=2, sort_keys=True, default=str))
            record.metrics, record.n_test = train_and_evaluate(prepared, run_dir, self.group)
            record.status = "finished"
        except KeyboardInterrupt:
            if record is not None:
                self._close(record, clock, "interrupted", "interrupted by the user (Ctrl-C)")
            raise
        except Exception:  # a failing run must not stop the sweep
            error = traceback.format_exc()
            log.error("run failed: %s\n%s", plan.label, error)
            if record is None:
                record = self._failed_before_start(plan, started)
            self._close(record, clock, "failed", error)
            return "failed"
        self._close(record, clock, "finished", None)
        return "finished"

    def _close(self, record: RunRecord, clock: float, status: str, error: str | None) -> None:
        record.status, record.error = status, error
        record.ended_at, record.duration_s = _now(), time.monotonic() - clock
        self.store.save(record)

    def _record(self, prepared: PreparedRun, key_hash: str, started: str) -> RunRecord:
        plan = prepared.plan
        run_id = f"{key_hash[:12]}-{uuid.uuid4().hex[:6]}"
        device = "cuda" if torch.cuda.is_available() and self.options.accelerator in ("auto", "gpu", "cuda") \
            else "cpu"
        return RunRecord(
            run_id=run_id, config_hash=key_hash, dataset=plan.dataset, data_sha256=prepared.bundle.source_sha256,
            method=plan.method, protocol=plan.protocol, condition=plan.condition, train_setting=plan.train_setting,
            selection=plan.selection, seed=plan.seed, mask_sha256=prepared.mask_sha256, status="running",
            started_at=started, synthetic=prepared.bundle.is_synthetic, package_version=mmbench.__version__,
            git_commit=self._commit, config=prepared.key(), device=device,
            artifacts_dir=str(Path(self.options.results_dir) / "runs" / run_id))

    def _failed_before_start(self, plan: RunPlan, started: str) -> RunRecord:
        """A run that failed while preparing (bad config, unsupported setting) is recorded too."""
        key = plan.key()
        run_id = f"{config_hash(key)[:12]}-{uuid.uuid4().hex[:6]}"
        return RunRecord(
            run_id=run_id, config_hash=config_hash(key), dataset=plan.dataset, data_sha256="", method=plan.method,
            protocol=plan.protocol, condition=plan.condition, train_setting=plan.train_setting,
            selection=plan.selection, seed=plan.seed, mask_sha256="", status="failed", started_at=started,
            synthetic=get_spec(plan.dataset).provenance != "real", package_version=mmbench.__version__,
            git_commit=self._commit, config=key)
