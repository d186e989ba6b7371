"""Per-modality projection of (standardised, pooled) features into the LLM's embedding space."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def segment_pool(features: Tensor, step_mask: Tensor, positions: int) -> tuple[Tensor, Tensor]:
    """Masked mean over ``positions`` equal segments of the time axis: (B, T, D) -> (B, min(T, positions), D).

    Returns the pooled features and which segments held at least one observed step (B, P).
    """
    steps = features.shape[1]
    count = min(steps, positions)
    segment = torch.div(torch.arange(steps, device=features.device) * count, steps, rounding_mode="floor")  # (T,)
    one_hot = F.one_hot(segment, count).to(features.dtype)  # (T, P)
    weights = one_hot.unsqueeze(0) * step_mask.unsqueeze(-1).to(features.dtype)  # (B, T, P)
    totals = weights.sum(1)  # (B, P)
    pooled = torch.einsum("btp,btd->bpd", weights, features) / totals.clamp_min(1.0).unsqueeze(-1)
    return pooled, totals > 0


class SafeBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm that falls back to its running statistics when a training batch has one value per channel
    (a modality available in a single sample with a single position)."""

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.numel() // x.shape[1] < 2:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


class ModalityProjector(nn.Module):
    """Conv1d(k=1)-BN-ReLU-Dropout-Conv1d(k=1)-BN over positions, as the original's ``feature_to_llm``."""

    def __init__(self, input_dim: int, hidden_size: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv1d(input_dim, hidden_size, kernel_size=1), SafeBatchNorm1d(hidden_size), nn.ReLU(),
            nn.Dropout(dropout), nn.Conv1d(hidden_size, hidden_size, kernel_size=1), SafeBatchNorm1d(hidden_size))

    def forward(self, features: Tensor) -> Tensor:
        """(N, P, D) -> (N, P, H)."""
        return self.layers(features.transpose(1, 2)).transpose(1, 2)
