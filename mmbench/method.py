"""The contract every method fulfils: the base LightningModule, and what a method imports.

A method imports from here (``MMBenchMethod``, ``DataInfo``, ``FitSettings``, ``Prediction``) and
from the shared helpers :mod:`mmbench.augment`, :mod:`mmbench.layers` and :mod:`mmbench.stages`, not
from the data layer's loaders (``mmbench.data.datamodule``): it receives their batches and
``DataInfo``. The base class owns what must be identical across methods:
the validation monitor (:data:`VALID_MONITOR`, the validation MAE, averaged over the validation
conditions, e.g. the 7 patterns of ``fixed``), the prediction step the runner evaluates with, and a
default optimiser. No method touches the test split: the runner evaluates the selected checkpoint
through :meth:`MMBenchMethod.predict_step`.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar, Iterable, NamedTuple

import lightning as L
import torch
from torch import Tensor

from mmbench.config import FitSettings, Range
from mmbench.constants import TRAIN_SETTINGS, VALID_MONITOR
from mmbench.data.datamodule import DataInfo
from mmbench.metrics import mean_condition_mae

__all__ = ["DataInfo", "FitSettings", "MMBenchMethod", "Prediction"]


class Prediction(NamedTuple):
    """What :meth:`MMBenchMethod.predict` returns for a batch of B samples."""

    score: Tensor  # (B,) sentiment in the dataset's label range
    #: modality letter -> recovered input-space features, (B, T, D) or utterance-level (B, D), for a
    #: method that recovers missing modalities; the runner scores them against the truth it alone holds
    #: (``rec_mse_<m>``, ``rec_cos_<m>``, on the samples where m is missing).
    recovered: dict[str, Tensor] | None = None


class MMBenchMethod(L.LightningModule):
    """Base class of every registered method.

    A method provides:
        ``__init__(self, data, <typed keyword hyperparameters>, **fit)``: ``data`` is the run's
            :class:`DataInfo` (filled by the runner); ``**fit`` goes to ``super().__init__(data,
            **fit)`` (the :class:`FitSettings` below). The keys of ``configs/methods/<name>.yaml``
            and of ``--set`` are these hyperparameters and the fit settings.
        ``forward(batch) -> (B,)``: the score of a masked batch (what validation selects with).
        ``training_loss(batch)``, if it has more than the default L1 task loss: a tensor, or a dict
            of named terms with the total under ``"loss"`` (each term is logged as ``train_<name>``).
        ``predict(batch) -> Prediction``, if it recovers missing modalities: the score (the same as
            ``forward``) and the ``recovered`` features, from one pass.
        A stage fitted before the main one (a teacher) runs in ``on_fit_start`` on
        :meth:`training_loader` (see :mod:`mmbench.stages`).

    Class attributes (everything the runner reads of a method):
        supported_train_settings: the training settings (``complete``, ``same``, ``incomplete``)
            the method can be trained under; the runner refuses the others before training.
            The run's setting reaches the method as ``self.data_info.train_setting``: read it
            there, never guess it from a batch's keys (see :mod:`mmbench.augment`).
        trainable: False for methods with nothing to fit (the ``mean`` floor).
        method_version: part of every run key; bump it when the method's numbers change by
            design, so finished runs of the older version are re-run and left out of tables.
        quick_profile: constructor values ``--profile quick`` overlays on the YAML.
        param_ranges: allowed values of numeric hyperparameters, checked with the type
            annotations when a sweep is planned (``--set batch_size=-1`` is refused there).
        fit_defaults: the method's defaults of the fit settings (``lr``, ``weight_decay``,
            ``lr_patience``, ``batch_size``): ``FitSettings(lr=2e-3)`` where its paper differs
            from the benchmark's. The constructed method holds the values in ``self.fit_settings``;
            the default optimiser reads them, the runner's loaders use ``batch_size``.
    """

    supported_train_settings: ClassVar[tuple[str, ...]] = TRAIN_SETTINGS
    trainable: ClassVar[bool] = True
    method_version: ClassVar[str] = "1"
    quick_profile: ClassVar[dict[str, Any]] = {}
    param_ranges: ClassVar[dict[str, Range]] = {
        "batch_size": Range(1), "lr": Range(0, low_open=True), "weight_decay": Range(0), "lr_patience": Range(0),
        "dropout": Range(0, 1), "gradient_clip": Range(0), "hidden_dim": Range(1)}
    fit_defaults: ClassVar[FitSettings] = FitSettings()

    def __init__(self, data: DataInfo, **fit: Any):
        super().__init__()
        self.data_info = data
        self.fit_settings: FitSettings = replace(self.fit_defaults, **fit)
        self._val_outputs: dict[int, list[tuple[Tensor, Tensor]]] = {}

    # -- what a method provides -------------------------------------------------------------
    def forward(self, batch: dict[str, Any]) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def training_loss(self, batch: dict[str, Any]) -> Tensor | dict[str, Tensor]:
        """Default: L1 between prediction and label (MMSA's regression loss)."""
        return torch.nn.functional.l1_loss(self(batch), batch["label"])

    def predict(self, batch: dict[str, Any]) -> Prediction:
        """The score of a masked evaluation batch and, for a recovery method, what it recovered."""
        return Prediction(self(batch))

    def modality_parameters(self) -> dict[str, list[torch.nn.Parameter]] | None:
        """The parameters that belong to each modality alone (``{"L": [...], "V": [...], "A": [...]}``),
        for the modality learning index (:mod:`mmbench.metrics.learning`); ``None``: not declared, and
        the run gets no MLI rather than a guessed one."""
        return None

    # -- shared loop ------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        losses = self.training_loss(batch)
        if isinstance(losses, Tensor):
            losses = {"loss": losses}
        for name, value in losses.items():
            self.log(f"train_{name}", value.detach(), batch_size=len(batch["label"]),
                     prog_bar=name == "loss", on_step=False, on_epoch=True)
        return losses["loss"]

    def on_validation_epoch_start(self) -> None:
        self._val_outputs = {}

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        preds = self(batch).detach().float()
        self._val_outputs.setdefault(dataloader_idx, []).append((preds, batch["label"].float()))

    def on_validation_epoch_end(self) -> None:
        if not self._val_outputs:
            return
        # Mean over conditions of each condition's MAE: every pattern weighs the same.
        per_condition = [(torch.cat([p for p, _ in pairs]), torch.cat([y for _, y in pairs]))
                         for pairs in self._val_outputs.values()]
        self.log(VALID_MONITOR, mean_condition_mae(per_condition).float(), prog_bar=True)

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """What the runner scores: ``id``, ``pred``, ``label`` and, from :meth:`predict`, ``recovered``."""
        prediction = self.predict(batch)
        out = {"id": batch["id"], "pred": prediction.score.detach().float().cpu(), "label": batch["label"].cpu()}
        if prediction.recovered is not None:
            out["recovered"] = {m: v.detach().float().cpu() for m, v in prediction.recovered.items()}
        return out

    def configure_optimizers(self):
        """Adam at the fit settings' ``lr`` and ``weight_decay``, halving after ``lr_patience``
        validation epochs without improvement (override for others)."""
        fit = self.fit_settings
        optimizer = torch.optim.Adam(self.parameters(), lr=fit.lr, weight_decay=fit.weight_decay)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5,
                                                               patience=fit.lr_patience)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": VALID_MONITOR, "interval": "epoch"}}

    # -- helpers for subclasses -------------------------------------------------------------
    def training_loader(self) -> Iterable[dict[str, Any]]:
        """The run's training loader (batches as the training setting gives them), for a stage the
        method fits inside its own fit (a teacher, a pretraining stage, a retrieval base)."""
        return self.trainer.datamodule.train_dataloader()

    def scale_to_label_range(self, raw: Tensor) -> Tensor:
        """Map an unbounded output into the dataset's label range (tanh, centred)."""
        low, high = self.data_info.label_range
        return (high + low) / 2 + (high - low) / 2 * torch.tanh(raw)
