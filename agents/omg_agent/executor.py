"""OMG-Agent's Retrieval-Injected Executor (paper Sec. 3.5-3.6, eq. 10-16): conditional latent diffusion.

* :class:`FeatureVAE`: a small VAE per modality on standardised utterance-level features, trained on the
  training split before the main model (a method stage) and then frozen; z_0 = its posterior mean times a
  scale that gives the training latents unit variance (Stable Diffusion's ``scaling_factor`` idea).
* :class:`Denoiser`: eps_theta(z_t, t; u_X, c_S, E, target). The latent becomes ``n_tokens`` tokens; t,
  u_X and the target-modality embedding are added to every token; residual MLP blocks follow. In the
  paper's ``hierarchical`` injection the shallow half of the blocks receive E through zero-initialised
  adapters (eq. 13; at initialisation they add exactly 0) and the deep half receive c_S by
  cross-attention (eq. 12). Ablations (Appendix D, Table 4): ``concat`` ([c_S; E] by cross-attention in
  every block), ``reversed`` (c_S by adapters in shallow blocks, E by cross-attention in deep ones),
  ``single_stream`` (E in the shallow blocks only, no c_S).
* :class:`LatentDiffusion`: diffusers' ``DDPMScheduler`` for the forward process and training,
  ``DDIMScheduler`` (same betas, eta = 0, no clipping of the latents) for few-step sampling;
  :func:`tweedie_z0` is eq. (16).

One executor serves the three target modalities: it is conditioned on a learned target-modality
embedding, with one VAE per modality mapping into a shared latent width. When several modalities are
missing each is generated independently from the observation (never from another generated one).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler
from torch import Tensor, nn

INJECTIONS = ("hierarchical", "concat", "reversed", "single_stream")


class FeatureVAE(nn.Module):
    """x (B, D) -> z (B, d_z) -> x_hat (B, D); Gaussian posterior, standard normal prior."""

    def __init__(self, input_dim: int, latent_dim: int = 16, hidden_dim: int = 128):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, 2 * latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, input_dim))
        self.register_buffer("scale", torch.ones(()))  # z_0 = scale * posterior mean

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_var = self.encoder(x).chunk(2, dim=-1)
        return mean, log_var.clamp(-10, 10)

    def encode(self, x: Tensor) -> Tensor:
        return self.posterior(x)[0] * self.scale

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z / self.scale)

    def loss(self, x: Tensor, kl_weight: float = 1e-3) -> Tensor:
        mean, log_var = self.posterior(x)
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        kl = -0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum(-1).mean()
        return F.mse_loss(self.decoder(z), x) + kl_weight * kl


class ZeroAdapter(nn.Module):
    """h + up(GELU(down([h ; cond]))) with ``up`` initialised to zero: the identity at initialisation."""

    def __init__(self, hidden_dim: int, cond_dim: int):
        super().__init__()
        self.down = nn.Linear(hidden_dim + cond_dim, hidden_dim)
        self.up = nn.Linear(hidden_dim, hidden_dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: Tensor, cond: Tensor) -> Tensor:  # hidden (B, n, H), cond (B, C)
        cond = cond.unsqueeze(1).expand(-1, hidden.shape[1], -1)
        return hidden + self.up(F.gelu(self.down(torch.cat([hidden, cond], dim=-1))))


class CrossAttention(nn.Module):
    """h + CA(LN(h), context), the context being ``n_context`` tokens projected from the condition."""

    def __init__(self, hidden_dim: int, cond_dim: int, n_context: int = 4, heads: int = 4):
        super().__init__()
        self.n_context = n_context
        self.context = nn.Linear(cond_dim, n_context * hidden_dim)
        self.norm = nn.LayerNorm(hidden_dim)
        self.attention = nn.MultiheadAttention(hidden_dim, heads, batch_first=True)

    def forward(self, hidden: Tensor, cond: Tensor) -> Tensor:
        context = self.context(cond).view(cond.shape[0], self.n_context, -1)  # (B, n_ctx, H)
        attended, _ = self.attention(self.norm(hidden), context, context, need_weights=False)
        return hidden + attended


class ResidualBlock(nn.Module):
    def __init__(self, hidden_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.LayerNorm(hidden_dim), nn.Linear(hidden_dim, 2 * hidden_dim), nn.GELU(),
                                 nn.Linear(2 * hidden_dim, hidden_dim))

    def forward(self, hidden: Tensor) -> Tensor:
        return hidden + self.mlp(hidden)


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float().unsqueeze(1) * freqs.unsqueeze(0)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class Denoiser(nn.Module):
    """eps_theta(z_t, t; u_X, c_S, E, target) with the dual-conditioning injection of eq. (12)-(13)."""

    def __init__(self, latent_dim: int, observation_dim: int, plan_dim: int, evidence_dim: int,
                 hidden_dim: int = 64, n_tokens: int = 4, n_blocks: int = 4, n_targets: int = 3,
                 injection: str = "hierarchical"):
        super().__init__()
        if injection not in INJECTIONS:
            raise ValueError(f"unknown injection {injection!r}; choose from {', '.join(INJECTIONS)}")
        self.injection, self.n_tokens, self.hidden_dim = injection, n_tokens, hidden_dim
        self.inp = nn.Linear(latent_dim, n_tokens * hidden_dim)
        self.time = nn.Sequential(nn.Linear(hidden_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim))
        self.observation = nn.Linear(observation_dim, hidden_dim)
        self.target = nn.Embedding(n_targets, hidden_dim)
        self.blocks = nn.ModuleList(ResidualBlock(hidden_dim) for _ in range(n_blocks))
        shallow = n_blocks // 2
        self.shallow_layers = list(range(shallow))
        self.deep_layers = list(range(shallow, n_blocks))
        injections = {}
        for layer in range(n_blocks):
            is_shallow = layer < shallow
            if injection == "hierarchical":
                injections[str(layer)] = ZeroAdapter(hidden_dim, evidence_dim) if is_shallow \
                    else CrossAttention(hidden_dim, plan_dim)
            elif injection == "reversed":
                injections[str(layer)] = ZeroAdapter(hidden_dim, plan_dim) if is_shallow \
                    else CrossAttention(hidden_dim, evidence_dim)
            elif injection == "concat":
                injections[str(layer)] = CrossAttention(hidden_dim, plan_dim + evidence_dim)
            elif is_shallow:  # single_stream: evidence only
                injections[str(layer)] = ZeroAdapter(hidden_dim, evidence_dim)
        self.injections = nn.ModuleDict(injections)
        self.out = nn.Sequential(nn.LayerNorm(hidden_dim), nn.Flatten(1), nn.Linear(n_tokens * hidden_dim, latent_dim))

    def _condition(self, layer: int, plan: Tensor, evidence: Tensor) -> Tensor:
        is_shallow = layer in self.shallow_layers
        if self.injection == "concat":
            return torch.cat([plan, evidence], dim=-1)
        if self.injection == "reversed":
            return plan if is_shallow else evidence
        return evidence if is_shallow else plan

    def forward(self, z_t: Tensor, t: Tensor, observation: Tensor, plan: Tensor, evidence: Tensor,
                target: Tensor) -> Tensor:
        hidden = self.inp(z_t).view(z_t.shape[0], self.n_tokens, self.hidden_dim)  # (B, n, H)
        shared = self.time(timestep_embedding(t, self.hidden_dim)) + self.observation(observation) + self.target(target)
        hidden = hidden + shared.unsqueeze(1)
        for layer, block in enumerate(self.blocks):
            hidden = block(hidden)
            if str(layer) in self.injections:
                hidden = self.injections[str(layer)](hidden, self._condition(layer, plan, evidence))
        return self.out(hidden)


def tweedie_z0(z_t: Tensor, eps_hat: Tensor, alphas_cumprod: Tensor, t: Tensor) -> Tensor:
    """Eq. (16): z0_hat = (z_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)."""
    abar = alphas_cumprod.to(z_t.device)[t].view(-1, *([1] * (z_t.dim() - 1)))
    return (z_t - (1 - abar).sqrt() * eps_hat) / abar.sqrt()


class LatentDiffusion(nn.Module):
    """Noise schedule (DDPM), training terms and DDIM sampling around a :class:`Denoiser`."""

    def __init__(self, denoiser: Denoiser, train_timesteps: int = 1000):
        super().__init__()
        self.denoiser = denoiser
        # clip_sample=False: diffusers' default clips to [-1, 1] (images); these latents have unit std.
        self.scheduler = DDPMScheduler(num_train_timesteps=train_timesteps, beta_schedule="squaredcos_cap_v2",
                                       clip_sample=False)
        self.register_buffer("alphas_cumprod", self.scheduler.alphas_cumprod.clone().float(), persistent=False)

    def add_noise(self, z0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        abar = self.alphas_cumprod[t].view(-1, *([1] * (z0.dim() - 1)))
        return abar.sqrt() * z0 + (1 - abar).sqrt() * noise

    def training_terms(self, z0: Tensor, conditions: dict, generator: torch.Generator | None = None):
        """(noise, predicted noise, z_t, t) for a random t per sample."""
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (z0.shape[0],), generator=generator)
        t = t.to(z0.device)
        noise = torch.randn(z0.shape, generator=generator).to(z0.device)
        z_t = self.add_noise(z0, noise, t)
        return noise, self.denoiser(z_t, t, **conditions), z_t, t

    def tweedie(self, z_t: Tensor, eps_hat: Tensor, t: Tensor) -> Tensor:
        return tweedie_z0(z_t, eps_hat, self.alphas_cumprod, t)

    @torch.no_grad()
    def sample(self, shape: tuple[int, int], conditions: dict, steps: int, generator: torch.Generator,
               device) -> Tensor:
        """z_0* by DDIM (eta = 0) in ``steps`` steps from z_T ~ N(0, I) drawn with ``generator``.

        No clipping (the paper clips nowhere; the Tweedie estimate of training is not clipped either).
        """
        sampler = DDIMScheduler.from_config(self.scheduler.config)  # inherits clip_sample=False
        sampler.set_timesteps(steps)
        z = torch.randn(shape, generator=generator).to(device)
        for t in sampler.timesteps:
            t_batch = torch.full((shape[0],), int(t), device=device, dtype=torch.long)
            eps = self.denoiser(z, t_batch, **conditions)
            z = sampler.step(eps, int(t), z, eta=0.0).prev_sample
        return z
