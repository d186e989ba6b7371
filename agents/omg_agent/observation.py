"""The Semantic Planner's input (paper Sec. 3.3): what the mask leaves of each sample, in words."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mmbench.constants import MODALITIES, MODALITY_FIELDS
from mmbench.layers import masked_mean


class ObservationDescriber:
    """The planner's input for each sample, from the masked batch only.

    Language available: ``"Transcript: <raw_text>"``. Otherwise a description of the available V/A
    features: the utterance average over observed steps, standardised with the training statistics,
    summarised as activity (mean |z|: low / moderate / high) and level (mean z: below / typical /
    above) per modality. The transcript is read only when ``available[:, 0]`` is True.
    """

    WORDS = {"V": ("Face", ("still", "moving", "animated")), "A": ("Voice", ("quiet", "steady", "loud"))}
    ACTIVITY_EDGES = (0.6, 1.0)
    LEVEL_EDGES = (-0.25, 0.25)

    def __init__(self, feature_stats: dict[str, tuple[np.ndarray, np.ndarray]]):
        self.stats = {m: (torch.as_tensor(mu, dtype=torch.float32), torch.as_tensor(sd, dtype=torch.float32))
                      for m, (mu, sd) in feature_stats.items()}

    def describe_modality(self, modality: str, features: Tensor, step_mask: Tensor) -> list[str]:
        mean, std = (s.to(features.device) for s in self.stats[modality])
        z = masked_mean((features - mean) / std, step_mask)  # (B, D)
        activity = torch.bucketize(z.abs().mean(1), torch.tensor(self.ACTIVITY_EDGES, device=z.device))
        level = torch.bucketize(z.mean(1), torch.tensor(self.LEVEL_EDGES, device=z.device))
        name, activity_words = self.WORDS[modality]
        level_words = ("below typical", "typical", "above typical")
        return [f"{name}: {activity_words[a]}, {level_words[b]}." for a, b in zip(activity.tolist(), level.tolist())]

    def describe(self, batch: dict) -> list[str]:
        available = batch["available"].bool().tolist()  # one copy per batch, not one read per sample
        size = len(available)
        parts: list[list[str]] = [[] for _ in range(size)]
        for position, modality in enumerate(MODALITIES):
            if modality == "L":
                continue
            field = MODALITY_FIELDS[modality]
            texts = self.describe_modality(modality, batch[field].float(), batch[f"{field}_mask"])
            for row in range(size):
                if available[row][position]:
                    parts[row].append(texts[row])
        raw = batch.get("raw_text") or [""] * size
        out = []
        for row in range(size):
            if available[row][0] and raw[row].strip():
                out.append("Transcript: " + " ".join(raw[row].split()))
            else:
                out.append(" ".join(parts[row]) if parts[row] else "Nothing observed.")
        return out
