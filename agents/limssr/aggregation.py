"""Mask-aware dual-path aggregation of the LLM's last hidden states into two score heads.

Path 1 (:class:`FusionTokenPath`) reads the K fusion tokens: a softmax over learned role weights,
LayerNorm, then a mask-aware gated refinement ``f + sigmoid(W[f, m]) * MLP([f, m])`` with the
availability flags m. Path 2 (:class:`ModalitySpanPath`) mean-pools each modality's span, normalises
it per modality, attends across the three modality vectors, weights them by a softmax gate and
multiplies missing ones by a learned confidence ``sigmoid(c_m)`` (c_m starts at 0.6 as in the original).
:class:`DualPathAggregator` mixes the two heads with a learned weight w1 (starts at 0.7).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from mmbench.constants import MODALITIES


def score_head(hidden_size: int, dropout: float, initial_score: float) -> nn.Sequential:
    """Linear-LN-GELU-Dropout-Linear to one logit; sigmoid of it is a score in [0, 1].

    The last bias starts at ``logit(initial_score)`` (the normalised training mean): an adaptation
    so that early epochs are not spent learning the offset.
    """
    head = nn.Sequential(nn.Linear(hidden_size, hidden_size // 2), nn.LayerNorm(hidden_size // 2), nn.GELU(),
                         nn.Dropout(dropout), nn.Linear(hidden_size // 2, 1))
    score = min(max(initial_score, 1e-3), 1 - 1e-3)
    nn.init.constant_(head[-1].bias, float(torch.logit(torch.tensor(score))))
    return head


class FusionTokenPath(nn.Module):
    """Path 1: fusion tokens -> role-weighted sum -> LayerNorm -> mask-aware gated refinement."""

    def __init__(self, hidden_size: int, n_tokens: int, dropout: float):
        super().__init__()
        n_flags = len(MODALITIES)
        self.role_weight = nn.Parameter(torch.ones(n_tokens))
        self.norm = nn.LayerNorm(hidden_size)
        self.refine = nn.Sequential(nn.Linear(hidden_size + n_flags, hidden_size), nn.GELU(), nn.Dropout(dropout),
                                    nn.Linear(hidden_size, hidden_size))
        self.refine_gate = nn.Sequential(nn.Linear(hidden_size + n_flags, hidden_size), nn.Sigmoid())

    def forward(self, fusion_states: Tensor, available: Tensor) -> Tensor:
        """(B, K, H), (B, 3) -> (B, H)."""
        weights = torch.softmax(self.role_weight, dim=0)
        fused = self.norm((fusion_states * weights.view(1, -1, 1)).sum(1))
        condition = torch.cat([fused, available.to(fused.dtype)], dim=-1)
        return fused + self.refine_gate(condition) * self.refine(condition)


class ModalitySpanPath(nn.Module):
    """Path 2: per-modality span means -> LayerNorm -> attention across modalities -> gate -> confidence."""

    def __init__(self, hidden_size: int, dropout: float, heads: int = 4, initial_confidence: float = 0.6):
        super().__init__()
        n = len(MODALITIES)
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_size) for _ in MODALITIES)
        self.attention = nn.MultiheadAttention(hidden_size, heads, dropout=dropout, batch_first=True)
        self.gate = nn.Sequential(nn.Linear(hidden_size * n, hidden_size), nn.GELU(), nn.Linear(hidden_size, n),
                                  nn.Softmax(dim=-1))
        self.missing_confidence = nn.Parameter(torch.full((n,), initial_confidence))

    def forward(self, span_means: list[Tensor], available: Tensor) -> Tensor:
        """3 x (B, H) span means in L, V, A order, (B, 3) flags -> (B, H)."""
        modal = torch.stack([norm(x) for norm, x in zip(self.norms, span_means)], dim=1)  # (B, 3, H)
        attended, _ = self.attention(modal, modal, modal, need_weights=False)
        weighted = attended * self.gate(modal.flatten(1)).unsqueeze(-1)
        flags = available.to(weighted.dtype)
        confidence = flags + (1 - flags) * torch.sigmoid(self.missing_confidence).to(weighted.dtype)
        return (weighted * confidence.unsqueeze(-1)).sum(1)


class DualPathAggregator(nn.Module):
    """Both paths, their score heads (sigmoid, normalised scores) and the learned mixture."""

    def __init__(self, hidden_size: int, n_tokens: int, dropout: float, initial_score: float,
                 initial_mixture: float = 0.7):
        super().__init__()
        self.token_path = FusionTokenPath(hidden_size, n_tokens, dropout)
        self.span_path = ModalitySpanPath(hidden_size, dropout)
        self.main_head = score_head(hidden_size, dropout, initial_score)
        self.aux_head = score_head(hidden_size, dropout, initial_score)
        self.mixture = nn.Parameter(torch.tensor(initial_mixture))

    def forward(self, fusion_states: Tensor, span_means: list[Tensor], available: Tensor) -> dict[str, Tensor]:
        main = torch.sigmoid(self.main_head(self.token_path(fusion_states, available)).squeeze(-1))
        aux = torch.sigmoid(self.aux_head(self.span_path(span_means, available)).squeeze(-1))
        return {"score": self.mixture * main + (1 - self.mixture) * aux, "main": main, "aux": aux}
