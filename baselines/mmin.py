"""``mmin``: Missing Modality Imagination Network (Zhao, Li & Jin, ACL 2021; AIM3-RUC/MMIN).

Two stages, both inside this method's fit:

1. A full-modality teacher (MMIN's ``utt_fusion`` model: per-modality encoders, concatenation, a
   regressor) is trained on complete **training** samples only (``teacher_epochs``, via
   :func:`mmbench.stages.fit_stage`, which reads the training loader and nothing else), then frozen.
2. The imagination network: encoders initialised from the teacher's; a cascaded residual
   autoencoder (5 blocks, 256-128-64) imagines, from the incomplete joint embedding, the teacher's
   embedding of the *missing* modalities (the teacher applied to the "reverse" input: missing
   modalities present, available ones zeroed); a backward autoencoder maps the imagination back to
   the incomplete embedding (cycle consistency); a regressor reads the concatenated latents.
   Loss = task + 4.0 x MSE(imagined, teacher embedding of the missing modalities)
   + 2.0 x MSE(cycle reconstruction, incomplete embedding (detached)), as MMIN's defaults.

Adaptations: MMIN classifies IEMOCAP emotions with cross-entropy; here the task loss is L1 on a
regression head (MMSA). MMIN's teacher trains 10 + 10 epochs with linear decay; here
``teacher_epochs`` Adam epochs (default 10). Encoders, training patterns (7 including the complete
one under the ``complete`` setting) and the fidelity decoder are as in :mod:`baselines.imagination`;
the fidelity decoder reads the imagined missing-modality embedding. Gradient clipping (MMIN clips
each network at norm 1.0) is not applied.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from baselines.imagination import (EmbeddingImagination, ResidualAutoencoder, UtteranceEncoders,
                                   training_views)
from mmbench.augment import complete_view
from mmbench.constants import MODALITIES
from mmbench.stages import fit_stage, outer_accelerator


class UtteranceFusionTeacher(nn.Module):
    """MMIN's stage-1 model: encoders, concatenation, regressor, trained on complete samples."""

    def __init__(self, data, hidden_dim: int, dropout: float):
        super().__init__()
        self.encoders = UtteranceEncoders(data, hidden_dim, dropout)
        self.regressor = nn.Sequential(nn.Linear(hidden_dim * len(MODALITIES), hidden_dim), nn.ReLU(),
                                       nn.Dropout(dropout), nn.Linear(hidden_dim, 1))
        nn.init.constant_(self.regressor[-1].bias, data.train_label_mean)

    def forward(self, batch: dict) -> Tensor:
        return self.regressor(self.encoders(batch)).squeeze(-1)


class MMIN(EmbeddingImagination):
    """Teacher-supervised cascaded residual imagination with cycle consistency (module docstring)."""

    quick_profile = {"teacher_epochs": 1}

    def __init__(self, data, hidden_dim: int = 128, ae_layers: tuple[int, ...] = (256, 128, 64),
                 n_blocks: int = 5, reconstruction_weight: float = 4.0, cycle_weight: float = 2.0,
                 teacher_epochs: int = 10, teacher_lr: float = 1e-3, dropout: float = 0.1,
                 lr: float = 1e-3, weight_decay: float = 1e-5, lr_patience: int = 10, batch_size: int = 32):
        super().__init__(data, hidden_dim, ae_layers, n_blocks, reconstruction_weight, dropout, lr,
                         weight_decay, lr_patience, batch_size)
        self.save_hyperparameters(ignore=["data"])
        self.teacher = UtteranceFusionTeacher(data, hidden_dim, dropout)
        self.cycle_autoencoder = ResidualAutoencoder(hidden_dim * len(MODALITIES), tuple(ae_layers), n_blocks)

    # -- stage 1 ---------------------------------------------------------------------------
    def teacher_loss(self, batch: dict) -> Tensor:
        complete = complete_view(batch)
        return nn.functional.l1_loss(self.teacher(complete), complete["label"])

    def on_fit_start(self) -> None:
        fit_stage(self.teacher, self.teacher_loss, self.trainer.datamodule.train_dataloader(),
                  epochs=self.hparams.teacher_epochs, lr=self.hparams.teacher_lr,
                  accelerator=outer_accelerator(self))
        self.encoders.load_state_dict(self.teacher.encoders.state_dict())  # MMIN initialises from the teacher

    def train(self, mode: bool = True) -> "MMIN":
        super().train(mode)
        self.teacher.eval()  # frozen after its stage: no dropout noise in the targets
        return self

    # -- stage 2 ---------------------------------------------------------------------------
    def reconstruction_target(self, complete: dict, available: Tensor) -> Tensor:
        """The frozen teacher's embedding of the missing modalities only (available slots zero)."""
        with torch.no_grad():
            return self.teacher.encoders(complete) * self.teacher.encoders.slot_mask(~available)

    def training_loss(self, batch: dict) -> dict[str, Tensor]:
        incomplete, complete = training_views(batch)
        embedding, imagined, latents = self.imagine(incomplete)
        task = nn.functional.l1_loss(self.regressor(latents).squeeze(-1), incomplete["label"])
        reconstruction = nn.functional.mse_loss(imagined, self.reconstruction_target(complete, incomplete["available"]))
        cycle = nn.functional.mse_loss(self.cycle_autoencoder(imagined)[0], embedding.detach())
        decoder = self.feature_decoders.loss(imagined, complete, ~incomplete["available"])
        loss = (task + self.hparams.reconstruction_weight * reconstruction
                + self.hparams.cycle_weight * cycle + decoder)
        return {"loss": loss, "task": task, "reconstruction": reconstruction, "cycle": cycle,
                "feature_decoder": decoder}
