"""LIMSSR's objective: 10 x MSE(score) + hard triplet loss on the fusion tokens + MSE(main head, aux head)."""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def hard_triplet_loss(embeddings: Tensor, labels: Tensor, margin: float = 1.0) -> Tensor:
    """Batch-hard triplet loss: for each anchor, its farthest positive and nearest negative (Euclidean).

    Args:
        embeddings: (N, H).
        labels: (N,) integer classes (here the index of each fusion token, so the K tokens learn
            distinct roles).
    """
    distances = torch.cdist(embeddings.float(), embeddings.float())
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    hardest_positive = (distances * same).max(1).values
    hardest_negative = distances.masked_fill(same, float("inf")).min(1).values
    valid = torch.isfinite(hardest_negative)
    if not bool(valid.any()):
        return embeddings.sum() * 0.0
    return F.relu(hardest_positive - hardest_negative + margin)[valid].mean()


def limssr_loss(outputs: dict[str, Tensor], target: Tensor, fusion_states: Tensor, *, mse_weight: float,
                triplet_weight: float, triplet_margin: float, consistency_weight: float) -> dict[str, Tensor]:
    """The weighted sum and its parts; ``target`` is the label normalised to [0, 1] like the scores."""
    mse = F.mse_loss(outputs["score"].float(), target.float())
    consistency = F.mse_loss(outputs["main"].float(), outputs["aux"].float())
    batch, tokens, hidden = fusion_states.shape
    token_ids = torch.arange(tokens, device=fusion_states.device).repeat(batch)
    triplet = (hard_triplet_loss(fusion_states.reshape(-1, hidden), token_ids, triplet_margin) if tokens > 1
               else fusion_states.sum() * 0.0)
    total = mse_weight * mse + triplet_weight * triplet + consistency_weight * consistency
    return {"loss": total, "mse": mse.detach(), "triplet": triplet.detach(), "consistency": consistency.detach()}
