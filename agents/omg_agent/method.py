"""OMG-Agent as an mmbench method: Planner -> Retriever -> diffusion Executor, trained with eq. (14)-(18).

Paper: R. Dai et al., "OMG-Agent: Toward Robust Missing Modality Generation with Decoupled Coarse-to-Fine
Agentic Workflows" (../shared/papers/omg-agent.md; no public code was reachable). Reimplemented from the
text: Sec. 3 (method), 4.1 (settings), 4.3 and Appendix D (ablations), Appendix A (hyperparameters).

Per training batch (complete training data, or ``same`` with ``full_<field>`` targets): a pattern is drawn per
sample among the 7 (the method's own augmentation), the batch is masked to it, and for each missing
modality m of each sample:

1. Planner: the observation (transcript if L is kept, else a description of the kept V/A features) ->
   cached LLM plan S* -> c_S = g(S*) (``planner.py``).
2. Retriever: q from [u_X ; c_S], top-K training entries by cosine / kappa, E = softmax-weighted values,
   C_evi (``retriever.py``); the sample's own entry is excluded.
3. Executor: z_0 = VAE_m(y_m), noise MSE at a random t, Tweedie z0_hat -> y_hat = VAE_m^-1(z0_hat);
   L_plan = 1 - cos(psi_m(y_hat), c_S), L_evi = |y_hat - A_m(E)|_1 (``executor.py``).

The regressor reads Fusion(u_X, generated features) (observed modalities as given, missing ones from
z0_hat) and gives L_task. L_total = L_noise + lambda_p L_plan + lambda_e L_evi + lambda_task L_task
(+ lambda_align L_align, below). At inference each missing modality is sampled by DDIM from z_T.

Adaptations, and choices where the paper is silent:
* Regression head + L1 loss instead of cross-entropy classification (benchmark-wide rule).
* Everything is utterance level: each modality is the time average of its observed steps, standardised
  with the training statistics; recovered features are returned as (B, D) in the input space.
* psi (the observation encoder, "aligned with g"): per-modality MLP encoders + an MLP into g's 384-d
  space, aligned by L_align = 1 - cos(psi(X), g(transcript)) on training samples with a transcript
  (weight ``lambda_align``, not in the paper). psi_m(y) = psi with only modality m present serves as g(Y_hat)
  in L_plan (g is a text encoder; the paper applies it to generated signals without saying how).
* phi in L_evi is the identity on standardised features; A is a learned linear map per modality.
* The VAEs are trained first (``vae_epochs``) on the training loader and frozen.
* C_evi is computed and logged (it ranks evidence in eq. 3) but, as in eq. (15), not added to the loss.
* The knowledge base is filled at fit start; a model never fitted has none and uses E = 0.
* ``use_planner=False`` (w/o Planner): c_S is unit-norm Gaussian noise, as Appendix A says.
* ``lambda_task=0`` (w/o L_task): the generated features reach the regressor detached, so the executor gets
  no task gradient; the regressor itself is still trained (otherwise nothing would predict).
* ``task_input="noisy"`` (Direct Classification): the task head reads VAE^-1(z_t) instead of Tweedie's z0_hat.
* Inference averages ``generation_samples`` (8) DDIM draws per missing modality, decoded. One draw from
  p(y | x) errs by twice the conditional variance on average, so where the observation says little about
  the missing modality a single draw is further from the truth than zero-imputation; the average estimates
  E[y | x], as the Tweedie estimate the task head reads during training does. ``generation_samples: 1`` is
  the paper's single draw.
* Default epochs come from the runner (``--max-epochs``); sizes (hidden 64, latent 16, 4 blocks) are
  small so a fixed-protocol run stays within minutes on 2 CPU cores (the paper gives no sizes).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import move_data_to_device
from torch import Tensor, nn

from mmbench.augment import complete_view, drop_modalities, random_patterns
from mmbench.constants import MODALITIES, PATTERNS, pattern_to_available
from mmbench.data.datamodule import DataInfo
from mmbench.data.text_encoder import EMBEDDING_DIM
from mmbench.layers import FeatureStandardizer, masked_mean, modality_inputs
from mmbench.method import MMBenchMethod
from mmbench.stages import fit_stage, outer_accelerator

from agents.omg_agent.executor import Denoiser, FeatureVAE, LatentDiffusion
from agents.omg_agent.planner import DEFAULT_PLANNER, ObservationDescriber, PlanBook, embed_texts
from agents.omg_agent.retriever import EvidenceRetriever, KnowledgeBase


def _cache_dir() -> Path:
    from mmbench.data.loading import default_data_dir

    return default_data_dir()


class ObservationEncoder(nn.Module):
    """psi: utterance vectors of the available modalities -> u_X in g's 384-d space."""

    def __init__(self, dims: dict[str, int], hidden_dim: int, out_dim: int = EMBEDDING_DIM, dropout: float = 0.1):
        super().__init__()
        self.encoders = nn.ModuleDict({m: nn.Sequential(nn.Linear(dims[m], hidden_dim), nn.GELU()) for m in MODALITIES})
        self.head = nn.Sequential(nn.Linear(len(MODALITIES) * (hidden_dim + 1), 2 * hidden_dim), nn.GELU(),
                                  nn.Dropout(dropout), nn.Linear(2 * hidden_dim, out_dim))

    def forward(self, utterances: dict[str, Tensor], available: Tensor) -> Tensor:
        parts = []
        for position, m in enumerate(MODALITIES):
            keep = available[:, position].unsqueeze(1).to(utterances[m].dtype)
            parts += [self.encoders[m](utterances[m]) * keep, keep]
        return self.head(torch.cat(parts, dim=1))

    def single(self, modality: str, features: Tensor) -> Tensor:
        """psi_m: the embedding of one modality alone (the g(Y_hat) of L_plan)."""
        available = torch.zeros(features.shape[0], len(MODALITIES), dtype=torch.bool, device=features.device)
        available[:, MODALITIES.index(modality)] = True
        zeros = {m: features if m == modality else features.new_zeros(features.shape[0], self.encoders[m][0].in_features)
                 for m in MODALITIES}
        return self(zeros, available)


class OMGAgent(MMBenchMethod):
    """OMG-Agent (Planner -> Retriever -> latent-diffusion Executor) with a regression head.

    Args:
        data: data facts, filled by the runner.
        top_k: K, retrieved entries (paper 10).
        temperature: kappa of the retrieval softmax (paper 0.07).
        n_candidates: |Omega|, plan candidates (paper 5).
        lambda_s: weight of C_sem in plan re-ranking (paper 0.3).
        gamma: weight of the schema penalty (paper 0.1; unparsable plans are discarded).
        lambda_p: weight of L_plan (paper 0.1).
        lambda_e: weight of L_evi (paper 0.1).
        lambda_task: weight of L_task (paper 0.1).
        lambda_align: weight of psi's alignment with g (not in the paper; see the module docstring).
        planner_model: causal LM of the planner: ``smollm2`` (offline default), a hub id or a local path.
        use_planner: False = ablation w/o Planner (c_S is Gaussian noise).
        rerank: False = ablation w/o re-ranking (first parsable candidate).
        use_retriever: False = ablation w/o Retriever (E = 0, no L_evi).
        weighting: ``softmax`` (eq. 8) or ``mean`` (ablation w/o sparse attention).
        query_mode: ``plan`` | ``content`` (content-only retrieval) | ``random_plan``.
        injection: ``hierarchical`` | ``concat`` | ``reversed`` | ``single_stream``.
        task_input: ``tweedie`` (eq. 16) or ``noisy`` (ablation: Direct Classification on the noisy state).
        hidden_dim, latent_dim, key_dim, n_blocks: sizes of the encoders, VAE latent, retrieval keys, denoiser.
        train_timesteps: DDPM training steps T.
        sampling_steps: DDIM steps at inference.
        generation_samples: DDIM draws per missing modality at inference, averaged (1 = the paper's one draw).
        vae_epochs: epochs of the VAE stage before the main fit.
        dropout: dropout of psi and the regressor.
        lr, weight_decay, lr_patience, batch_size: Adam 2e-3, halving after 10 flat validation epochs, 32 (MOSI).
    """

    supported_train_settings = ("complete", "same")
    quick_profile = {"n_candidates": 1, "sampling_steps": 5, "vae_epochs": 2}

    def __init__(self, data: DataInfo, top_k: int = 10, temperature: float = 0.07, n_candidates: int = 5,
                 lambda_s: float = 0.3, gamma: float = 0.1, lambda_p: float = 0.1, lambda_e: float = 0.1,
                 lambda_task: float = 0.1, lambda_align: float = 0.1, planner_model: str = DEFAULT_PLANNER,
                 use_planner: bool = True, rerank: bool = True, use_retriever: bool = True,
                 weighting: str = "softmax", query_mode: str = "plan", injection: str = "hierarchical",
                 task_input: str = "tweedie", hidden_dim: int = 64, latent_dim: int = 16, key_dim: int = 128,
                 n_blocks: int = 4, train_timesteps: int = 1000, sampling_steps: int = 10,
                 generation_samples: int = 8, vae_epochs: int = 10,
                 dropout: float = 0.1, lr: float = 2e-3, weight_decay: float = 0.0, lr_patience: int = 10,
                 batch_size: int = 32):
        super().__init__(data)
        self.save_hyperparameters(ignore=["data"])
        if task_input not in ("tweedie", "noisy"):
            raise ValueError(f"task_input must be 'tweedie' or 'noisy', not {task_input!r}")
        dims = data.dims
        self.standardizers = nn.ModuleDict({m: FeatureStandardizer(*data.feature_stats[m]) for m in MODALITIES})
        self.describer = ObservationDescriber(data.feature_stats)
        self.plan_book = PlanBook(planner_model, n_candidates, lambda_s, gamma, rerank, _cache_dir())
        self.psi = ObservationEncoder(dims, hidden_dim, dropout=dropout)
        self.vaes = nn.ModuleDict({m: FeatureVAE(dims[m], latent_dim, 2 * hidden_dim) for m in MODALITIES})
        self.retrievers = nn.ModuleDict({m: EvidenceRetriever(EMBEDDING_DIM, EMBEDDING_DIM, key_dim, top_k, temperature,
                                                              weighting, query_mode) for m in MODALITIES})
        self.bases = nn.ModuleDict({m: KnowledgeBase() for m in MODALITIES})
        evidence_dim = max(dims.values())  # values are zero-padded to a shared width
        self.diffusion = LatentDiffusion(Denoiser(latent_dim, EMBEDDING_DIM, EMBEDDING_DIM, evidence_dim, hidden_dim,
                                                  n_blocks=n_blocks, injection=injection), train_timesteps)
        self.evidence_heads = nn.ModuleDict({m: nn.Linear(evidence_dim, dims[m]) for m in MODALITIES})  # A(E)
        self.task_encoders = nn.ModuleDict({m: nn.Sequential(nn.Linear(dims[m], hidden_dim), nn.GELU())
                                            for m in MODALITIES})
        self.regressor = nn.Sequential(nn.Linear(EMBEDDING_DIM + len(MODALITIES) * (hidden_dim + 1), hidden_dim),
                                       nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_dim, 1))
        self.evidence_dim = evidence_dim
        self.rebuild_seconds: list[float] = []  # wall time of each index rebuild (3 modalities)

    # ------------------------------------------------------------------ shared pieces
    def utterances(self, batch: dict) -> dict[str, Tensor]:
        """Standardised time averages of the observed steps, (B, D_m) per modality (zeros when removed)."""
        out = {}
        for m, (features, step_mask) in zip(MODALITIES, modality_inputs(batch)):
            standard = self.standardizers[m](features.float(), step_mask)
            out[m] = masked_mean(standard, step_mask) * step_mask.any(1, keepdim=True)
        return out

    def plan_vectors(self, batch: dict) -> Tensor:
        """c_S (B, 384) for the batch's observations (cached LLM plans), or noise without a planner."""
        size = batch["available"].shape[0]
        device = batch["available"].device
        if not self.hparams.use_planner:
            generator = torch.Generator().manual_seed(int(self.global_step) if self.training else 0)
            return F.normalize(torch.randn(size, EMBEDDING_DIM, generator=generator), dim=1).to(device)
        observations = self.describer.describe(batch)
        return torch.from_numpy(self.plan_book.embed(observations)).to(device)

    def evidence(self, m: str, observation: Tensor, plan: Tensor, ids: list[str],
                 generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """(E (B, evidence_dim), C_evi (B,)) from the training base of modality m; zeros without one."""
        base = self.bases[m]
        if not self.hparams.use_retriever or len(base) == 0 or base.index is None:
            zeros = observation.new_zeros(observation.shape[0])
            return observation.new_zeros(observation.shape[0], self.evidence_dim), zeros
        evidence, cost, _ = self.retrievers[m](base, observation, plan, base.rows_of(ids).to(observation.device),
                                               generator)
        return evidence, cost

    def predict_score(self, observation: Tensor, completed: dict[str, Tensor], available: Tensor) -> Tensor:
        parts = [observation]
        for position, m in enumerate(MODALITIES):
            parts += [self.task_encoders[m](completed[m]), available[:, position:position + 1].float()]
        return self.scale_to_label_range(self.regressor(torch.cat(parts, dim=1)).squeeze(-1))

    def conditions(self, m: str, observation: Tensor, plan: Tensor, evidence: Tensor) -> dict:
        target = torch.full((observation.shape[0],), MODALITIES.index(m), device=observation.device, dtype=torch.long)
        return {"observation": observation, "plan": plan, "evidence": evidence, "target": target}

    def missing_modalities(self, ids: list[str], available: Tensor, observation: Tensor, plan: Tensor,
                           generator: torch.Generator):
        """For each modality some rows miss: (m, rows, evidence E, C_evi, denoiser conditions) of those rows.

        Lazy, so each modality's evidence draws from ``generator`` right before its caller's diffusion does.
        """
        for position, m in enumerate(MODALITIES):
            rows = torch.nonzero(~available[:, position]).flatten()
            if len(rows) == 0:
                continue
            row_ids = [ids[i] for i in rows.tolist()]
            evidence, evidence_cost = self.evidence(m, observation[rows], plan[rows], row_ids, generator)
            yield m, rows, evidence, evidence_cost, self.conditions(m, observation[rows], plan[rows], evidence)

    # ------------------------------------------------------------------ inference
    def complete(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        """(prediction (B,), standardised utterance features with every missing modality generated)."""
        available = batch["available"].bool()
        utterances = self.utterances(batch)
        observation = self.psi(utterances, available)
        plan = self.plan_vectors(batch)
        completed = dict(utterances)
        generator = torch.Generator().manual_seed(0)  # same input, same generation
        for m, rows, _, _, conditions in self.missing_modalities(batch["id"], available, observation, plan, generator):
            generated = completed[m].clone()
            generated[rows] = self.generate(m, conditions, generator)
            completed[m] = generated
        return self.predict_score(observation, completed, available), completed

    def generate(self, m: str, conditions: dict, generator: torch.Generator | None) -> Tensor:
        """Standardised utterance features of ``m`` for the rows of ``conditions``: the mean of
        ``generation_samples`` DDIM draws, each decoded by the modality's VAE."""
        draws = self.hparams.generation_samples
        rows = conditions["observation"].shape[0]
        repeated = {k: v.repeat_interleave(draws, dim=0) for k, v in conditions.items()}
        z0 = self.diffusion.sample((rows * draws, self.hparams.latent_dim), repeated, self.hparams.sampling_steps,
                                   generator, conditions["observation"].device)
        return self.vaes[m].decode(z0).view(rows, draws, -1).mean(1)

    def forward(self, batch: dict) -> Tensor:
        return self.complete(batch)[0]

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict:
        pred, completed = self.complete(batch)
        out = {"id": batch["id"], "pred": pred.detach().float().cpu(), "label": batch["label"].cpu()}
        out["recovered"] = {m: self.standardizers[m].inverse(completed[m]).detach().cpu() for m in MODALITIES}
        return out

    # ------------------------------------------------------------------ training
    def training_loss(self, batch: dict) -> dict[str, Tensor]:
        full = complete_view(batch)
        generator = torch.Generator().manual_seed(int(self.global_step) + 7919 * int(self.current_epoch))
        drawn = random_patterns(len(batch["label"]), PATTERNS, generator, batch["available"].device)
        inputs = drop_modalities(batch, drawn)
        available = inputs["available"].bool()
        targets = self.utterances(full)
        utterances = self.utterances(inputs)
        observation = self.psi(utterances, available)
        plan = self.plan_vectors(inputs)
        completed = dict(utterances)
        terms = {name: observation.new_zeros(()) for name in ("noise", "plan", "evi", "c_evi")}
        generated_rows = 0
        missing = self.missing_modalities(batch["id"], available, observation, plan, generator)
        for m, rows, evidence, evidence_cost, conditions in missing:
            z0 = self.vaes[m].encode(targets[m][rows])
            noise, eps_hat, z_t, t = self.diffusion.training_terms(z0, conditions, generator)
            z0_hat = self.diffusion.tweedie(z_t, eps_hat, t)
            generated = self.vaes[m].decode(z0_hat)
            task_view = generated if self.hparams.task_input == "tweedie" else self.vaes[m].decode(z_t)
            filled = completed[m].clone()
            filled[rows] = task_view.detach() if self.hparams.lambda_task == 0 else task_view
            completed[m] = filled
            n = len(rows)
            terms["noise"] = terms["noise"] + F.mse_loss(eps_hat, noise, reduction="none").mean(1).sum()
            has_plan = plan[rows].norm(dim=1) > 0
            plan_cos = F.cosine_similarity(self.psi.single(m, generated), plan[rows], dim=1)
            terms["plan"] = terms["plan"] + ((1 - plan_cos) * has_plan).sum()
            if self.hparams.use_retriever and len(self.bases[m]):
                l1 = (generated - self.evidence_heads[m](evidence)).abs().mean(1)
                terms["evi"] = terms["evi"] + l1.sum()
                terms["c_evi"] = terms["c_evi"] + evidence_cost.detach().sum()
            generated_rows += n
        for name in terms:
            terms[name] = terms[name] / max(generated_rows, 1)
        task = F.l1_loss(self.predict_score(observation, completed, available), batch["label"])
        align = self.alignment_loss(full, utterances, available, observation)
        hp = self.hparams
        rec = terms["noise"] + hp.lambda_p * terms["plan"] + hp.lambda_e * terms["evi"]
        # lambda_task = 0 (w/o L_task): no task gradient reaches the executor (generated features are
        # detached above), but the regressor must still learn to read them.
        loss = rec + (hp.lambda_task if hp.lambda_task > 0 else 1.0) * task + hp.lambda_align * align
        return {"loss": loss, "rec": rec.detach(), "noise": terms["noise"].detach(), "plan": terms["plan"].detach(),
                "evi": terms["evi"].detach(), "c_evi": terms["c_evi"], "task": task.detach(), "align": align.detach()}

    def alignment_loss(self, full: dict, utterances: dict, available: Tensor, observation: Tensor) -> Tensor:
        """1 - cos(psi(X), g(transcript)) over samples whose transcript the method may read."""
        texts = full.get("raw_text")
        if not texts:
            return observation.new_zeros(())
        rows = [i for i, t in enumerate(texts) if t.strip()]
        if not rows:
            return observation.new_zeros(())
        target = torch.from_numpy(embed_texts([texts[i] for i in rows], _cache_dir())).to(observation.device)
        return (1 - F.cosine_similarity(observation[rows], target, dim=1)).mean()

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self) -> None:
        loader = self.trainer.datamodule.train_dataloader()
        self.fit_vaes(loader)
        self.fill_knowledge_base(loader)
        self.rebuild_indices()

    def on_train_epoch_start(self) -> None:
        self.rebuild_indices()

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self.rebuild_indices()

    def on_predict_start(self) -> None:
        self.rebuild_indices()

    def fit_vaes(self, loader) -> None:
        """The VAE stage: training loader only; the VAEs are frozen afterwards."""
        def loss_fn(batch: dict) -> Tensor:
            targets = self.utterances(complete_view(batch))
            return sum(self.vaes[m].loss(targets[m]) for m in MODALITIES)

        for vae in self.vaes.values():
            vae.scale.fill_(1.0)
        fit_stage(self.vaes, loss_fn, loader, epochs=self.hparams.vae_epochs, lr=1e-3,
                  accelerator=outer_accelerator(self))
        with torch.no_grad():
            means = {m: [] for m in MODALITIES}
            for batch in loader:
                targets = self.utterances(complete_view(move_data_to_device(batch, self.device)))
                for m in MODALITIES:
                    means[m].append(self.vaes[m].posterior(targets[m])[0])
            for m in MODALITIES:
                self.vaes[m].scale.fill_(1.0 / torch.cat(means[m]).std().clamp_min(1e-3))

    @torch.no_grad()
    def fill_knowledge_base(self, loader) -> None:
        """Training entries: ids, complete utterances, u_i = g(plan of the complete observation), values.

        The complete observation of an entry holds its transcript only where the training batch kept
        language (``complete_view`` restores features, never a removed transcript). Before that, the
        plans of every training sample under the 7 patterns are computed in one batched pass, so the
        training steps only read the cache.
        """
        ids, utterances, entries, observations, transcripts = [], {m: [] for m in MODALITIES}, [], [], []
        for batch in loader:
            batch = move_data_to_device(batch, self.device)
            full = complete_view(batch)
            ids += batch["id"]
            for m, value in self.utterances(full).items():
                utterances[m].append(value)
            entries += self.describer.describe(full)
            transcripts += [t for t in batch.get("raw_text") or [] if t.strip()]
            for pattern in PATTERNS:
                flags = torch.tensor(pattern_to_available(pattern), device=self.device).expand_as(batch["available"])
                observations += self.describer.describe(drop_modalities(full, flags))
        if self.hparams.use_planner:
            self.plan_book.plans(list(dict.fromkeys(entries + observations)))
            stats = self.plan_book.stats
            print(f"omg-agent planner {self.hparams.planner_model} (|Omega| = {self.hparams.n_candidates}): "
                  f"{stats['planned']} observations planned in {stats['seconds']:.0f} s, {stats['cached']} from the "
                  f"cache, {stats['no_valid_plan']} without a valid plan", file=sys.stderr)
            semantic = torch.from_numpy(self.plan_book.embed(entries)).to(self.device)
        else:
            semantic = torch.zeros(len(ids), EMBEDDING_DIM, device=self.device)
        embed_texts(transcripts, _cache_dir())  # psi's alignment targets, encoded once (memoised)
        self._entry_utterances = {m: torch.cat(v) for m, v in utterances.items()}
        for m in MODALITIES:
            value = F.pad(self._entry_utterances[m], (0, self.evidence_dim - self._entry_utterances[m].shape[1]))
            self.bases[m].fill(ids, torch.zeros(len(ids), EMBEDDING_DIM, device=self.device), semantic, value)

    @torch.no_grad()
    def rebuild_indices(self) -> None:
        """Recompute the entries' observation embeddings and keys with the current psi / key nets; re-index."""
        if not self.hparams.use_retriever or not hasattr(self, "_entry_utterances"):
            return
        ones = torch.ones(len(self.bases["L"]), len(MODALITIES), dtype=torch.bool, device=self.device)
        was_training = self.psi.training
        self.psi.eval()
        observation = self.psi(self._entry_utterances, ones)
        self.psi.train(was_training)
        for m in MODALITIES:
            base = self.bases[m]
            base.observation = observation
            base.rebuild(self.retrievers[m].entry_keys(base))
        self.rebuild_seconds.append(sum(self.bases[m].last_rebuild_seconds for m in MODALITIES))
