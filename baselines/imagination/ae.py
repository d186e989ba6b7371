"""``ae``: MMIN's autoencoder baseline (``models/mmin_AE_model.py`` of AIM3-RUC/MMIN).

Utterance-level encoders per modality; one fully connected autoencoder (256-128-64) maps the joint
embedding of the incomplete sample to the joint embedding of the complete one; a regressor reads
its latent. Loss = L1 task + ``reconstruction_weight`` x MSE(reconstruction, complete embedding).

Adaptations beyond those of :mod:`baselines.imagination.base` (regression head, encoders, training
patterns, fidelity decoder, per-network gradient clipping):
- As the benchmark defines it, the target is the complete sample's joint embedding from the same
  (gradient-stopped) encoders, with no teacher and no cycle term (MMIN's AE model adds both).
- The autoencoder is MMIN's residual block with ``n_blocks = 1`` (encoder Linear-LeakyReLU with a
  linear latent, decoder Linear-ReLU with a linear output, then the transition MLP) rather than
  its ``SimpleFcAE`` (activations on the latent and output), so ``ae`` and ``cra`` differ only in
  the cascade; layers 256-128-64 as MMIN's main model (its AE script used 128-64-32).
"""
from baselines.imagination.base import EmbeddingImagination


class AE(EmbeddingImagination):
    """Single-block autoencoder imagination (see module docstring)."""

    def __init__(self, data, hidden_dim: int = 128, ae_layers: tuple[int, ...] = (256, 128, 64),
                 n_blocks: int = 1, reconstruction_weight: float = 1.0, dropout: float = 0.1,
                 gradient_clip: float = 5.0, **fit):
        super().__init__(data, hidden_dim=hidden_dim, ae_layers=ae_layers, n_blocks=n_blocks,
                         reconstruction_weight=reconstruction_weight, dropout=dropout,
                         gradient_clip=gradient_clip, **fit)
