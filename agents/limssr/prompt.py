"""Prompt-guided context-aware imputation: the instruction that names available and missing modalities.

One prompt per availability pattern (7 of them). Its token embeddings come from the LLM's frozen
input embedding, so :class:`PromptBank` computes them once, when the method is built, and serves
them from a cache; the prompt text follows the original's wording, with the task changed from
action quality assessment to sentiment analysis of a video clip.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from mmbench.constants import MODALITIES, MODALITY_NAMES, PATTERNS, pattern_to_available


def prompt_text(pattern: str) -> str:
    """The instruction for an availability pattern (letters of the available modalities)."""
    available = [MODALITY_NAMES[m] for m in MODALITIES if m in pattern]
    missing = [MODALITY_NAMES[m] for m in MODALITIES if m not in pattern]
    available_text = ", ".join(available)
    missing_text = ", ".join(missing) if missing else "none"
    return (f"Given the available {available_text} features from a video clip. "
            f"The {missing_text} modality is missing. "
            f"Based on the available modalities, please infer and reconstruct the useful latent representations "
            f"for the missing {missing_text} modalities at the designated positions. "
            f"Then integrate and enhance all multimodal features for sentiment analysis. "
            f"Output the fused multi-dimensional feature representations at the designated feature dimension "
            f"positions: ")


def pattern_index(available: Tensor) -> Tensor:
    """(B, 3) bool availability -> (B,) index into :data:`PATTERNS`."""
    table = torch.tensor([pattern_to_available(p) for p in PATTERNS], dtype=torch.bool, device=available.device)
    matches = (available.unsqueeze(1) == table.unsqueeze(0)).all(-1)  # (B, 7)
    if not bool(matches.any(1).all()):
        raise ValueError("a sample has no available modality; every pattern keeps at least one")
    return matches.float().argmax(1)


class PromptBank(nn.Module):
    """The 7 prompts' token embeddings, right-padded into one (7, L_max, H) buffer with their lengths.

    Built once from the tokenizer and the (frozen) input embedding; not saved in checkpoints.
    """

    def __init__(self, tokenizer, input_embedding: nn.Embedding):
        super().__init__()
        ids = [tokenizer(prompt_text(p), add_special_tokens=False)["input_ids"] for p in PATTERNS]
        lengths = torch.tensor([len(i) for i in ids])
        padded = torch.zeros(len(PATTERNS), int(lengths.max()), dtype=torch.long)
        for row, token_ids in enumerate(ids):
            padded[row, :len(token_ids)] = torch.tensor(token_ids)
        with torch.no_grad():
            embeddings = input_embedding(padded.to(input_embedding.weight.device)).float().cpu()
        self.register_buffer("embeddings", embeddings, persistent=False)
        self.register_buffer("lengths", lengths, persistent=False)

    def forward(self, patterns: Tensor) -> tuple[Tensor, Tensor]:
        """(P,) pattern indices -> right-padded embeddings (P, L_max, H) and valid mask (P, L_max)."""
        embeddings = self.embeddings[patterns]
        steps = torch.arange(embeddings.shape[1], device=patterns.device)
        return embeddings, steps.unsqueeze(0) < self.lengths[patterns].unsqueeze(1)
