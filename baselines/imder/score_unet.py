"""IMDer's diffusion parts: the VE-SDE (sigma = 25), its denoising score-matching loss, its
Euler-Maruyama sampler, and the conditional 1D U-Net score network.

Source: Wang et al., "Incomplete Multimodality-Diffused Emotion Recognition", NeurIPS 2023
(mdswyz/IMDer, ``trains/singleTask/model/scoremodel.py``), which follows Song et al.'s score-SDE
tutorial. Formulas carried over:

- SDE ``dx = sigma^t dw`` for t in [0, 1]; perturbation kernel N(x0, std(t)^2) with
  ``std(t) = sqrt((sigma^(2t) - 1) / (2 ln sigma))``; diffusion coefficient ``g(t) = sigma^t``.
- DSM loss: t ~ U(eps, 1), z ~ N(0, I), ``x_t = x0 + std(t) z``; loss
  ``mean_batch sum_dims (s(x_t, t) std(t) + z)^2`` (eps = 1e-5).
- Euler-Maruyama: ``x_1 ~ N(0, std(1)^2)``, times ``linspace(1, 1e-3, N)``, step
  ``x <- x + g^2 s(x, t) dt + sqrt(dt) g z``; the last mean (no noise) is returned.

Why not ``diffusers.ScoreSdeVeScheduler``: it discretises the *SMLD* VE-SDE, whose noise scale is
geometric between ``sigma_min`` and ``sigma_max`` (``sigma(t) = sigma_min (sigma_max/sigma_min)^t``)
and its predictor is the reverse-diffusion (ancestral) step on those discrete sigmas. IMDer's SDE has
``std(t)^2 = (sigma^(2t) - 1) / (2 ln sigma)`` (std(0) = 0, std(1) ~ 9.84 for sigma = 25) and samples
with a plain Euler-Maruyama step in ``g(t) = sigma^t``; neither the schedule nor the update matches,
so both are written here. diffusers' ``GaussianFourierProjection`` is used for the time embedding
(fixed random frequencies, scale 30, ``[sin, cos]``, as IMDer's).

U-Net adaptations (the original is 4 levels 32/64/128/256 with 2-layer MulT cross-modal encoders
at every level, the condition downsampled alongside by strided convolutions, and the two
available modalities merged by a 1x1 convolution, which needs equal lengths and one missing
pattern per batch): here the levels are configurable (``channels``), each level has one
multi-head cross-attention from the feature map to the condition *tokens* (the available
modalities' projected steps, concatenated along time, with a key padding mask and a learned
always-valid null token), so per-sample missing patterns and different modality lengths work;
sinusoidal positions are added to queries and keys. Lengths are zero-padded to a multiple of the
total stride and cropped back.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from diffusers.models.embeddings import GaussianFourierProjection
from torch import Tensor, nn

ScoreFn = Callable[[Tensor, Tensor], Tensor]  # (x_t, t) -> score, same shape as x_t


class VESDE:
    """IMDer's variance-exploding SDE ``dx = sigma^t dw`` (module docstring)."""

    def __init__(self, sigma: float = 25.0, train_eps: float = 1e-5, sample_eps: float = 1e-3):
        self.sigma = sigma
        self.train_eps = train_eps
        self.sample_eps = sample_eps

    def marginal_std(self, t: Tensor) -> Tensor:
        return torch.sqrt((self.sigma ** (2 * t) - 1.0) / (2.0 * math.log(self.sigma)))

    def diffusion_coeff(self, t: Tensor) -> Tensor:
        return self.sigma ** t

    def dsm_loss(self, score_fn: ScoreFn, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Denoising score matching on clean samples ``x0`` (B, ...): mean over B of the summed error."""
        t = torch.rand(x0.shape[0], device=x0.device, generator=generator) * (1.0 - self.train_eps) + self.train_eps
        z = torch.randn(x0.shape, device=x0.device, generator=generator, dtype=x0.dtype)
        std = _expand(self.marginal_std(t), x0)
        score = score_fn(x0 + z * std, t)
        return ((score * std + z) ** 2).flatten(1).sum(1).mean()

    @torch.no_grad()
    def euler_maruyama(self, score_fn: ScoreFn, shape: tuple[int, ...], steps: int, device,
                       generator: torch.Generator | None = None) -> Tensor:
        """Reverse-time Euler-Maruyama from N(0, std(1)^2) to t = ``sample_eps``; returns the last mean."""
        batch = shape[0]
        ones = torch.ones(batch, device=device)
        x = torch.randn(shape, device=device, generator=generator) * _expand(self.marginal_std(ones), torch.empty(shape))
        times = torch.linspace(1.0, self.sample_eps, max(steps, 1), device=device)
        step_size = times[0] - times[1] if steps > 1 else torch.tensor(1.0 - self.sample_eps, device=device)
        mean_x = x
        for time in times:
            t = ones * time
            g2 = _expand(self.diffusion_coeff(t) ** 2, x)
            mean_x = x + g2 * score_fn(x, t) * step_size
            x = mean_x + torch.sqrt(step_size * g2) * torch.randn(shape, device=device, generator=generator)
        return mean_x


def _expand(values: Tensor, like: Tensor) -> Tensor:
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def sinusoid(positions: Tensor, dim: int) -> Tensor:
    """Sinusoidal position features (..., dim) of float positions (...)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device) / max(half, 1))
    angles = positions.unsqueeze(-1).float() * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class ConditionAttention(nn.Module):
    """Cross-attention from a feature map (B, C, T) to condition tokens (B, S, d_cond)."""

    def __init__(self, channels: int, condition_dim: int, heads: int):
        super().__init__()
        self.keys = nn.Linear(condition_dim, channels)
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, h: Tensor, stride: int, tokens: Tensor, token_positions: Tensor, token_pad: Tensor) -> Tensor:
        channels = h.shape[1]
        query = h.transpose(1, 2) + sinusoid(torch.arange(h.shape[2], device=h.device) * stride, channels)
        keys = self.keys(tokens) + sinusoid(token_positions, channels)
        attended, _ = self.attention(query, keys, keys, key_padding_mask=token_pad, need_weights=False)
        return attended.transpose(1, 2)


class UNetLevel(nn.Module):
    """conv -> + cross-attention to the condition -> + time embedding -> GroupNorm -> swish."""

    def __init__(self, conv: nn.Module, channels: int, condition_dim: int, time_dim: int, heads: int):
        super().__init__()
        self.conv = conv
        self.condition = ConditionAttention(channels, condition_dim, heads)
        self.time = nn.Linear(time_dim, channels)
        self.norm = nn.GroupNorm(max(1, min(32, channels // 8)), channels)

    def forward(self, h: Tensor, stride: int, time: Tensor, condition: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        h = self.conv(h)
        h = h + self.condition(h, stride, *condition) + self.time(time).unsqueeze(-1)
        return nn.functional.silu(self.norm(h))


class ConditionalScoreUNet(nn.Module):
    """s_theta(x_t, t | condition) on projected features (B, T, d): 1D U-Net, cross-attention at every level.

    The output is divided by ``std(t)`` (IMDer's normalisation), so it estimates the score itself.
    """

    def __init__(self, feature_dim: int, condition_dim: int, sde: VESDE, channels: tuple[int, ...] = (32, 64, 128, 256),
                 time_embed_dim: int = 256, heads: int = 8):
        super().__init__()
        self.sde = sde
        self.time_embedding = nn.Sequential(
            GaussianFourierProjection(time_embed_dim // 2, scale=30.0, set_W_to_weight=False, log=False),
            nn.Linear(time_embed_dim, time_embed_dim), nn.SiLU())
        self.down = nn.ModuleList()
        for level, width in enumerate(channels):
            fan_in = feature_dim if level == 0 else channels[level - 1]
            conv = nn.Conv1d(fan_in, width, 3, stride=1 if level == 0 else 2, padding=1, bias=False)
            self.down.append(UNetLevel(conv, width, condition_dim, time_embed_dim, heads))
        self.up = nn.ModuleList()
        for level in range(len(channels) - 1, 0, -1):  # deepest first: channels[level] -> channels[level - 1]
            fan_in = channels[level] if level == len(channels) - 1 else 2 * channels[level]
            conv = nn.ConvTranspose1d(fan_in, channels[level - 1], 3, stride=2, padding=1, output_padding=1, bias=False)
            self.up.append(UNetLevel(conv, channels[level - 1], condition_dim, time_embed_dim, heads))
        last_in = channels[0] if len(channels) == 1 else 2 * channels[0]
        self.out = nn.Conv1d(last_in, feature_dim, 3, padding=1)
        self.null_token = nn.Parameter(torch.zeros(1, 1, condition_dim))
        self.total_stride = 2 ** (len(channels) - 1)

    def forward(self, x: Tensor, t: Tensor, tokens: Tensor, token_positions: Tensor, token_pad: Tensor) -> Tensor:
        """x (B, T, d); t (B,); condition tokens (B, S, d_c), their positions (S,) and padding (B, S) True=ignore."""
        length = x.shape[1]
        padded = math.ceil(length / self.total_stride) * self.total_stride
        h = nn.functional.pad(x.transpose(1, 2), (0, padded - length))  # (B, d, T')
        null = self.null_token.expand(len(x), 1, -1)
        condition = (torch.cat([null, tokens], 1),
                     torch.cat([token_positions.new_zeros(1), token_positions]),
                     torch.cat([token_pad.new_zeros(len(x), 1), token_pad], 1))
        time = self.time_embedding(t)
        skips = []
        for level, block in enumerate(self.down):
            h = block(h, 2 ** level, time, condition)
            skips.append(h)
        for index, block in enumerate(self.up):
            level = len(self.down) - 2 - index  # resolution this block upsamples to
            if index > 0:
                h = torch.cat([h, skips[level + 1]], 1)
            h = block(h, 2 ** level, time, condition)
        if len(self.down) > 1:
            h = torch.cat([h, skips[0]], 1)
        score = self.out(h)[:, :, :length].transpose(1, 2)
        return score / _expand(self.sde.marginal_std(t), score)
