"""``ae``: MMIN's autoencoder baseline (``models/mmin_AE_model.py`` of AIM3-RUC/MMIN).

Utterance-level encoders per modality; one fully connected autoencoder (256-128-64) maps the joint
embedding of the incomplete sample to the joint embedding of the complete one; a regressor reads
its latent. Loss = L1 task + ``reconstruction_weight`` x MSE(reconstruction, complete embedding).
Adaptations (regression head, encoders, training patterns, fidelity decoder) are listed in
:mod:`baselines.imagination`.
"""
from baselines.imagination import EmbeddingImagination


class AE(EmbeddingImagination):
    """Single-block autoencoder imagination (see module docstring)."""

    def __init__(self, data, hidden_dim: int = 128, ae_layers: tuple[int, ...] = (256, 128, 64),
                 n_blocks: int = 1, reconstruction_weight: float = 1.0, dropout: float = 0.1,
                 lr: float = 1e-3, weight_decay: float = 1e-5, lr_patience: int = 10, batch_size: int = 32):
        super().__init__(data, hidden_dim, ae_layers, n_blocks, reconstruction_weight, dropout, lr,
                         weight_decay, lr_patience, batch_size)
