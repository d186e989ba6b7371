"""A method's own preliminary stage (a teacher, a pretrained backbone) fitted inside its ``fit``.

Several methods need a model trained before the main one (MMIN's full-modality teacher, IMDer's
MR = 0 backbone, CorrKD's teacher). The original code ships such models as files; here the stage
is part of the method's fit and reads the **training loader only**, so it cannot see validation
or test data. It runs as a nested Lightning fit of a tiny module wrapping the stage's loss, with
no validation, checkpointing or logging of its own.

The stage runs on the device its module sits on (the outer method's, on CUDA its GPU index) and
leaves every parameter and buffer there: Lightning's teardown moves a fitted module to the CPU,
which would split a method on CUDA between two devices.
"""
from __future__ import annotations

import sys
from typing import Callable, Iterable

import lightning as L
import torch
from torch import Tensor, nn


class _Stage(L.LightningModule):
    def __init__(self, module: nn.Module, loss_fn: Callable[[dict], Tensor], lr: float, weight_decay: float):
        super().__init__()
        self.module = module
        self.loss_fn = loss_fn
        self.lr = lr
        self.weight_decay = weight_decay

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss = self.loss_fn(batch)
        self.log("stage_loss", loss.detach(), prog_bar=True, on_step=False, on_epoch=True,
                 batch_size=len(batch["label"]))
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.module.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def fit_stage(module: nn.Module, loss_fn: Callable[[dict], Tensor], train_loader: Iterable[dict], *,
              epochs: int, lr: float, weight_decay: float = 0.0, gradient_clip: float | None = None,
              accelerator: str = "auto") -> nn.Module:
    """Train ``module`` on ``train_loader`` for ``epochs`` epochs with ``loss_fn(batch)``; return it frozen.

    ``loss_fn`` must only use parameters of ``module`` (the only ones optimised). The module is
    left in eval mode with ``requires_grad`` off: a teacher the main stage reads, never updates.
    """
    if epochs > 0:
        home = module_device(module)
        on_cuda = home is not None and home.type == "cuda"
        trainer = L.Trainer(max_epochs=epochs, accelerator="gpu" if on_cuda else accelerator,
                            devices=[home.index or 0] if on_cuda else 1, logger=False,
                            enable_checkpointing=False, enable_model_summary=False,
                            enable_progress_bar=sys.stderr.isatty(), num_sanity_val_steps=0,
                            limit_val_batches=0, gradient_clip_val=gradient_clip, deterministic="warn")
        module.train()
        try:
            trainer.fit(_Stage(module, loss_fn, lr, weight_decay), train_dataloaders=train_loader)
        finally:
            if home is not None:
                module.to(home)  # undo the teardown's .cpu(): parameters move in place, references stay valid
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def module_device(module: nn.Module) -> torch.device | None:
    """The one device holding ``module``'s parameters and buffers (None: it has none).

    Raises:
        ValueError: they are spread over several devices (a stage trains on one).
    """
    devices = {tensor.device for tensor in (*module.parameters(), *module.buffers())}
    if len(devices) > 1:
        raise ValueError(f"a stage's module must sit on one device; {type(module).__name__} is on "
                         f"{sorted(str(d) for d in devices)}")
    return next(iter(devices), None)


def outer_accelerator(method: L.LightningModule) -> str:
    """The accelerator the method's own trainer runs on, for a nested stage to match."""
    trainer = getattr(method, "_trainer", None)
    if trainer is None:
        return "cpu"
    return "gpu" if trainer.strategy.root_device.type == "cuda" else "cpu"
