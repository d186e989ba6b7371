"""IMDer's non-diffusion parts: the MulT-style cross-modal transformer backbone and the RCAN-style
refinement network (Wang et al., NeurIPS 2023, mdswyz/IMDer; MulT: Tsai et al., ACL 2019).

Facts carried over: d = 32 per modality, 8 heads; for each target modality two cross-modal
transformers (queries from the target, keys/values from each other modality) with ``nlevels``
layers, their outputs concatenated (2d) and read by a self-attention "memory" transformer with
``max(nlevels, 3)`` layers; the three summaries (6d) go through a residual two-layer projection and
a linear output. Pre-LayerNorm layers with 4x feed-forward, input scaled by sqrt(d) plus sinusoidal
positions (MulT). The refinement net is RCAN's residual group: 1x1 conv d -> 2d, ``blocks``
residual channel-attention blocks (conv3-ReLU-conv3, squeeze-excitation with reduction 16) and a
conv, a group residual, 1x1 conv back to d.

Adaptations: MulT summarises each branch by its last time step; padded sequences make that a
padding step here, so the summary is the masked mean over valid steps; key padding masks are used
throughout (MulT has none).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from baselines.imder.score_unet import sinusoid
from mmbench.layers import masked_mean


class CrossmodalLayer(nn.Module):
    """Pre-LN attention from ``query`` to ``source`` plus a 4x feed-forward, both residual."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.norm_query, self.norm_source, self.norm_ff = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.feed_forward = nn.Sequential(nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: Tensor, source: Tensor | None, source_pad: Tensor) -> Tensor:
        q = self.norm_query(query)
        kv = q if source is None else self.norm_source(source)
        attended, _ = self.attention(q, kv, kv, key_padding_mask=source_pad, need_weights=False)
        query = query + self.dropout(attended)
        return query + self.dropout(self.feed_forward(self.norm_ff(query)))


class CrossmodalTransformer(nn.Module):
    """MulT's TransformerEncoder: ``source=None`` makes it self-attention (the memory transformer)."""

    def __init__(self, dim: int, heads: int, layers: int, dropout: float):
        super().__init__()
        self.dim = dim
        self.layers = nn.ModuleList(CrossmodalLayer(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def embed(self, x: Tensor) -> Tensor:
        positions = sinusoid(torch.arange(1, x.shape[1] + 1, device=x.device), self.dim)
        return self.dropout(math.sqrt(self.dim) * x + positions)

    def forward(self, query: Tensor, query_pad: Tensor, source: Tensor | None = None,
                source_pad: Tensor | None = None) -> Tensor:
        h = self.embed(query)
        kv = None if source is None else self.embed(source)
        pad = query_pad if source is None else source_pad
        for layer in self.layers:
            h = layer(h, kv, _never_empty(pad))
        return self.norm(h)


def _never_empty(pad: Tensor) -> Tensor:
    """A row with every key padded would give NaNs: let such a row attend to its (zero) first step."""
    pad = pad.clone()
    pad[pad.all(1), 0] = False
    return pad


class MulTBackbone(nn.Module):
    """Three projected sequences (B, T_m, d) with step masks -> (B,) prediction."""

    def __init__(self, dim: int, heads: int, layers: int, dropout: float, output_dropout: float, label_mean: float):
        super().__init__()
        self.cross = nn.ModuleList(nn.ModuleList(CrossmodalTransformer(dim, heads, layers, dropout) for _ in range(2))
                                   for _ in range(3))
        self.memory = nn.ModuleList(CrossmodalTransformer(2 * dim, heads, max(layers, 3), dropout) for _ in range(3))
        combined = 6 * dim
        self.proj1, self.proj2 = nn.Linear(combined, combined), nn.Linear(combined, combined)
        self.output_dropout = nn.Dropout(output_dropout)
        self.out = nn.Linear(combined, 1)
        nn.init.constant_(self.out.bias, label_mean)

    def forward(self, sequences: list[Tensor], step_masks: list[Tensor]) -> Tensor:
        summaries = []
        for target in range(3):
            sources = [s for s in range(3) if s != target]
            pad = ~step_masks[target]
            branches = [transformer(sequences[target], pad, sequences[s], ~step_masks[s])
                        for transformer, s in zip(self.cross[target], sources)]
            memory = self.memory[target](torch.cat(branches, -1), pad)
            summaries.append(masked_mean(memory, step_masks[target]))
        joint = torch.cat(summaries, -1)
        residual = self.proj2(self.output_dropout(torch.relu(self.proj1(joint))))
        return self.out(joint + residual).squeeze(-1)


class ChannelAttention(nn.Module):
    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Conv1d(channels, hidden, 1), nn.ReLU(),
                                  nn.Conv1d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)


class ResidualChannelAttentionBlock(nn.Module):
    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv1d(channels, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv1d(channels, channels, 3, padding=1), ChannelAttention(channels, reduction))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class RefinementNet(nn.Module):
    """RCAN residual group between 1x1 convolutions: (B, T, d) sampled features -> refined features."""

    def __init__(self, dim: int, blocks: int = 20, reduction: int = 16):
        super().__init__()
        width = 2 * dim
        self.expand = nn.Conv1d(dim, width, 1)
        self.group = nn.Sequential(*[ResidualChannelAttentionBlock(width, reduction) for _ in range(blocks)],
                                   nn.Conv1d(width, width, 3, padding=1))
        self.reduce = nn.Conv1d(width, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.expand(x.transpose(1, 2))
        return self.reduce(h + self.group(h)).transpose(1, 2)
