"""The modality learning index (MLI): how evenly training moves each modality's own parameters.

A method declares which of its parameters belong to which modality
(:meth:`mmbench.method.MMBenchMethod.modality_parameters`); a method that cannot returns ``None`` and
gets no MLI, rather than a guessed one. During training, after every backward pass, the L2 norm of
the gradient of each modality's parameters is recorded; per epoch the norms are averaged per
modality, and the epoch's balance is :func:`mmbench.metrics.balance.balance_score` of those means.
MLI is the mean of the epochs' balances: 1 = every modality's parameters receive gradients of the
same size, 0 = one modality's parameters receive all of it. Reading gradients changes nothing in the
training itself.
"""
from __future__ import annotations

import math

import lightning as L
import torch

from mmbench.metrics.balance import balance_score


class ModalityGradientNorms(L.Callback):
    """Records each modality's gradient norm per step; :attr:`index` is the run's MLI (NaN if undeclared)."""

    def __init__(self) -> None:
        self.epoch_sums: dict[str, float] = {}
        self.epoch_steps = 0
        self.epoch_balances: list[float] = []
        self.declared = True

    def on_after_backward(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        groups = pl_module.modality_parameters() if hasattr(pl_module, "modality_parameters") else None
        if not groups:
            self.declared = False
            return
        for modality, parameters in groups.items():
            grads = [p.grad.detach().float().norm() ** 2 for p in parameters if p.grad is not None]
            norm = float(torch.stack(grads).sum().sqrt()) if grads else 0.0
            self.epoch_sums[modality] = self.epoch_sums.get(modality, 0.0) + norm
        self.epoch_steps += 1

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.epoch_steps:
            self.epoch_balances.append(balance_score({m: s / self.epoch_steps for m, s in self.epoch_sums.items()}))
        self.epoch_sums, self.epoch_steps = {}, 0

    @property
    def index(self) -> float:
        balances = [b for b in self.epoch_balances if not math.isnan(b)]
        if not self.declared or not balances:
            return math.nan
        return sum(balances) / len(balances)
