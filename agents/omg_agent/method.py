"""OMG-Agent as an mmbench method: Planner -> Retriever -> diffusion Executor, trained with eq. (14)-(18).

Paper: R. Dai et al., "OMG-Agent: Toward Robust Missing Modality Generation with Decoupled Coarse-to-Fine
Agentic Workflows" (../shared/papers/omg-agent.md; no public code was reachable). Reimplemented from the
text: Sec. 3 (method), 4.1 (settings), 4.3 and Appendix D (ablations), Appendix A (hyperparameters).

What a training step reads depends on the run's training setting (``self.data_info.train_setting``):

* ``complete``: every training sample is complete; the method simulates missingness itself, drawing one of
  the 7 patterns per sample (its own augmentation, under this setting only). Targets: the complete features.
* ``same``: the batch exactly as the benchmark masked it (nothing added); targets: its ``full_<field>``.
* ``incomplete``: the task head reads the batch exactly as masked; its missing modalities are filled by DDIM
  draws, as at inference (there is no target to noise, so L_task cannot reach the executor). The executor's
  own terms need a target: they hide a random part of what each sample observed from the executor's
  condition (one of the 7 patterns intersected with the mask; never everything) and reconstruct the hidden,
  observed modalities. A removed feature is never read.

Stages that read complete training features, per setting:

* ``complete``: all of them (the training data are complete).
* ``same``: the VAE stage (its inputs), the knowledge base (entry values v_i, entry observations o_i and plans
  u_i of the complete observation), the executor's targets z_0 = VAE(y_m); the standardiser and the
  observation describer use ``DataInfo.feature_stats`` of the complete training split.
* ``incomplete``: none. The VAEs train on observed values only, the base of modality m holds only the
  training samples where m was observed (o_i = psi of what the entry observed, u_i = the plan of that
  observation), the executor's targets are observed values, and ``DataInfo.feature_stats`` (standardiser,
  describer) count observed values only.

For each missing modality m of each sample of the executor's inputs:

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
* ``executor_task_grad=False`` (w/o L_task): the generated features reach the regressor detached, so L_task's
  gradient does not reach the executor (denoiser, retriever projections); L_task still trains the task head
  with the same weight ``lambda_task``. ``lambda_task`` is only that weight.
* ``task_input="noisy"`` (Direct Classification): the task head reads VAE^-1(z_t) instead of Tweedie's z0_hat.
* Inference averages ``generation_samples`` (8) DDIM draws per missing modality, decoded. One draw from
  p(y | x) errs by twice the conditional variance on average, so where the observation says little about
  the missing modality a single draw is further from the truth than zero-imputation; the average estimates
  E[y | x], as the Tweedie estimate the task head reads during training does. ``generation_samples: 1`` is
  the paper's single draw. DDIM does not clip the latents (the paper clips nowhere; the Tweedie estimate
  of training is not clipped either).
* Budget (``configs/methods/omg-agent.yaml``): Adam 2e-3 halving after ``lr_patience`` = 10 flat validation
  epochs (Sec. 4.1); epochs and early stopping are not in the paper (benchmark epochs; stopping patience
  set above the LR patience so the halving can act). Sizes (hidden 64, latent 16, 4 blocks) are small so
  a fixed-protocol run stays within minutes on 2 CPU cores (the paper gives no sizes).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import move_data_to_device
from torch import Tensor, nn

from mmbench.augment import complete_view, drop_modalities, draw_patterns, random_patterns, training_input
from mmbench.constants import MODALITIES, PATTERNS, TRAIN_SETTINGS, pattern_to_available
from mmbench.data.text_encoder import EMBEDDING_DIM
from mmbench.layers import FeatureStandardizer, masked_mean, modality_inputs
from mmbench.method import DataInfo, FitSettings, MMBenchMethod, Prediction
from mmbench.stages import fit_stage, outer_accelerator

from agents.omg_agent.executor import Denoiser, FeatureVAE, LatentDiffusion
from agents.omg_agent.observation import ObservationDescriber
from agents.omg_agent.planner import PlanBook, embed_texts
from agents.omg_agent.planner_registry import DEFAULT_PLANNER
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


class Observed(NamedTuple):
    """What the method reads of a masked batch."""

    available: Tensor  # (B, 3) bool
    utterances: dict[str, Tensor]  # standardised, (B, D_m); zeros where removed
    observation: Tensor  # u_X = psi(X), (B, 384)
    plan: Tensor  # c_S, (B, 384)


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
        executor_task_grad: False = ablation w/o L_task (L_task's gradient does not reach the executor;
            the task head still trains on L_task).
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
        **fit: ``lr``, ``weight_decay``, ``lr_patience``, ``batch_size``: Adam 2e-3, no weight decay, halving
            after 10 flat validation epochs, 32 (MOSI).
    """

    supported_train_settings = TRAIN_SETTINGS
    #: 2: trains on the benchmark's masks under same/incomplete, the w/o L_task switch, unclipped DDIM,
    #: per-observation planner seeds.
    method_version = "2"
    quick_profile = {"n_candidates": 1, "sampling_steps": 5, "vae_epochs": 2}
    fit_defaults = FitSettings(lr=2e-3, lr_patience=10)

    def __init__(self, data: DataInfo, top_k: int = 10, temperature: float = 0.07, n_candidates: int = 5,
                 lambda_s: float = 0.3, gamma: float = 0.1, lambda_p: float = 0.1, lambda_e: float = 0.1,
                 lambda_task: float = 0.1, executor_task_grad: bool = True, lambda_align: float = 0.1,
                 planner_model: str = DEFAULT_PLANNER,
                 use_planner: bool = True, rerank: bool = True, use_retriever: bool = True,
                 weighting: str = "softmax", query_mode: str = "plan", injection: str = "hierarchical",
                 task_input: str = "tweedie", hidden_dim: int = 64, latent_dim: int = 16, key_dim: int = 128,
                 n_blocks: int = 4, train_timesteps: int = 1000, sampling_steps: int = 10,
                 generation_samples: int = 8, vae_epochs: int = 10, dropout: float = 0.1, **fit):
        super().__init__(data, **fit)
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
        self.plan_book.device = device  # plan (what the cache lacks) on the run's device
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

    def missing_modalities(self, ids: list[str], missing: Tensor, observation: Tensor, plan: Tensor,
                           generator: torch.Generator):
        """For each modality some rows of ``missing`` (B, 3) lack: (m, rows, evidence E, C_evi, denoiser
        conditions) of those rows.

        Lazy, so each modality's evidence draws from ``generator`` right before its caller's diffusion does.
        """
        for position, m in enumerate(MODALITIES):
            rows = torch.nonzero(missing[:, position]).flatten()
            if len(rows) == 0:
                continue
            row_ids = [ids[i] for i in rows.tolist()]
            evidence, evidence_cost = self.evidence(m, observation[rows], plan[rows], row_ids, generator)
            yield m, rows, evidence, evidence_cost, self.conditions(m, observation[rows], plan[rows], evidence)

    def observe(self, batch: dict) -> Observed:
        """What the method reads of a (masked) batch: flags, utterances, u_X = psi(X) and c_S."""
        available = batch["available"].bool()
        utterances = self.utterances(batch)
        return Observed(available, utterances, self.psi(utterances, available), self.plan_vectors(batch))

    def fill_by_sampling(self, observed: Observed, ids: list[str], generator: torch.Generator) -> dict[str, Tensor]:
        """The utterances of ``observed`` with every missing modality generated by DDIM (no gradient)."""
        completed = dict(observed.utterances)
        missing = self.missing_modalities(ids, ~observed.available, observed.observation, observed.plan, generator)
        for m, rows, _, _, conditions in missing:
            completed[m] = completed[m].index_put((rows,), self.generate(m, conditions, generator))
        return completed

    # ------------------------------------------------------------------ inference
    def complete(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        """(prediction (B,), standardised utterance features with every missing modality generated)."""
        observed = self.observe(batch)
        completed = self.fill_by_sampling(observed, batch["id"], torch.Generator().manual_seed(0))  # repeatable
        return self.predict_score(observed.observation, completed, observed.available), completed

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

    def predict(self, batch: dict) -> Prediction:
        """The score and every modality's utterance features (generated where missing), in the input space."""
        pred, completed = self.complete(batch)
        return Prediction(pred, {m: self.standardizers[m].inverse(completed[m]) for m in MODALITIES})

    # ------------------------------------------------------------------ training
    def target_view(self, batch: dict) -> dict:
        """The training features the method may use as targets and base entries (its ``available`` says
        which): the complete ones under ``complete`` / ``same``, the observed ones under ``incomplete``."""
        return batch if self.data_info.train_setting == "incomplete" else complete_view(batch)

    def training_inputs(self, batch: dict, generator: torch.Generator) -> tuple[dict, dict]:
        """(the task head's inputs, the executor's inputs) of a training batch.

        The task head reads the benchmark's masks as given (own pattern sampling under ``complete`` only).
        The executor reads the same, except under ``incomplete``, where only observed modalities can be
        targets: there it sees one of the 7 patterns intersected with the mask (never nothing), and the
        observed modalities this hides are its targets.
        """
        def simulate(view: dict) -> dict:
            return draw_patterns(view, PATTERNS, generator)

        task_inputs = training_input(batch, self.data_info.train_setting, simulate)
        if self.data_info.train_setting != "incomplete":
            return task_inputs, task_inputs
        available = batch["available"].bool()
        kept = random_patterns(len(available), PATTERNS, generator, available.device) & available
        nothing = ~kept.any(1)
        kept[nothing] = available[nothing]
        return task_inputs, drop_modalities(batch, kept)

    def executor_terms(self, observed: Observed, targets: dict, ids: list[str],
                       generator: torch.Generator) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """(L_noise, L_plan, L_evi, C_evi averaged over the generated rows; the utterances with each
        generated row filled with the task view of its Tweedie estimate) for the rows whose missing
        modality has a target."""
        target_features = self.utterances(targets)
        missing = ~observed.available & targets["available"].bool()
        completed = dict(observed.utterances)
        sums = {name: observed.observation.new_zeros(()) for name in ("noise", "plan", "evi", "c_evi")}
        generated_rows = 0
        for m, rows, evidence, evidence_cost, conditions in self.missing_modalities(
                ids, missing, observed.observation, observed.plan, generator):
            z0 = self.vaes[m].encode(target_features[m][rows])
            noise, eps_hat, z_t, t = self.diffusion.training_terms(z0, conditions, generator)
            generated = self.vaes[m].decode(self.diffusion.tweedie(z_t, eps_hat, t))
            task_view = generated if self.hparams.task_input == "tweedie" else self.vaes[m].decode(z_t)
            if not self.hparams.executor_task_grad:  # w/o L_task: the task head still reads it
                task_view = task_view.detach()
            completed[m] = completed[m].index_put((rows,), task_view)
            sums["noise"] = sums["noise"] + F.mse_loss(eps_hat, noise, reduction="none").mean(1).sum()
            has_plan = observed.plan[rows].norm(dim=1) > 0
            plan_cos = F.cosine_similarity(self.psi.single(m, generated), observed.plan[rows], dim=1)
            sums["plan"] = sums["plan"] + ((1 - plan_cos) * has_plan).sum()
            if self.hparams.use_retriever and len(self.bases[m]):
                sums["evi"] = sums["evi"] + (generated - self.evidence_heads[m](evidence)).abs().mean(1).sum()
                sums["c_evi"] = sums["c_evi"] + evidence_cost.detach().sum()
            generated_rows += len(rows)
        return {name: value / max(generated_rows, 1) for name, value in sums.items()}, completed

    def training_terms(self, batch: dict) -> dict[str, Tensor]:
        """Every loss term of a training batch, with its graph (``training_loss`` weighs them)."""
        generator = torch.Generator().manual_seed(int(self.global_step) + 7919 * int(self.current_epoch))
        task_inputs, executor_inputs = self.training_inputs(batch, generator)
        targets = self.target_view(batch)
        observed = self.observe(executor_inputs)
        terms, completed = self.executor_terms(observed, targets, batch["id"], generator)
        if task_inputs is not executor_inputs:  # incomplete: missing modalities have no target to noise
            observed = self.observe(task_inputs)
            completed = self.fill_by_sampling(observed, batch["id"], generator)
        prediction = self.predict_score(observed.observation, completed, observed.available)
        terms["task"] = F.l1_loss(prediction, batch["label"])
        terms["align"] = self.alignment_loss(targets, observed.observation)
        return terms

    def training_loss(self, batch: dict) -> dict[str, Tensor]:
        terms = self.training_terms(batch)
        hp = self.hparams
        rec = terms["noise"] + hp.lambda_p * terms["plan"] + hp.lambda_e * terms["evi"]
        loss = rec + hp.lambda_task * terms["task"] + hp.lambda_align * terms["align"]
        return {"loss": loss, "rec": rec.detach(), **{name: value.detach() for name, value in terms.items()}}

    def alignment_loss(self, targets: dict, observation: Tensor) -> Tensor:
        """1 - cos(psi(X), g(transcript)) over samples whose transcript the method may read."""
        texts = targets.get("raw_text")
        if not texts:
            return observation.new_zeros(())
        rows = [i for i, t in enumerate(texts) if t.strip()]
        if not rows:
            return observation.new_zeros(())
        target = torch.from_numpy(embed_texts([texts[i] for i in rows], _cache_dir())).to(observation.device)
        return (1 - F.cosine_similarity(observation[rows], target, dim=1)).mean()

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self) -> None:
        loader = self.training_loader()
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

    def observed_targets(self, batch: dict) -> tuple[dict[str, Tensor], Tensor]:
        """(standardised utterances of :meth:`target_view`, (B, 3) which of them exist)."""
        targets = self.target_view(batch)
        return self.utterances(targets), targets["available"].bool()

    def fit_vaes(self, loader) -> None:
        """The VAE stage: training loader only, each VAE on the values :meth:`target_view` holds; frozen after."""
        def loss_fn(batch: dict) -> Tensor:
            features, observed = self.observed_targets(batch)
            return sum(self.vaes[m].loss(features[m][observed[:, i]])
                       for i, m in enumerate(MODALITIES) if observed[:, i].any())

        for vae in self.vaes.values():
            vae.scale.fill_(1.0)
        fit_stage(self.vaes, loss_fn, loader, epochs=self.hparams.vae_epochs, lr=1e-3,
                  accelerator=outer_accelerator(self))
        with torch.no_grad():
            means = {m: [] for m in MODALITIES}
            for batch in loader:
                features, observed = self.observed_targets(move_data_to_device(batch, self.device))
                for i, m in enumerate(MODALITIES):
                    means[m].append(self.vaes[m].posterior(features[m][observed[:, i]])[0])
            for m in MODALITIES:
                self.vaes[m].scale.fill_(1.0 / torch.cat(means[m]).std().clamp_min(1e-3))

    @torch.no_grad()
    def fill_knowledge_base(self, loader) -> None:
        """Training entries of :meth:`target_view`: ids, utterances, u_i = g(plan of the entry's observation),
        values. The base of modality m holds only the entries where m is in that view.

        An entry's observation holds its transcript only where the training batch kept language
        (``complete_view`` restores features, never a removed transcript). Before that, the plans of every
        training sample under the 7 patterns are computed in one batched pass, so the training steps only
        read the cache.
        """
        ids, utterances, available, entries, observations, transcripts = [], {m: [] for m in MODALITIES}, [], [], [], []
        for batch in loader:
            batch = move_data_to_device(batch, self.device)
            view = self.target_view(batch)
            ids += batch["id"]
            for m, value in self.utterances(view).items():
                utterances[m].append(value)
            available.append(view["available"].bool())
            entries += self.describer.describe(view)
            transcripts += [t for t in view.get("raw_text") or [] if t.strip()]
            for pattern in PATTERNS:
                flags = torch.tensor(pattern_to_available(pattern), device=self.device).expand_as(batch["available"])
                observations += self.describer.describe(drop_modalities(view, flags))
        semantic = self.entry_plans(entries, observations)
        embed_texts(transcripts, _cache_dir())  # psi's alignment targets, encoded once (memoised)
        self._entry_utterances = {m: torch.cat(v) for m, v in utterances.items()}
        self._entry_available = torch.cat(available)
        self._base_rows = {}
        for position, m in enumerate(MODALITIES):
            rows = torch.nonzero(self._entry_available[:, position]).flatten()
            values = self._entry_utterances[m][rows]
            self._base_rows[m] = rows
            observation = torch.zeros(len(rows), EMBEDDING_DIM, device=self.device)  # set by rebuild_indices
            self.bases[m].fill([ids[i] for i in rows.tolist()], observation, semantic[rows],
                               F.pad(values, (0, self.evidence_dim - values.shape[1])))

    def entry_plans(self, entries: list[str], observations: list[str]) -> Tensor:
        """u_i (N, 384) of the entries' observations, after planning every observation training will read."""
        if not self.hparams.use_planner:
            return torch.zeros(len(entries), EMBEDDING_DIM, device=self.device)
        self.plan_book.device = self.device  # plan on the run's device
        self.plan_book.plans(list(dict.fromkeys(entries + observations)))
        stats = self.plan_book.stats
        print(f"omg-agent planner {self.hparams.planner_model} (|Omega| = {self.hparams.n_candidates}): "
              f"{stats['planned']} observations planned in {stats['seconds']:.0f} s, {stats['cached']} from the "
              f"cache, {stats['no_valid_plan']} without a valid plan", file=sys.stderr)
        return torch.from_numpy(self.plan_book.embed(entries)).to(self.device)

    @torch.no_grad()
    def rebuild_indices(self) -> None:
        """Recompute the entries' observation embeddings and keys with the current psi / key nets; re-index."""
        if not self.hparams.use_retriever or not hasattr(self, "_entry_utterances"):
            return
        was_training = self.psi.training
        self.psi.eval()
        observation = self.psi(self._entry_utterances, self._entry_available)
        self.psi.train(was_training)
        for m in MODALITIES:
            base = self.bases[m]
            base.observation = observation[self._base_rows[m]]
            if len(base):
                base.rebuild(self.retrievers[m].entry_keys(base))
        self.rebuild_seconds.append(sum(self.bases[m].last_rebuild_seconds for m in MODALITIES if len(self.bases[m])))
