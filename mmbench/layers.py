"""Small building blocks shared by the reference method and the baselines (imported, never copied)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from mmbench.constants import MODALITIES, MODALITY_FIELDS


def masked_mean(sequence: Tensor, step_mask: Tensor) -> Tensor:
    """Mean over time of (B, T, H) where ``step_mask`` (B, T) is True; zeros for an empty mask."""
    weights = step_mask.unsqueeze(-1).to(sequence.dtype)
    return (sequence * weights).sum(1) / weights.sum(1).clamp_min(1.0)


class FeatureStandardizer(nn.Module):
    """(x - mean) / std with the training split's per-feature statistics (fixed buffers)."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, features: Tensor, step_mask: Tensor) -> Tensor:
        return (features - self.mean) / self.std * step_mask.unsqueeze(-1)  # removed steps stay 0

    def inverse(self, standard: Tensor) -> Tensor:
        """Standardised values back to input space (e.g. a method's recovered features)."""
        return self.mean + self.std * standard


class TemporalEncoder(nn.Module):
    """Per-step projection, a temporal convolution, and a masked mean pool: (B, T, D) -> (B, H)."""

    def __init__(self, input_dim: int, hidden_dim: int, dropout: float = 0.1):
        super().__init__()
        self.project = nn.Sequential(nn.LayerNorm(input_dim), nn.Linear(input_dim, hidden_dim), nn.GELU())
        self.temporal = nn.Conv1d(hidden_dim, hidden_dim, kernel_size=3, padding=1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, features: Tensor, step_mask: Tensor) -> Tensor:
        hidden = self.project(features) * step_mask.unsqueeze(-1)  # (B, T, H); padding stays 0
        hidden = hidden + torch.relu(self.temporal(hidden.transpose(1, 2)).transpose(1, 2))
        return self.dropout(masked_mean(hidden, step_mask))  # (B, H)


def modality_inputs(batch: dict) -> list[tuple[Tensor, Tensor]]:
    """(features, step mask) per modality, in the canonical L, V, A order."""
    return [(batch[MODALITY_FIELDS[m]], batch[f"{MODALITY_FIELDS[m]}_mask"]) for m in MODALITIES]


def modality_dropout(available: Tensor, rate: float, generator: torch.Generator | None = None) -> Tensor:
    """Drop each available modality with probability ``rate``, keeping at least one per sample.

    A method's own augmentation on top of the benchmark mask: it can only remove, never restore.
    """
    if rate <= 0:
        return available
    keep = torch.rand(available.shape, device=available.device, generator=generator) >= rate
    dropped = available & keep
    empty = ~dropped.any(dim=1)
    dropped[empty] = available[empty]  # never drop the last available modality
    return dropped
