"""``smcmsa``: Similar Modality Completion-based Multimodal Sentiment Analysis (Astro2Sun/SMCMSA).

Sun et al., "Similar modality completion-based multimodal sentiment analysis under uncertain missing
modalities" (Information Fusion 2024); code: github.com/Astro2Sun/SMCMSA (TensorFlow 1.14).

Method, all inside this method's fit:

1. Unimodal networks (``FindSim_25/network_for{T,V,A}.py``), one per modality, trained on
   **training** samples only (:func:`mmbench.stages.fit_stage` reads the training loader), each on
   the samples where its modality is observed (see the settings below): projection (no bias), multi-head
   self-attention (4 heads) + feed-forward encoder, sigmoid-gated attention pooling, a dense
   embedding layer (the retrieval key), a sentiment head; plus a self-attention decoder whose output
   is pulled to the projected input by a symmetric KL (weight 0.1). Then frozen.
2. The repository of training samples (:mod:`baselines.smcmsa.similar_completion`): their stage-1
   embeddings, unimodal predictions and raw features, built from the training loader after
   stage 1. A sample with missing modalities queries it (cosine, top-3, faiss); the first neighbour
   whose predicted sentiment class equals the sample's predicted class donates its raw features
   for the missing modalities (zeros if none matches). The same happens for training samples
   (never retrieving themselves) and for validation/test samples (retrieving training samples).
3. The fusion network (``network.py``) on the completed sample: per-modality projection +
   self-attention/feed-forward encoder; "text influence": vision and audio sequences are projected
   over time to a fixed number of tokens, attend the (likewise projected) text tokens (cross-
   attention + feed-forward), and are projected back to their own length; sigmoid-gated attention
   pooling and a dense layer per modality; decision-level fusion: a shared head scores each
   modality and learned scalars (Wt, Wv, Wa) weight the three scores, which are summed. A text
   decoder (self-attention + feed-forward) reconstructs the text encoding under a symmetric KL.

Adaptations (the benchmark's, or where the paper is silent):
- Regression instead of SMCMSA's 3-class head: each head outputs one score, the loss is L1 (MMSA's),
  for the unimodal networks and the fusion network. The "predicted class" used to match donors is
  the 3-way class of the unimodal regression output: neutral when |score| <= ``neutral_fraction``
  x half the label range (0.3 on MOSI's [-3, 3]; 0.1 on SIMS's [-1, 1], as SIMS's 3 classes),
  else its sign. Both the query's and the donor's classes are *predicted* ones (the original
  compares with the donor's true label in its text branch, with its prediction in the others).
- Several available modalities (the original only completes samples with one): the similarity is the
  mean cosine over the available modalities, the class that of the mean unimodal prediction over
  them (details in :mod:`baselines.smcmsa.similar_completion`).
- Training settings (read from the run's setting, :mod:`mmbench.augment`). SMCMSA trains on data
  made incomplete once, offline. Under ``complete`` each training sample draws one of the 7
  patterns per batch (the benchmark also tests the complete one; this sampling is the method's own
  business under ``complete`` only) and is completed from its neighbours; under ``same`` and
  ``incomplete`` the fusion network trains on the benchmark's masks exactly as given.
  Stages reading complete training features: under ``complete`` and ``same`` (through
  ``full_<field>``) the unimodal networks train on complete samples and the repository holds every
  training sample complete, as SMCMSA's. Under ``incomplete`` both see observed values only: each
  unimodal network trains on the samples where its modality is observed, the repository keeps
  what was observed, and a donor for modality m is drawn only from training samples where m was
  observed (a removed value is never donated). The input standardisation uses the run's training
  feature statistics (``DataInfo.feature_stats``).
- Dropped: the symmetric KL to a separately pre-trained complete-modality network's encoder output
  (``pretrained_output``, a third model shipped as a file); the L2 penalty on the head (Adam weight
  decay instead); the sequence padding of the original (the suite's masks are used throughout:
  attention ignores padded steps, pooling runs over valid steps).
- Sizes for 2 CPU cores: hidden 64 (original 300), 32 projected "influence" tokens (original 300,
  = att_dim), 5 unimodal epochs (the original picks unimodal checkpoints by test accuracy);
  selection is on the validation MAE (the original picks the best *test* F1).
- Reconstruction fidelity: the donated raw features are the recovered ones, returned from
  :meth:`SMCMSA.predict` as (B, T, D) in the input space (zeros where no donor matched).
- Budget (``configs/methods/smcmsa.yaml``): SMCMSA's 15 epochs, every one run (no early stopping,
  constant LR in the original); the LR halves on a validation plateau (benchmark default, 5).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from baselines.smcmsa.similar_completion import NO_DONOR, CompleteSampleRepository, sentiment_class
from mmbench.augment import complete_view, training_input
from mmbench.constants import MODALITIES, MODALITY_FIELDS
from mmbench.layers import FeatureStandardizer, modality_inputs
from mmbench.method import DataInfo, FitSettings, MMBenchMethod, Prediction
from mmbench.stages import fit_stage, outer_accelerator

TEXT = MODALITIES.index("L")


def attention_ignore_mask(step_mask: Tensor) -> Tensor:
    """``key_padding_mask`` for (B, T) valid steps; a sample with none attends everything (all zeros)."""
    return ~step_mask & step_mask.any(1, keepdim=True)


def symmetric_kl(first: Tensor, second: Tensor, step_mask: Tensor) -> Tensor:
    """KL(p||q) + KL(q||p) of the feature-wise softmaxes of two (B, T, H) sequences, mean over valid steps."""
    log_p, log_q = first.log_softmax(-1), second.log_softmax(-1)
    per_step = ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(-1)  # (B, T)
    weights = step_mask.to(per_step.dtype)
    return (per_step * weights).sum() / weights.sum().clamp_min(1.0)


class AttentionBlock(nn.Module):
    """Multi-head attention + feed-forward, each with a residual and LayerNorm (SMCMSA's ``module.py``)."""

    def __init__(self, dim: int, heads: int, attention_dropout: float, dropout: float):
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, dropout=attention_dropout, batch_first=True)
        self.attention_norm = nn.LayerNorm(dim)
        self.feed_forward = nn.Sequential(nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Dropout(dropout),
                                          nn.Linear(4 * dim, dim))
        self.feed_forward_norm = nn.LayerNorm(dim)

    def forward(self, queries: Tensor, keys: Tensor, key_mask: Tensor) -> Tensor:
        attended, _ = self.attention(queries, keys, keys, key_padding_mask=attention_ignore_mask(key_mask),
                                     need_weights=False)
        hidden = self.attention_norm(queries + attended)
        return self.feed_forward_norm(hidden + self.feed_forward(hidden))


class SigmoidAttentionPool(nn.Module):
    """SMCMSA's ``SigmoidAtt``: scores ``w_r . ((x W_u) * sigmoid(x W_m))``, softmax over valid steps."""

    def __init__(self, dim: int):
        super().__init__()
        self.gate = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        self.score = nn.Linear(dim, 1, bias=False)

    def forward(self, sequence: Tensor, step_mask: Tensor) -> Tensor:
        scores = self.score(self.value(sequence) * torch.sigmoid(self.gate(sequence))).squeeze(-1)  # (B, T)
        weights = scores.masked_fill(~step_mask, float("-inf")).softmax(-1).nan_to_num(0.0)  # empty -> 0
        return (weights.unsqueeze(-1) * sequence).sum(1)  # (B, H)


class UnimodalNetwork(nn.Module):
    """Stage 1 for one modality: encoder, pooled embedding (the retrieval key), sentiment score."""

    def __init__(self, input_dim: int, hidden_dim: int, heads: int, attention_dropout: float, dropout: float,
                 label_mean: float):
        super().__init__()
        self.project = nn.Linear(input_dim, hidden_dim, bias=False)
        self.encoder = AttentionBlock(hidden_dim, heads, attention_dropout, dropout)
        self.decoder = AttentionBlock(hidden_dim, heads, attention_dropout, dropout)
        self.pool = SigmoidAttentionPool(hidden_dim)
        self.embed = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.head = nn.Linear(hidden_dim, 1)
        nn.init.constant_(self.head.bias, label_mean)

    def forward(self, features: Tensor, step_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(embedding (B, H), score (B,), decoder reconstruction loss) of standardised features."""
        projected = self.project(features)
        encoded = self.encoder(projected, projected, step_mask)
        embedding = self.embed(self.pool(encoded, step_mask))
        decoded = self.decoder(encoded, encoded, step_mask)
        return embedding, self.head(embedding).squeeze(-1), symmetric_kl(decoded, projected, step_mask)


class UnimodalNetworks(nn.Module):
    """The three stage-1 networks over raw inputs (one summed loss: their parameters are disjoint)."""

    def __init__(self, data: DataInfo, hidden_dim: int, heads: int, attention_dropout: float, dropout: float,
                 decoder_weight: float):
        super().__init__()
        self.decoder_weight = decoder_weight
        self.standardizers = nn.ModuleList(FeatureStandardizer(*data.feature_stats[m]) for m in MODALITIES)
        self.networks = nn.ModuleList(
            UnimodalNetwork(data.dims[m], hidden_dim, heads, attention_dropout, dropout, data.train_label_mean)
            for m in MODALITIES)

    def forward(self, inputs: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
        """Per-modality (features, step mask) -> embeddings (B, 3, H), scores (B, 3), decoder loss."""
        embeddings, scores, decoder_losses = [], [], []
        for standardize, network, (features, step_mask) in zip(self.standardizers, self.networks, inputs):
            embedding, score, decoder_loss = network(standardize(features, step_mask), step_mask)
            embeddings.append(embedding)
            scores.append(score)
            decoder_losses.append(decoder_loss)
        return torch.stack(embeddings, 1), torch.stack(scores, 1), torch.stack(decoder_losses).sum()

    def loss(self, batch: dict) -> Tensor:
        """Summed L1 of each network over the samples where its modality is observed, plus the decoders'."""
        inputs = modality_inputs(batch)
        _, scores, decoder_loss = self(inputs)
        observed = torch.stack([step_mask.any(1) for _, step_mask in inputs], 1).float()  # (B, 3)
        errors = (scores - batch["label"].unsqueeze(1)).abs() * observed
        task = (errors.sum(0) / observed.sum(0).clamp_min(1.0)).sum()
        return task + self.decoder_weight * decoder_loss


class TimeProjection(nn.Module):
    """A learned linear map over time: (B, T_in, H) -> (B, T_out, H) (SMCMSA's ``Wei_v`` / ``Wei_vback``)."""

    def __init__(self, steps_in: int, steps_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(steps_out, steps_in))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, sequence: Tensor) -> Tensor:
        return torch.einsum("ot,bth->boh", self.weight, sequence)


class TextInfluence(nn.Module):
    """A vision/audio sequence attends the text after both are projected over time to ``tokens`` steps."""

    def __init__(self, steps: int, text_steps: int, tokens: int, dim: int, heads: int, attention_dropout: float,
                 dropout: float):
        super().__init__()
        self.to_tokens = TimeProjection(steps, tokens)
        self.text_to_tokens = TimeProjection(text_steps, tokens)
        self.cross = AttentionBlock(dim, heads, attention_dropout, dropout)
        self.back = TimeProjection(tokens, steps)

    def forward(self, sequence: Tensor, step_mask: Tensor, text: Tensor, text_mask: Tensor) -> Tensor:
        queries = self.to_tokens(sequence * step_mask.unsqueeze(-1))
        keys = self.text_to_tokens(text * text_mask.unsqueeze(-1))
        token_mask = text_mask.any(1, keepdim=True).expand(-1, keys.shape[1])
        return self.back(self.cross(queries, keys, token_mask))


class SMCMSAFusion(nn.Module):
    """SMCMSA's main network on completed inputs: encoders, text influence, pooling, weighted decisions."""

    def __init__(self, data: DataInfo, hidden_dim: int, heads: int, influence_tokens: int,
                 attention_dropout: float, dropout: float):
        super().__init__()
        block = dict(heads=heads, attention_dropout=attention_dropout, dropout=dropout)
        self.standardizers = nn.ModuleList(FeatureStandardizer(*data.feature_stats[m]) for m in MODALITIES)
        self.projections = nn.ModuleList(nn.Linear(data.dims[m], hidden_dim, bias=False) for m in MODALITIES)
        self.encoders = nn.ModuleList(AttentionBlock(hidden_dim, **block) for _ in MODALITIES)
        self.influences = nn.ModuleDict({
            m: TextInfluence(data.seq_lens[m], data.seq_lens["L"], influence_tokens, hidden_dim, **block)
            for m in MODALITIES if m != "L"})
        self.text_decoder = AttentionBlock(hidden_dim, **block)
        self.pools = nn.ModuleList(SigmoidAttentionPool(hidden_dim) for _ in MODALITIES)
        self.denses = nn.ModuleList(nn.Linear(hidden_dim, hidden_dim, bias=False) for _ in MODALITIES)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_dim, 1)  # shared by the three modalities, as SMCMSA's W_l, b_l
        self.decision_weights = nn.Parameter(torch.ones(len(MODALITIES)))  # Wt, Wv, Wa
        nn.init.constant_(self.head.bias, data.train_label_mean / len(MODALITIES))

    def forward(self, inputs: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        """Completed per-modality (features, step mask) -> (score (B,), text decoder loss)."""
        encoded = []
        for standardize, project, encoder, (features, step_mask) in zip(
                self.standardizers, self.projections, self.encoders, inputs):
            hidden = project(standardize(features, step_mask))
            encoded.append(encoder(hidden, hidden, step_mask))
        text, text_mask = encoded[TEXT], inputs[TEXT][1]
        decoder_loss = symmetric_kl(self.text_decoder(text, text, text_mask), text, text_mask)
        scores = []
        for position, m in enumerate(MODALITIES):
            sequence, step_mask = encoded[position], inputs[position][1]
            if m != "L":
                sequence = self.influences[m](sequence, step_mask, text, text_mask)
            pooled = self.denses[position](self.pools[position](sequence, step_mask))
            scores.append(self.head(self.dropout(pooled)).squeeze(-1))
        return (torch.stack(scores, 1) * self.decision_weights).sum(1), decoder_loss


class SMCMSA(MMBenchMethod):
    """Similar-modality completion from complete training samples, then text-guided fusion (module docstring).

    Args:
        data: data facts (dims, lengths, feature statistics), filled by the runner.
        hidden_dim: attention width (SMCMSA att_dim: 300).
        heads: attention heads (SMCMSA: 4).
        influence_tokens: steps the text-influence attention projects sequences to (SMCMSA: att_dim).
        top_k: neighbours inspected for a class-matching donor (SMCMSA: 3).
        neutral_fraction: neutral band of the 3-way class, as a fraction of half the label range.
        unimodal_epochs: stage-1 epochs of the unimodal networks.
        unimodal_lr: stage-1 Adam learning rate.
        unimodal_decoder_weight: weight of the unimodal decoders' symmetric KL (SMCMSA: 0.1).
        text_decoder_weight: weight of the fusion network's text-decoder symmetric KL (SMCMSA: 1).
        attention_dropout: attention dropout (SMCMSA: 0.2).
        dropout: feed-forward and head dropout.
        **fit: ``lr`` (SMCMSA: 1e-3), ``weight_decay`` (1e-4, in place of SMCMSA's L2 1e-4 on the head),
            ``lr_patience`` (the benchmark's), ``batch_size`` (SMCMSA: 32).
    """

    supported_train_settings = ("complete", "same", "incomplete")
    method_version = "2"  # 'incomplete' from observed values; patterns under 'complete' only; SMCMSA's budget
    quick_profile = {"unimodal_epochs": 1}
    fit_defaults = FitSettings(weight_decay=1e-4)

    def __init__(self, data: DataInfo, hidden_dim: int = 64, heads: int = 4, influence_tokens: int = 32,
                 top_k: int = 3, neutral_fraction: float = 0.1, unimodal_epochs: int = 5,
                 unimodal_lr: float = 1e-3, unimodal_decoder_weight: float = 0.1, text_decoder_weight: float = 1.0,
                 attention_dropout: float = 0.2, dropout: float = 0.1, **fit):
        super().__init__(data, **fit)
        self.save_hyperparameters(ignore=["data"])
        self.unimodal = UnimodalNetworks(data, hidden_dim, heads, attention_dropout, dropout, unimodal_decoder_weight)
        self.repository = CompleteSampleRepository(top_k)
        self.fusion = SMCMSAFusion(data, hidden_dim, heads, influence_tokens, attention_dropout, dropout)
        low, high = data.label_range
        self.neutral_threshold = neutral_fraction * (high - low) / 2

    def classify(self, score: Tensor) -> Tensor:
        """The 3-way predicted sentiment class that donors must share with the query."""
        return sentiment_class(score, self.neutral_threshold)

    # -- stage 1 and the repository ---------------------------------------------------------
    def stage_view(self, batch: dict) -> dict:
        """What stage 1 and the repository read of a training batch: the complete features, except
        under ``incomplete``, where only what the mask left exists."""
        return batch if self.data_info.train_setting == "incomplete" else complete_view(batch)

    def unimodal_loss(self, batch: dict) -> Tensor:
        return self.unimodal.loss(self.stage_view(batch))

    def on_fit_start(self) -> None:
        fit_stage(self.unimodal, self.unimodal_loss, self.training_loader(),
                  epochs=self.hparams.unimodal_epochs, lr=self.hparams.unimodal_lr,
                  accelerator=outer_accelerator(self))
        self.build_repository(self.training_loader())

    @torch.no_grad()
    def build_repository(self, train_loader) -> None:
        """Every training sample as :meth:`stage_view` shows it: ids, stage-1 embeddings and scores,
        raw features and their observed steps."""
        self.unimodal.eval()
        ids, embeddings, scores = [], [], []
        features: dict[str, list[Tensor]] = {m: [] for m in MODALITIES}
        steps: dict[str, list[Tensor]] = {m: [] for m in MODALITIES}
        for batch in train_loader:
            view = self.stage_view({k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in batch.items()})
            embedding, score, _ = self.unimodal(modality_inputs(view))
            ids += list(view["id"])
            embeddings.append(embedding)
            scores.append(score)
            for m in MODALITIES:
                features[m].append(view[MODALITY_FIELDS[m]])
                steps[m].append(view[f"{MODALITY_FIELDS[m]}_mask"])
        self.repository.fill(ids, torch.cat(embeddings), torch.cat(scores),
                             {m: torch.cat(v) for m, v in features.items()},
                             {m: torch.cat(v) for m, v in steps.items()})

    def train(self, mode: bool = True) -> "SMCMSA":
        super().train(mode)
        self.unimodal.eval()  # frozen after stage 1: retrieval keys without dropout noise
        return self

    # -- completion and fusion --------------------------------------------------------------
    @torch.no_grad()
    def complete_missing(self, batch: dict) -> tuple[list[tuple[Tensor, Tensor]], Tensor]:
        """Per-modality (features, step mask) with donors' raw features in the missing slots, and the
        (B, 3) donor rows per modality (-1: none, or not missing). Only what the masks leave is read
        from the batch."""
        available = batch["available"]
        observed = []
        for position, (features, step_mask) in enumerate(modality_inputs(batch)):
            step_mask = step_mask & available[:, position].unsqueeze(1)
            observed.append((torch.where(step_mask.unsqueeze(-1), features, torch.zeros_like(features)), step_mask))
        missing = ~available
        donors = torch.full(available.shape, NO_DONOR, dtype=torch.long, device=available.device)
        if len(self.repository) == 0 or not bool(missing.any()):
            return observed, donors
        embeddings, scores, _ = self.unimodal(observed)
        donors = self.repository.donors_by_modality(embeddings, scores, available, batch["id"], self.classify)
        completed = []
        for position, m in enumerate(MODALITIES):
            features, step_mask = observed[position]
            fill = missing[:, position]
            if bool(fill.any()):
                donated, donated_mask = self.repository.donated(m, donors[:, position])
                features = torch.where(fill.view(-1, 1, 1), donated.to(features), features)
                step_mask = torch.where(fill.unsqueeze(1), donated_mask.to(step_mask.device), step_mask)
            completed.append((features, step_mask))
        return completed, donors

    def forward(self, batch: dict) -> Tensor:
        return self.fusion(self.complete_missing(batch)[0])[0]

    def training_loss(self, batch: dict) -> dict[str, Tensor]:
        incomplete = training_input(batch, self.data_info.train_setting)
        inputs, donors = self.complete_missing(incomplete)
        score, text_decoder = self.fusion(inputs)
        task = nn.functional.l1_loss(score, incomplete["label"])
        missing_slots = (~incomplete["available"]).float().sum()
        donor_rate = (donors != NO_DONOR).float().sum() / missing_slots.clamp_min(1.0)  # filled / missing
        return {"loss": task + self.hparams.text_decoder_weight * text_decoder, "task": task,
                "text_decoder": text_decoder, "donor_rate": donor_rate}

    def modality_parameters(self) -> dict[str, list[nn.Parameter]]:
        """Each modality's projection and attention block in the fusion network (the learning index)."""
        fusion = self.fusion
        return {m: [*projection.parameters(), *encoder.parameters()]
                for m, projection, encoder in zip(MODALITIES, fusion.projections, fusion.encoders)}

    def predict(self, batch: dict) -> Prediction:
        """The score and ``recovered``: the donated raw features (B, T, D) of each modality."""
        inputs, _ = self.complete_missing(batch)
        return Prediction(self.fusion(inputs)[0], {m: features for m, (features, _) in zip(MODALITIES, inputs)})
