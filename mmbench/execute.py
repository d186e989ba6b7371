"""Execute one run: data and masks, train with validation-only model selection, evaluate, record.

The test split is evaluated once, with the checkpoint the validation monitor selected. Under
``--select test-oracle`` (reproducing papers that chose checkpoints on the test set) the monitor
reads the test masks instead; such results are recorded as such and kept out of default tables.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch

from mmbench.config import apply_overrides, constructor_params, load_method_config, resolve_config
from mmbench.constants import VALID_MONITOR
from mmbench.data.datamodule import DataInfo, MaskedSplit, MissingModalityDataModule
from mmbench.data.types import DatasetBundle, SplitData
from mmbench.layers import masked_mean
from mmbench.masks import combined_sha256, run_masks
from mmbench.metrics import regression_metrics
from mmbench.metrics.reconstruction import reconstruction_metrics
from mmbench.missing import MaskSet
from mmbench.plan import RunPlan
from mmbench.registry import get_method_class
from mmbench.results.records import MetricRow


class UnsupportedSettingError(ValueError):
    """A method cannot be trained under the requested setting or protocol."""


@dataclass
class PreparedRun:
    """A run with everything resolved, before training: what its key is hashed from."""

    plan: RunPlan
    bundle: DatasetBundle
    info: DataInfo
    method_class: type
    method_config: dict
    train_mask: MaskSet | None
    valid_masks: dict[str, MaskSet]
    test_masks: dict[str, MaskSet]

    @property
    def mask_sha256(self) -> str:
        return combined_sha256([self.train_mask, *self.valid_masks.values(), *self.test_masks.values()])

    def key(self) -> dict:
        return {**self.plan.key(), "data_sha256": self.bundle.source_sha256, "method_config": self.method_config,
                "mask_sha256": self.mask_sha256}


def resolved_method_config(plan: RunPlan) -> tuple[type, dict]:
    """The method's class and its fully resolved constructor arguments.

    Layers, last wins: constructor defaults, ``configs/methods/<name>.yaml``, the class's
    ``quick_profile`` under ``--profile quick``, then ``--set`` overrides. ``key=value`` applies to
    every method that takes ``key``; ``<method>.key=value`` to that method only.
    """
    method_class = get_method_class(plan.method)
    config = load_method_config(plan.method)
    if plan.options.profile == "quick":
        config = {**config, **getattr(method_class, "quick_profile", {})}
    params = constructor_params(method_class)
    mine = []
    for override in plan.options.overrides:
        key = override.split("=", 1)[0].strip()
        if key.startswith(f"{plan.method}."):
            mine.append(override[len(plan.method) + 1:])
        elif key.split(".")[0] in params:
            mine.append(override)
    return method_class, resolve_config(method_class, apply_overrides(config, mine))


def check_overrides_apply(plans: list[RunPlan]) -> None:
    """A ``--set`` that no method of the sweep takes is a typo: refuse it instead of ignoring it."""
    for override in plans[0].options.overrides if plans else ():
        key = override.split("=", 1)[0].strip()
        takers = [p.method for p in plans if key.startswith(f"{p.method}.")
                  or key.split(".")[0] in constructor_params(get_method_class(p.method))]
        if not takers:
            raise ValueError(f"--set {override!r}: no method of this sweep ({', '.join(sorted({p.method for p in plans}))})"
                             f" has the key {key!r}; see configs/methods/<name>.yaml for the keys")


def check_supported(plan: RunPlan) -> None:
    """Refuse a training setting the method cannot be trained under, naming what it supports."""
    supported = getattr(get_method_class(plan.method), "supported_train_settings", ())
    if plan.train_setting not in supported:
        raise UnsupportedSettingError(
            f"method {plan.method!r} does not support the training setting {plan.train_setting!r} "
            f"({plan.protocol} protocol; it supports: {', '.join(supported)}); pick one with --train-setting")


def check_protocol_applies(protocol: str, bundle: DatasetBundle) -> None:
    """``frame`` drops time steps: it has nothing to drop in a dataset with one-step modalities."""
    if protocol == "frame" and min(bundle.seq_lens().values()) == 1:
        raise UnsupportedSettingError(
            f"the frame protocol drops time steps, but {bundle.name!r} has one-step modalities "
            f"(seq lens {bundle.seq_lens()}); use --protocol fixed or random for it")


def prepare(plan: RunPlan, bundle: DatasetBundle, info: DataInfo, masks_dir: Path) -> PreparedRun:
    check_supported(plan)
    check_protocol_applies(plan.protocol, bundle)
    method_class, method_config = resolved_method_config(plan)
    train_mask, valid, test = run_masks(masks_dir, plan.dataset, bundle.splits, plan.protocol, plan.condition,
                                        plan.seed, plan.train_setting)
    return PreparedRun(plan, bundle, info, method_class, method_config, train_mask, valid, test)


def configure_determinism(seed: int) -> None:
    """Same machine, same seed, same numbers."""
    L.seed_everything(seed, workers=True, verbose=False)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_num_threads(int(os.environ.get("MMBENCH_THREADS", max(1, min(4, os.cpu_count() or 1)))))


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
    plan, options = prepared.plan, prepared.plan.options
    configure_determinism(plan.seed)
    selection_split = "test" if plan.selection == "test-oracle" else "valid"
    selection_masks = prepared.test_masks if selection_split == "test" else prepared.valid_masks
    batch_size = int(prepared.method_config.get("batch_size", 32))
    datamodule = MissingModalityDataModule(
        prepared.bundle, train_mask=prepared.train_mask, valid_masks=selection_masks,
        test_masks=prepared.test_masks, train_setting=plan.train_setting, batch_size=batch_size, seed=plan.seed,
        selection_split=selection_split)
    model = prepared.method_class(data=prepared.info, **prepared.method_config)
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best",
                                                     monitor=VALID_MONITOR, mode="min", save_top_k=1)
    trainer = L.Trainer(
        max_epochs=options.max_epochs, accelerator=options.accelerator, devices=options.devices,
        logger=make_logger(options.logger, run_dir, group), deterministic="warn",
        callbacks=[checkpoint, L.pytorch.callbacks.EarlyStopping(VALID_MONITOR, patience=options.early_stop_patience)],
        enable_progress_bar=sys.stderr.isatty(), enable_model_summary=False, num_sanity_val_steps=0,
        log_every_n_steps=1)
    if getattr(model, "trainable", True):
        trainer.fit(model, datamodule=datamodule)
        if checkpoint.best_model_path:
            state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
            model.load_state_dict(state["state_dict"])
    rows, predictions = evaluate(trainer, model, datamodule, prepared)
    pd.DataFrame(predictions).to_csv(run_dir / "predictions.csv.gz", index=False)
    if not options.keep_checkpoints:
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return rows, len(prepared.bundle.splits["test"])


def evaluate(trainer: L.Trainer, model, datamodule: MissingModalityDataModule,
             prepared: PreparedRun) -> tuple[list[MetricRow], list[dict]]:
    """Metrics and per-sample predictions of the selected model, on valid and test, per condition."""
    rows: list[MetricRow] = []
    predictions: list[dict] = []
    train_means = TrainingMeans(prepared.bundle.splits["train"])  # one pass per run, not per condition
    for split, masks in (("valid", prepared.valid_masks), ("test", prepared.test_masks)):
        for condition, mask in masks.items():
            loader = datamodule.loader_for(MaskedSplit(prepared.bundle.splits[split], mask))
            outputs = trainer.predict(model, dataloaders=loader)
            preds = torch.cat([o["pred"] for o in outputs])
            labels = torch.cat([o["label"] for o in outputs])
            ids = [i for o in outputs for i in o["id"]]
            values = regression_metrics(preds, labels, prepared.plan.dataset)
            values.update(model.extra_metrics(outputs))
            if "recovered" in outputs[0]:
                values.update(fidelity(outputs, ids, prepared.bundle.splits[split], train_means, mask))
            mask_sha256 = mask.sha256()
            rows += [MetricRow(split, condition, name, float(value), mask.achieved_rate, mask_sha256)
                     for name, value in values.items()]
            predictions += [{"split": split, "condition": condition, "id": i, "label": y, "pred": p}
                            for i, y, p in zip(ids, labels.tolist(), preds.tolist())]
    return rows, predictions


class TrainingMeans:
    """The training split's mean features (the mean-imputation reference), computed once per level."""

    def __init__(self, train: SplitData):
        self.train = train
        self._means: dict[tuple[str, bool], torch.Tensor] = {}

    def get(self, modality: str, utterance_level: bool) -> torch.Tensor:
        """(D,) mean of per-sample time averages, or (T, D) per-step mean."""
        key = (modality, utterance_level)
        if key not in self._means:
            features = torch.from_numpy(np.asarray(self.train.features[modality], dtype=np.float32))
            self._means[key] = (_time_average(features, self.train.lengths[modality]).mean(0) if utterance_level
                                else features.mean(0))
        return self._means[key]


def fidelity(outputs: list[dict], ids: list[str], split: SplitData, train_means: TrainingMeans,
             mask: MaskSet) -> dict[str, float]:
    """Reconstruction fidelity of what a method recovered, scored here against the true features.

    A method returns ``recovered`` (modality letter -> (B, T, D) input-space features, or (B, D)
    utterance-level ones) from its predict step; it never sees the truth, which only the runner
    holds. Utterance-level recoveries are compared with the time-averaged valid steps.
    """
    rows = split.subset(np.array(_positions(split, ids)))
    missing = torch.from_numpy(~mask.available[mask.rows(ids)])
    recovered, truth, means, lengths = {}, {}, {}, {}
    for modality in outputs[0]["recovered"]:
        estimate = torch.cat([o["recovered"][modality].detach().float().cpu() for o in outputs])
        full = torch.from_numpy(np.asarray(rows.features[modality], dtype=np.float32))
        utterance_level = estimate.dim() == 2
        if utterance_level:  # compare with the mean over valid steps
            full = _time_average(full, rows.lengths[modality])
        else:
            lengths[modality] = torch.from_numpy(np.asarray(rows.lengths[modality]))
        means[modality] = train_means.get(modality, utterance_level)
        recovered[modality], truth[modality] = estimate, full
    return reconstruction_metrics(recovered, truth, missing, means, lengths=lengths)


def _positions(split: SplitData, ids: list[str]) -> list[int]:
    where = {sample_id: i for i, sample_id in enumerate(split.ids.tolist())}
    return [where[i] for i in ids]


def _time_average(features: torch.Tensor, lengths) -> torch.Tensor:
    """(N, T, D) -> (N, D): the mean over each sample's valid steps."""
    steps = torch.arange(features.shape[1]).unsqueeze(0) < torch.as_tensor(np.asarray(lengths)).unsqueeze(1)
    return masked_mean(features, steps)


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
    return DatasetBundle(bundle.name, splits, bundle.provenance, bundle.source_sha256, bundle.source,
                         bundle.label_range, bundle.language)
