"""The LLM backbone: a causal LM with LoRA adapters that reads prompt | modality blocks | fusion tokens.

Every sample of one availability pattern shares the same prompt, and attention is causal, so the
prompt's keys and values do not depend on the sample. :class:`LoRADecoder` therefore runs each
distinct prompt of a batch once (at most 7, right-padded: causal attention never lets a valid prompt
position see the padding) and lets every sample's suffix attend to its pattern's cached prompt keys
and values (the padded ones masked out). This is exact - the same hidden states as feeding each
full sequence - and removes the prompt (about 60 tokens, most of the sequence) from the per-sample
cost. Only the decoder is run (no LM head); its last hidden states are post final norm, as the
original's ``hidden_states[-1]``.
"""
from __future__ import annotations

import inspect

import torch
from peft import LoraConfig, get_peft_model
from torch import Tensor, nn


def truncate_layers(causal_lm, n_layers: int | None):
    """Keep only the first ``n_layers`` decoder layers of the pretrained LM (None or <= 0: all)."""
    layers = causal_lm.model.layers
    if n_layers is None or n_layers <= 0 or n_layers >= len(layers):
        return causal_lm
    causal_lm.model.layers = nn.ModuleList(list(layers)[:n_layers])
    causal_lm.config.num_hidden_layers = n_layers
    if getattr(causal_lm.config, "layer_types", None) is not None:
        causal_lm.config.layer_types = causal_lm.config.layer_types[:n_layers]
    return causal_lm


class LoRADecoder(nn.Module):
    """A frozen pretrained causal LM with trainable LoRA adapters on the attention projections.

    Args:
        causal_lm: a ``transformers`` causal LM (Llama/Qwen-like: ``.model`` is the decoder).
        rank, alpha, dropout: LoRA hyper-parameters.
        target_modules: the projections that get adapters (q/k/v/o in the original).
    """

    def __init__(self, causal_lm, rank: int, alpha: float, dropout: float, target_modules: list[str]):
        super().__init__()
        for parameter in causal_lm.parameters():
            parameter.requires_grad_(False)
        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
                            bias="none")
        self.lm = get_peft_model(causal_lm, config)
        self.hidden_size = int(causal_lm.config.hidden_size)

    @property
    def decoder(self) -> nn.Module:
        """The decoder stack (adapters injected in place), without the LM head."""
        return self.lm.get_base_model().model

    def input_embedding(self) -> nn.Embedding:
        return self.lm.get_base_model().get_input_embeddings()

    def forward(self, prompts: Tensor, prompt_mask: Tensor, prompt_of_sample: Tensor, suffix: Tensor) -> Tensor:
        """Last hidden states of each sample's suffix, after its pattern's prompt.

        Args:
            prompts: (P, L, H) right-padded prompt embeddings of the distinct patterns in the batch.
            prompt_mask: (P, L) True on real prompt tokens.
            prompt_of_sample: (B,) row of ``prompts`` each sample follows.
            suffix: (B, S, H) modality blocks and fusion tokens.

        Returns:
            (B, S, H) hidden states of the suffix positions.
        """
        decoder = self.decoder
        prefix = decoder(inputs_embeds=prompts, attention_mask=prompt_mask.long(), use_cache=True)
        cache = getattr(prefix, "cache", None) or prefix.past_key_values
        cache.batch_select_indices(prompt_of_sample)  # (P, ...) -> (B, ...): each sample's prompt keys/values
        steps = torch.arange(suffix.shape[1], device=suffix.device)
        positions = prompt_mask.sum(1)[prompt_of_sample].unsqueeze(1) + steps.unsqueeze(0)  # (B, S)
        attention_mask = torch.cat([prompt_mask[prompt_of_sample],
                                    torch.ones(suffix.shape[:2], dtype=torch.bool, device=suffix.device)], dim=1)
        out = decoder(inputs_embeds=suffix, attention_mask=attention_mask.long(), position_ids=positions,
                      use_cache=True, **{_cache_argument(decoder): cache})
        return out.last_hidden_state


def _cache_argument(decoder: nn.Module) -> str:
    """``cache`` in recent transformers, ``past_key_values`` before."""
    return "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"
