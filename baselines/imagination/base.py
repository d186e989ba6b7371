"""Shared parts of the embedding-imagination baselines ``ae``, ``cra`` and ``mmin`` (MMIN family).

Zhao, Li & Jin, "Missing Modality Imagination Network for Emotion Recognition with Uncertain
Missing Modalities", ACL 2021 (code: AIM3-RUC/MMIN). All three encode each modality to an
utterance-level embedding, concatenate them (missing ones are zero), and let an autoencoder
"imagine" the embedding of the complete sample; a regressor reads the autoencoder's latents.

Adaptations shared by the three (also stated in each method's docstring):
- Encoders: MMIN uses LSTMs (audio, vision) and a TextCNN (language) on IEMOCAP features; here every
  modality uses the suite's masked temporal encoder (projection, temporal convolution, masked mean),
  which also handles the one-step features of ``mosi-bclstm``.
- Head: MMIN classifies 4 emotions with cross-entropy through an FcClassifier (two 128-unit layers,
  dropout); here a regression head (one 128-unit hidden layer, a scalar output initialised at the
  training mean label) with an L1 loss (MMSA).
- Training patterns (:func:`mmbench.augment.training_views`, read from the run's training setting):
  MMIN trains only on the 6 incomplete conditions. The benchmark also tests the complete pattern
  (LVA), so under the ``complete`` setting each training sample draws one of the 7 patterns
  uniformly (1 in 7 complete, so the regressor also learns the complete input); this sampling is
  the method's own business under ``complete`` only. Under ``same`` the model trains on the
  benchmark's masks exactly as given, nothing added. ``incomplete`` is not supported: the targets
  need the removed features.
- Stages reading complete training features (allowed under ``same`` only as targets and teacher
  inputs): the reconstruction target (the complete sample's embedding; MMIN: its teacher's), the
  fidelity decoder's target, and MMIN's teacher, which trains on them.
- Budget (each method's YAML): ``ae`` MMIN's AE script's 20 + 30 epochs and ``mmin`` MMIN's
  30 + 30, every epoch run (MMIN has no early stopping); ``cra`` has no script, so the benchmark
  defaults. The LR halves on a validation plateau (benchmark default patience 5) in place of
  MMIN's linear decay.
- Gradient clipping: MMIN clips each network's gradient norm separately (1.0; 5.0 in its AE model);
  ``gradient_clip`` does the same per network (encoders, autoencoder(s), regressor, decoders).
- Reconstruction fidelity: the imagined embedding is decoded to utterance-level input features of
  each missing modality by a linear head trained (on detached embeddings, so it does not steer the
  model) against the time-averaged true training features. It exists only for the benchmark's
  ``rec_mse_*`` / ``rec_cos_*`` metrics.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from mmbench.augment import training_views
from mmbench.constants import MODALITIES
from mmbench.layers import FeatureStandardizer, TemporalEncoder, masked_mean, modality_inputs
from mmbench.method import DataInfo, FitSettings, MMBenchMethod, Prediction


class UtteranceEncoders(nn.Module):
    """One masked temporal encoder per modality: batch -> (B, 3 * hidden), missing modalities zero."""

    def __init__(self, data: DataInfo, hidden_dim: int, dropout: float):
        super().__init__()
        self.standardizers = nn.ModuleList(FeatureStandardizer(*data.feature_stats[m]) for m in MODALITIES)
        self.encoders = nn.ModuleList(TemporalEncoder(data.dims[m], hidden_dim, dropout) for m in MODALITIES)

    def forward(self, batch: dict) -> Tensor:
        parts = []
        inputs = zip(self.standardizers, self.encoders, modality_inputs(batch))
        for position, (standardize, encoder, (features, step_mask)) in enumerate(inputs):
            step_mask = step_mask & batch["available"][:, position].unsqueeze(1)
            embedding = encoder(standardize(features, step_mask), step_mask)
            parts.append(embedding * batch["available"][:, position].unsqueeze(1).to(embedding.dtype))
        return torch.cat(parts, dim=1)


def mlp(sizes: list[int], activation: type[nn.Module], last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2 or last_activation:
            layers.append(activation())
    return nn.Sequential(*layers)


class ResidualAutoencoder(nn.Module):
    """MMIN's cascaded residual autoencoder; with one block it is the plain AE.

    Block i reads ``x_in = x_in + x_out`` (the input plus the previous block's reconstruction),
    encodes it to a latent (Linear-LeakyReLU, last layer linear) and decodes (Linear-ReLU, last
    linear). The output is ``transition(x_in + x_out)``; the latents of every block are returned
    for the regressor.
    """

    def __init__(self, input_dim: int, layers: tuple[int, ...] = (256, 128, 64), n_blocks: int = 5):
        super().__init__()
        sizes = [input_dim, *layers]
        self.encoders = nn.ModuleList(mlp(sizes, nn.LeakyReLU, last_activation=False) for _ in range(n_blocks))
        self.decoders = nn.ModuleList(mlp(sizes[::-1], nn.ReLU, last_activation=False) for _ in range(n_blocks))
        self.transition = nn.Sequential(nn.Linear(input_dim, input_dim), nn.ReLU(), nn.Linear(input_dim, input_dim))
        self.latent_dim = layers[-1] * n_blocks

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x_in, x_out = x, torch.zeros_like(x)
        latents = []
        for encoder, decoder in zip(self.encoders, self.decoders):
            x_in = x_in + x_out
            latent = encoder(x_in)
            x_out = decoder(latent)
            latents.append(latent)
        return self.transition(x_in + x_out), torch.cat(latents, dim=1)


class FeatureDecoders(nn.Module):
    """Imagined joint embedding -> utterance-level input features of each modality (for fidelity)."""

    def __init__(self, data: DataInfo, embedding_dim: int):
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(embedding_dim, data.dims[m]) for m in MODALITIES)
        for m in MODALITIES:  # the training statistics map standardised outputs back to input space
            mean, std = data.feature_stats[m]
            self.register_buffer(f"mean_{m}", torch.as_tensor(mean, dtype=torch.float32).reshape(-1))
            self.register_buffer(f"std_{m}", torch.as_tensor(std, dtype=torch.float32).reshape(-1))

    def forward(self, embedding: Tensor) -> dict[str, Tensor]:
        """Input-space (un-standardised) utterance-level features per modality."""
        return {m: getattr(self, f"mean_{m}") + getattr(self, f"std_{m}") * head(embedding)
                for m, head in zip(MODALITIES, self.heads)}

    def loss(self, embedding: Tensor, complete: dict, missing: Tensor) -> Tensor:
        """MSE in standardised units against the time-averaged truth, where a modality is missing."""
        decoded = self.forward(embedding.detach())
        terms = []
        for position, (m, (features, step_mask)) in enumerate(zip(MODALITIES, modality_inputs(complete))):
            rows = missing[:, position]
            if rows.any():
                target = masked_mean(features, step_mask)
                std = getattr(self, f"std_{m}")
                terms.append((((decoded[m] - target) / std)[rows] ** 2).mean())
        return torch.stack(terms).mean() if terms else embedding.sum() * 0


class EmbeddingImagination(MMBenchMethod):
    """Encoders -> residual autoencoder over the joint embedding -> regressor on the latents.

    The reconstruction target is the joint embedding of the complete sample from the same encoders,
    with gradients stopped (so the encoders are not pulled towards a trivial embedding).
    ``ae`` is this with one block, ``cra`` with a cascade; ``mmin`` changes the target.
    Fit settings: Adam at 1e-3 with weight decay 1e-5; the benchmark's LR patience and batch size.
    """

    supported_train_settings = ("complete", "same")
    method_version = "2"  # patterns drawn under 'complete' only (read from the setting); MMIN's budgets
    fit_defaults = FitSettings(weight_decay=1e-5)

    def __init__(self, data: DataInfo, hidden_dim: int = 128, ae_layers: tuple[int, ...] = (256, 128, 64),
                 n_blocks: int = 1, reconstruction_weight: float = 1.0, dropout: float = 0.1,
                 gradient_clip: float = 1.0, **fit):
        super().__init__(data, **fit)
        self.save_hyperparameters(ignore=["data"])
        self.encoders = UtteranceEncoders(data, hidden_dim, dropout)
        joint = hidden_dim * len(MODALITIES)
        self.autoencoder = ResidualAutoencoder(joint, tuple(ae_layers), n_blocks)
        self.regressor = nn.Sequential(nn.Linear(self.autoencoder.latent_dim, hidden_dim), nn.ReLU(),
                                       nn.Dropout(dropout), nn.Linear(hidden_dim, 1))
        nn.init.constant_(self.regressor[-1].bias, data.train_label_mean)
        self.feature_decoders = FeatureDecoders(data, joint)

    def imagine(self, batch: dict) -> tuple[Tensor, Tensor, Tensor]:
        """(incomplete joint embedding, imagined joint embedding, latents)."""
        embedding = self.encoders(batch)
        imagined, latents = self.autoencoder(embedding)
        return embedding, imagined, latents

    def score(self, latents: Tensor) -> Tensor:
        return self.regressor(latents).squeeze(-1)

    def forward(self, batch: dict) -> Tensor:
        return self.score(self.imagine(batch)[2])

    def modality_parameters(self) -> dict[str, list[nn.Parameter]]:
        """Each modality's own encoder (the learning index; the shared autoencoder belongs to none)."""
        return {m: list(encoder.parameters()) for m, encoder in zip(MODALITIES, self.encoders.encoders)}

    def predict(self, batch: dict) -> Prediction:
        """The score and the imagined embedding decoded to input features, from one imagination."""
        _, imagined, latents = self.imagine(batch)
        return Prediction(self.score(latents), self.feature_decoders(imagined))

    def reconstruction_target(self, complete: dict, incomplete: dict) -> Tensor:
        """The joint embedding of the complete sample (same encoders, no gradient)."""
        with torch.no_grad():
            return self.encoders(complete)

    def reconstruction_loss(self, imagined: Tensor, complete: dict, incomplete: dict) -> Tensor:
        return nn.functional.mse_loss(imagined, self.reconstruction_target(complete, incomplete))

    def training_loss(self, batch: dict) -> dict[str, Tensor]:
        incomplete, complete = training_views(batch, self.data_info.train_setting)
        embedding, imagined, latents = self.imagine(incomplete)
        task = nn.functional.l1_loss(self.score(latents), incomplete["label"])
        reconstruction = self.reconstruction_loss(imagined, complete, incomplete)
        decoder = self.feature_decoders.loss(imagined, complete, ~incomplete["available"])
        loss = task + self.hparams.reconstruction_weight * reconstruction + decoder
        return {"loss": loss, "task": task, "reconstruction": reconstruction, "feature_decoder": decoder}

    def clipped_networks(self) -> list[nn.Module]:
        """The networks whose gradient norms are clipped separately, as MMIN does."""
        return [*self.encoders.encoders, self.autoencoder, self.regressor, self.feature_decoders]

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        if self.hparams.gradient_clip <= 0:
            return
        for network in self.clipped_networks():
            nn.utils.clip_grad_norm_(network.parameters(), self.hparams.gradient_clip)
