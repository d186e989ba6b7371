"""``cra``: the cascaded residual autoencoder (Tran et al., CVPR 2017, as used inside MMIN).

Several residual autoencoder blocks, each refining the previous block's reconstruction of the
complete joint embedding (MMIN's ``ResidualAE``: 5 blocks, 256-128-64), a regressor on the
concatenated latents; without MMIN's cycle-consistency and teacher terms: the target is the
complete sample's embedding from the same (gradient-stopped) encoders. Adaptations (regression
head, encoders, training patterns, fidelity decoder, per-network gradient clipping at 1.0 as MMIN)
are listed in :mod:`baselines.imagination.base`.
"""
from baselines.imagination.base import EmbeddingImagination


class CRA(EmbeddingImagination):
    """Cascaded residual autoencoder imagination (see module docstring)."""

    def __init__(self, data, hidden_dim: int = 128, ae_layers: tuple[int, ...] = (256, 128, 64),
                 n_blocks: int = 5, reconstruction_weight: float = 1.0, dropout: float = 0.1,
                 gradient_clip: float = 1.0, **fit):
        super().__init__(data, hidden_dim=hidden_dim, ae_layers=ae_layers, n_blocks=n_blocks,
                         reconstruction_weight=reconstruction_weight, dropout=dropout,
                         gradient_clip=gradient_clip, **fit)
