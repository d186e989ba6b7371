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

Adaptations:
- MMIN classifies IEMOCAP emotions with cross-entropy; here the task loss (teacher and student) is
  L1 on a regression head (MMSA).
- MMIN's teacher trains 10 + 10 epochs with linear decay at lr 2e-4; here ``teacher_epochs`` Adam
  epochs at ``teacher_lr`` (default 10 at 1e-3), no decay. Under ``same`` it reads the complete
  training features (``full_<field>``), as do its targets in stage 2.
- Budget of stage 2 (``configs/methods/mmin.yaml``): MMIN's 30 + 30 epochs, every one run (MMIN
  has no early stopping; the best validation epoch is kept); the LR halves on a validation
  plateau (benchmark default patience 5) instead of MMIN's linear decay.
- The reconstruction target is written as teacher(complete) - teacher(observed input). With whole
  modalities missing (MMIN's case) this is exactly the teacher's embedding of the missing
  modalities with the available slots zero (the per-modality encoders give identical embeddings
  for the modalities both inputs share); where only some frames of a modality are missing (the
  ``frame`` protocol, which MMIN does not have) it is what the missing frames change in the
  teacher's embedding, instead of a target of all zeros.
- Encoders, training patterns (7 including the complete one under the ``complete`` setting), heads
  and the fidelity decoder are as in :mod:`baselines.imagination.base`; the fidelity decoder reads the
  imagined missing-modality embedding. Gradients are clipped per network at norm 1.0 (MMIN).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from baselines.imagination.base import EmbeddingImagination, ResidualAutoencoder, UtteranceEncoders
from mmbench.augment import complete_view, training_views
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
                 gradient_clip: float = 1.0, **fit):
        super().__init__(data, hidden_dim=hidden_dim, ae_layers=ae_layers, n_blocks=n_blocks,
                         reconstruction_weight=reconstruction_weight, dropout=dropout,
                         gradient_clip=gradient_clip, **fit)
        self.save_hyperparameters(ignore=["data"])
        self.teacher = UtteranceFusionTeacher(data, hidden_dim, dropout).eval()
        self.cycle_autoencoder = ResidualAutoencoder(hidden_dim * len(MODALITIES), tuple(ae_layers), n_blocks)

    # -- stage 1 ---------------------------------------------------------------------------
    def teacher_loss(self, batch: dict) -> Tensor:
        complete = complete_view(batch)
        return nn.functional.l1_loss(self.teacher(complete), complete["label"])

    def on_fit_start(self) -> None:
        fit_stage(self.teacher, self.teacher_loss, self.training_loader(),
                  epochs=self.hparams.teacher_epochs, lr=self.hparams.teacher_lr,
                  accelerator=outer_accelerator(self))
        self.encoders.load_state_dict(self.teacher.encoders.state_dict())  # MMIN initialises from the teacher

    def train(self, mode: bool = True) -> "MMIN":
        super().train(mode)
        self.teacher.eval()  # frozen after its stage: no dropout noise in the targets
        return self

    # -- stage 2 ---------------------------------------------------------------------------
    def reconstruction_target(self, complete: dict, incomplete: dict) -> Tensor:
        """The frozen teacher's embedding of what is missing: teacher(complete) - teacher(observed).

        With whole modalities missing: the missing modalities' teacher embedding, available slots 0.
        """
        with torch.no_grad():
            return self.teacher.encoders(complete) - self.teacher.encoders(incomplete)

    def cycle_loss(self, imagined: Tensor, embedding: Tensor) -> Tensor:
        """The backward autoencoder maps the imagination back to the observed (incomplete) embedding."""
        return nn.functional.mse_loss(self.cycle_autoencoder(imagined)[0], embedding.detach())

    def clipped_networks(self) -> list[nn.Module]:
        return [*super().clipped_networks(), self.cycle_autoencoder]

    def training_loss(self, batch: dict) -> dict[str, Tensor]:
        incomplete, complete = training_views(batch, self.data_info.train_setting)
        embedding, imagined, latents = self.imagine(incomplete)
        task = nn.functional.l1_loss(self.score(latents), incomplete["label"])
        reconstruction = self.reconstruction_loss(imagined, complete, incomplete)
        cycle = self.cycle_loss(imagined, embedding)
        decoder = self.feature_decoders.loss(imagined, complete, ~incomplete["available"])
        loss = (task + self.hparams.reconstruction_weight * reconstruction
                + self.hparams.cycle_weight * cycle + decoder)
        return {"loss": loss, "task": task, "reconstruction": reconstruction, "cycle": cycle,
                "feature_decoder": decoder}
