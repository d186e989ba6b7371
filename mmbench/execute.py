"""Execute one run: data and masks, train with validation-only model selection, evaluate, record.

The test split is evaluated once, with the checkpoint the validation monitor selected. Under
``--select test-oracle`` (reproducing papers that chose checkpoints on the test set) the monitor
reads the test masks instead; such results are recorded as such and kept out of default tables.
"""
from __future__ import annotations

import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch

import mmbench
from mmbench.config import (BUDGET_DEFAULTS, apply_overrides, check_values, constructor_params, load_method_config,
                            resolve_config, split_budget)
from mmbench.constants import VALID_MONITOR
from mmbench.data.datamodule import DataInfo, MaskedSplit, MissingModalityDataModule
from mmbench.data.registry import metric_family
from mmbench.data.types import DatasetBundle, SplitData
from mmbench.determinism import configure_determinism
from mmbench.masks import combined_sha256, run_masks
from mmbench.metrics import TrainingMeans, recovery_fidelity, regression_metrics
from mmbench.metrics.cost import PeakMemory, PredictionTimer, parameter_count
from mmbench.metrics.learning import ModalityGradientNorms
from mmbench.missing import MaskSet
from mmbench.sweep import QUICK_PROFILE, RunSpec
from mmbench.registry import get_method_class, variant_of
from mmbench.results.records import MetricRow


class UnsupportedSettingError(ValueError):
    """A method cannot be trained under the requested setting or protocol."""


@dataclass(frozen=True)
class ResolvedRun:
    """What a run is, before any mask is drawn or anything trains: everything its key is made of."""

    spec: RunSpec
    method_class: type
    method_config: dict  # the constructor's resolved arguments
    budget: dict  # max_epochs, early_stop_patience (the runner's, from the method's YAML)
    data_sha256: str

    def key(self) -> dict:
        """The run key: identical keys are the same run (see ``mmbench.results.keys``)."""
        return {**self.spec.key(), "data_sha256": self.data_sha256, "method_config": self.method_config,
                "budget": self.budget, "mmbench_version": mmbench.__version__,
                "method_version": str(self.method_class.method_version)}


@dataclass
class PreparedRun:
    """A resolved run with its data and saved masks: ready to train."""

    resolved: ResolvedRun
    bundle: DatasetBundle
    info: DataInfo
    train_mask: MaskSet | None
    valid_masks: dict[str, MaskSet]
    test_masks: dict[str, MaskSet]

    @property
    def spec(self) -> RunSpec:
        return self.resolved.spec

    @property
    def mask_sha256(self) -> str:
        return combined_sha256([self.train_mask, *self.valid_masks.values(), *self.test_masks.values()])


def resolved_method_config(spec: RunSpec) -> tuple[type, dict, dict]:
    """The method's class, its fully resolved constructor arguments and its training budget.

    Layers, last wins: constructor defaults and the benchmark's budget defaults, the YAML of the
    method (a variant reads its base method's), the class's ``quick_profile`` under ``--profile
    quick``, ``--set key=value`` (every method that takes ``key``), ``--set <base>.key=value``, a
    variant's own switches, ``--set <variant>.key=value``; then ``--max-epochs`` / ``--patience``
    and the quick profile's epoch cap.
    """
    method_class = get_method_class(spec.method)
    variant = variant_of(spec.method)
    base = variant.base if variant else spec.method
    config = load_method_config(base)
    if spec.options.profile == "quick":
        config = {**config, **method_class.quick_profile}
    config = apply_overrides(config, _overrides_for(spec.options.overrides, base, method_class))
    if variant is not None:
        config = {**config, **variant.switches}
        config = apply_overrides(config, _overrides_for(spec.options.overrides, spec.method, None))
    constructor_config, budget = split_budget(config)
    options = spec.options
    if options.max_epochs is not None:
        budget["max_epochs"] = options.max_epochs
    if options.early_stop_patience is not None:
        budget["early_stop_patience"] = options.early_stop_patience
    if options.profile == "quick":
        budget["max_epochs"] = min(budget["max_epochs"], QUICK_PROFILE["max_epochs"])
    source = f"{spec.method} (configs/methods/{base}.yaml and --set)"
    check_values(method_class, budget, source=source)
    resolved = resolve_config(method_class, constructor_config, source=source)
    _check_schedule(resolved, budget, source)
    return method_class, resolved, budget


def _overrides_for(overrides: tuple[str, ...], name: str, method_class: type | None) -> list[str]:
    """The ``--set`` values meant for ``name``: ``name.key=v`` and, with a class, generic ``key=v`` it takes."""
    mine = []
    for override in overrides:
        key = override.split("=", 1)[0].strip()
        if key.startswith(f"{name}."):
            mine.append(override[len(name) + 1:])
        elif method_class is not None and _takes(method_class, key):
            mine.append(override)
    return mine


def _takes(method_class: type, key: str) -> bool:
    return key.split(".")[0] in constructor_params(method_class) or key in BUDGET_DEFAULTS


def _check_schedule(config: dict, budget: dict, source: str) -> None:
    """A plateau LR schedule must get its chance before early stopping ends the run."""
    lr_patience = config.get("lr_patience")
    can_stop_early = budget["early_stop_patience"] < budget["max_epochs"]
    if isinstance(lr_patience, int) and can_stop_early and budget["early_stop_patience"] <= lr_patience:
        raise ValueError(f"{source}: early_stop_patience={budget['early_stop_patience']} must exceed "
                         f"lr_patience={lr_patience}, or the learning rate is never lowered before the run stops")


def check_overrides_apply(specs: list[RunSpec]) -> None:
    """A ``--set`` that no method of the sweep takes is a typo: refuse it instead of ignoring it."""
    for override in specs[0].options.overrides if specs else ():
        key = override.split("=", 1)[0].strip()
        takers = [p.method for p in specs if key.startswith(f"{p.method}.") or _takes(get_method_class(p.method), key)
                  or (variant_of(p.method) is not None and key.startswith(f"{variant_of(p.method).base}."))]
        if not takers:
            raise ValueError(f"--set {override!r}: no method of this sweep ({', '.join(sorted({p.method for p in specs}))})"
                             f" has the key {key!r}; see configs/methods/<name>.yaml for the keys")


def check_supported(spec: RunSpec) -> None:
    """Refuse a training setting the method cannot be trained under, naming what it supports."""
    supported = get_method_class(spec.method).supported_train_settings
    if spec.train_setting not in supported:
        raise UnsupportedSettingError(
            f"method {spec.method!r} does not support the training setting {spec.train_setting!r} "
            f"({spec.protocol} protocol; it supports: {', '.join(supported)}); pick one with --train-setting")


def check_protocol_applies(protocol: str, bundle: DatasetBundle) -> None:
    """``frame`` drops time steps: it has nothing to drop in a dataset with one-step modalities."""
    if protocol == "frame" and min(bundle.seq_lens().values()) == 1:
        raise UnsupportedSettingError(
            f"the frame protocol drops time steps, but {bundle.name!r} has one-step modalities "
            f"(seq lens {bundle.seq_lens()}); use --protocol fixed or random for it")


def resolve(spec: RunSpec, bundle: DatasetBundle) -> ResolvedRun:
    """Check the run can be done and resolve what it is; cheap, draws no mask, trains nothing."""
    check_supported(spec)
    check_protocol_applies(spec.protocol, bundle)
    method_class, method_config, budget = resolved_method_config(spec)
    return ResolvedRun(spec, method_class, method_config, budget, bundle.source_sha256)


def prepare(resolved: ResolvedRun, bundle: DatasetBundle, info: DataInfo, masks_dir: Path) -> PreparedRun:
    """Load (or draw once and save) the run's masks and give the method the data facts of its setting."""
    spec = resolved.spec
    train_mask, valid, test = run_masks(masks_dir, spec.dataset, bundle.splits, spec.protocol, spec.condition,
                                        spec.seed, spec.train_setting, spec.test_conditions)
    info = info.for_run(bundle.splits["train"], spec.train_setting, train_mask)
    return PreparedRun(resolved, bundle, info, train_mask, valid, test)


def make_logger(kind: str, run_dir: Path, group: str):
    if kind == "csv":
        return L.pytorch.loggers.CSVLogger(save_dir=run_dir, name="logs")
    if kind == "tensorboard":
        return L.pytorch.loggers.TensorBoardLogger(save_dir=run_dir, name="logs")
    if kind == "wandb":
        if not os.environ.get("WANDB_API_KEY"):
            os.environ.setdefault("WANDB_MODE", "offline")  # no account: log locally, sync later
        return L.pytorch.loggers.WandbLogger(save_dir=str(run_dir), group=group, name=run_dir.name)
    raise ValueError(f"unknown logger {kind!r}; choose csv, tensorboard or wandb")


def train_and_evaluate(prepared: PreparedRun, run_dir: Path, group: str) -> tuple[list[MetricRow], int]:
    """Fit with validation-only selection, then evaluate the selected model on every condition."""
    spec, options = prepared.spec, prepared.spec.options
    configure_determinism(spec.seed, options.accelerator)
    selection_split = "test" if spec.selection == "test-oracle" else "valid"
    selection_masks = prepared.test_masks if selection_split == "test" else prepared.valid_masks
    resolved = prepared.resolved
    # Every method but one with nothing to configure (``mean``) lists batch_size in its resolved config.
    batch_size = int(resolved.method_config.get("batch_size", resolved.method_class.fit_defaults.batch_size))
    datamodule = MissingModalityDataModule(
        prepared.bundle, train_mask=prepared.train_mask, valid_masks=selection_masks,
        test_masks=prepared.test_masks, train_setting=spec.train_setting, batch_size=batch_size, seed=spec.seed,
        selection_split=selection_split)
    model = resolved.method_class(data=prepared.info, **resolved.method_config)
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best",
                                                     monitor=VALID_MONITOR, mode="min", save_top_k=1)
    gradient_norms = ModalityGradientNorms()
    trainer = L.Trainer(
        max_epochs=resolved.budget["max_epochs"], accelerator=options.accelerator, devices=options.devices,
        logger=make_logger(options.logger, run_dir, group), deterministic="warn",
        callbacks=[checkpoint, L.pytorch.callbacks.EarlyStopping(VALID_MONITOR,
                                                                 patience=resolved.budget["early_stop_patience"]),
                   L.pytorch.callbacks.LearningRateMonitor(logging_interval="epoch"), gradient_norms],
        enable_progress_bar=sys.stderr.isatty(), enable_model_summary=False, num_sanity_val_steps=0,
        log_every_n_steps=1)
    peak_memory = PeakMemory(trainer.strategy.root_device)
    peak_memory.reset()
    started = time.perf_counter()
    if model.trainable:
        trainer.fit(model, datamodule=datamodule)
        if checkpoint.best_model_path:
            state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
            model.load_state_dict(state["state_dict"])
    train_s = time.perf_counter() - started if model.trainable else 0.0
    rows, predictions = evaluate(trainer, model, datamodule, prepared)
    # One value per run, repeated beside each tested condition so every table can show it.
    per_run = {"train_s": train_s, "params": float(parameter_count(model)), "peak_mem_mb": peak_memory.read_mb()}
    if not math.isnan(gradient_norms.index):
        per_run["mli"] = gradient_norms.index
    rows += [MetricRow("test", row.condition, name, value, row.achieved_rate, row.mask_sha256)
             for row in rows if row.split == "test" and row.metric == "infer_ms" for name, value in per_run.items()]
    pd.DataFrame(predictions).to_csv(run_dir / "predictions.csv.gz", index=False)
    if not options.keep_checkpoints:
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return rows, len(prepared.bundle.splits["test"])


def evaluate(trainer: L.Trainer, model, datamodule: MissingModalityDataModule,
             prepared: PreparedRun) -> tuple[list[MetricRow], list[dict]]:
    """Metrics and per-sample predictions of the selected model, on valid and test, per condition.

    Every (split, condition) goes through one ``trainer.predict`` call, one dataloader each: the model
    moves to its device (and a method rebuilds its indexes in ``on_predict_start``) once per run, not
    once per condition.
    """
    rows: list[MetricRow] = []
    predictions: list[dict] = []
    train = prepared.bundle.splits["train"]
    train_means = TrainingMeans(train.features, train.lengths)  # one pass per run, not per condition
    family = metric_family(prepared.spec.dataset)
    passes = [(split, condition, mask) for split, masks in (("valid", prepared.valid_masks),
                                                            ("test", prepared.test_masks))
              for condition, mask in masks.items()]
    loaders = [datamodule.loader_for(MaskedSplit(prepared.bundle.splits[split], mask)) for split, _, mask in passes]
    timer = PredictionTimer(len(loaders))
    trainer.callbacks.append(timer)
    try:
        per_loader = trainer.predict(model, dataloaders=loaders)
    finally:
        trainer.callbacks.remove(timer)
    if len(loaders) == 1:  # Lightning returns a flat list for a single dataloader
        per_loader = [per_loader]
    for (split, condition, mask), outputs, elapsed_s in zip(passes, per_loader, timer.seconds):
        preds = torch.cat([o["pred"] for o in outputs])
        labels = torch.cat([o["label"] for o in outputs])
        ids = [i for o in outputs for i in o["id"]]
        values = regression_metrics(preds, labels, family)
        if "recovered" in outputs[0]:
            values.update(_fidelity(outputs, ids, prepared.bundle.splits[split], train_means, mask))
        if split == "test":  # what one prediction costs; the run's other costs are added per condition
            values["infer_ms"] = 1000.0 * elapsed_s / max(1, len(ids))
        mask_sha256 = mask.sha256()
        rows += [MetricRow(split, condition, name, float(value), mask.achieved_rate, mask_sha256,
                           achieved_rates=getattr(mask, "achieved_rates", None))
                 for name, value in values.items()]
        predictions += [{"split": split, "condition": condition, "id": i, "label": y, "pred": p}
                        for i, y, p in zip(ids, labels.tolist(), preds.tolist())]
    return rows, predictions


def _fidelity(outputs: list[dict], ids: list[str], split: SplitData, train_means: TrainingMeans,
              mask: MaskSet) -> dict[str, float]:
    """Reconstruction fidelity of what a method recovered, against the true features only the runner holds.

    A method returns ``recovered`` (modality letter -> (B, T, D) input-space features, or (B, D)
    utterance-level ones) with its prediction (``MMBenchMethod.predict``); it never sees the truth.
    """
    rows = split.subset(np.array(_positions(split, ids)))
    missing = torch.from_numpy(~mask.available[mask.rows(ids)])
    recovered = {m: torch.cat([o["recovered"][m].detach().float().cpu() for o in outputs])
                 for m in outputs[0]["recovered"]}
    return recovery_fidelity(recovered, rows.features, rows.lengths, missing, train_means)


def _positions(split: SplitData, ids: list[str]) -> list[int]:
    where = {sample_id: i for i, sample_id in enumerate(split.ids.tolist())}
    return [where[i] for i in ids]


def limit_bundle(bundle: DatasetBundle, limit: float | None) -> DatasetBundle:
    """A deterministic subset of each split (count >= 1 or fraction < 1), the same for every method."""
    if limit is None:
        return bundle
    splits = {}
    for name, split in bundle.splits.items():
        n = len(split)
        keep = min(n, int(limit) if limit >= 1 else max(1, int(round(limit * n))))
        index = np.sort(np.random.default_rng(0).permutation(n)[:keep])
        splits[name] = split.subset(index)
    return replace(bundle, splits=splits)  # keeps provenance, hashes and the data's quality findings
