"""The contract every method fulfils: the base LightningModule.

A method supplies :meth:`forward` (batch -> (B,) sentiment prediction for the masked input) and,
if it has more than the task loss, :meth:`training_loss`. The base class owns what must be
identical across methods: the validation monitor (:data:`VALID_MONITOR`, the validation MAE,
averaged over the validation conditions, e.g. the 7 patterns of ``fixed``), the prediction step the
runner evaluates with, and a default optimiser. No method touches the test split: the runner
evaluates the selected checkpoint through :meth:`predict_step`.
"""
from __future__ import annotations

from typing import Any, ClassVar

import lightning as L
import torch
from torch import Tensor

from mmbench.config import Range
from mmbench.constants import TRAIN_SETTINGS, VALID_MONITOR
from mmbench.metrics import mean_condition_mae
from mmbench.data.datamodule import DataInfo


#: Plateau patience of the LR schedule where a method's paper is silent (below the early-stopping
#: default of ``config.BUDGET_DEFAULTS``, so the LR is lowered before a run stops).
DEFAULT_LR_PATIENCE = 5


class MMBenchMethod(L.LightningModule):
    """Base class of every registered method.

    Class attributes:
        supported_train_settings: the training settings (``complete``, ``same``, ``incomplete``)
            the method can be trained under; the runner refuses the others before training.
            The run's setting reaches the method as ``self.data_info.train_setting``.
        trainable: False for methods with nothing to fit (the ``mean`` floor).
        method_version: part of every run key; bump it when the method's numbers change by
            design, so finished runs of the older version are re-run and left out of tables.
        quick_profile: constructor values ``--profile quick`` overlays on the YAML.
        param_ranges: allowed values of numeric constructor arguments, checked with the type
            annotations when a sweep is planned (``--set batch_size=-1`` is refused there).
    """

    supported_train_settings: ClassVar[tuple[str, ...]] = TRAIN_SETTINGS
    trainable: ClassVar[bool] = True
    method_version: ClassVar[str] = "1"
    quick_profile: ClassVar[dict[str, Any]] = {}
    param_ranges: ClassVar[dict[str, Range]] = {
        "batch_size": Range(1), "lr": Range(0, low_open=True), "weight_decay": Range(0), "lr_patience": Range(0),
        "dropout": Range(0, 1), "gradient_clip": Range(0), "hidden_dim": Range(1)}

    def __init__(self, data: DataInfo):
        super().__init__()
        self.data_info = data
        self._val_outputs: dict[int, list[tuple[Tensor, Tensor]]] = {}

    # -- what a method provides -------------------------------------------------------------
    def forward(self, batch: dict[str, Any]) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def training_loss(self, batch: dict[str, Any]) -> Tensor | dict[str, Tensor]:
        """Default: L1 between prediction and label (MMSA's regression loss)."""
        return torch.nn.functional.l1_loss(self(batch), batch["label"])

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
        """Predictions the runner scores. A recovery method adds ``recovered``: modality letter ->
        its recovered input-space features, (B, T, D) or utterance-level (B, D); the runner scores
        them against the truth it alone holds (``rec_mse_<m>``, ``rec_cos_<m>``)."""
        return {"id": batch["id"], "pred": self(batch).detach().float().cpu(), "label": batch["label"].cpu()}

    def extra_metrics(self, outputs: list[dict[str, Any]]) -> dict[str, float]:
        """Metrics beyond the shared ones, from this method's predict outputs (e.g. ``rec_mse_V``)."""
        return {}

    def configure_optimizers(self):
        """Adam at ``self.hparams.lr`` halving on a validation plateau (override for others)."""
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.get("lr", 1e-3),
                                     weight_decay=self.hparams.get("weight_decay", 0.0))
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=0.5, patience=self.hparams.get("lr_patience", DEFAULT_LR_PATIENCE))
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": VALID_MONITOR, "interval": "epoch"}}

    # -- helpers for subclasses -------------------------------------------------------------
    def scale_to_label_range(self, raw: Tensor) -> Tensor:
        """Map an unbounded output into the dataset's label range (tanh, centred)."""
        low, high = self.data_info.label_range
        return (high + low) / 2 + (high - low) / 2 * torch.tanh(raw)
