"""SMCMSA's similar-modality completion: a repository of complete training samples and its donors.

The repository holds, for every complete **training** sample: its id, the stage-1 unimodal
embedding of each modality, each unimodal network's sentiment prediction, and the raw (input-space)
features and lengths of each modality. A sample with missing modalities queries it with the
embeddings of its available modalities; among the ``top_k`` most similar entries (cosine) the first
whose predicted sentiment class matches the query's predicted class donates its raw features for
the missing modalities. No match: no donor (the missing modalities stay zero, as in SMCMSA).

Choices where SMCMSA is silent (it only completes samples with one available modality):
- Several available modalities: the similarity is the mean of the cosine similarities over the
  available modalities (one faiss inner product on concatenated, L2-normalised, availability-weighted
  vectors), and a "predicted class" is the class of the mean of the unimodal predictions over the
  query's available modalities, for the query and for each candidate donor alike.
- A sample never retrieves itself: the search asks for ``top_k + 1`` neighbours and drops the entry
  whose id is the query's own (training samples are in the repository).
- Persistence: everything is a buffer (ids as the module's extra state), so a checkpoint's
  ``state_dict`` restores the repository into a fresh instance; buffers are resized on load.
  The cost: the checkpoint carries the raw training features (about 95 MB for ``mosi-synth``).
- Determinism: faiss runs with one OpenMP thread (exact ``IndexFlatIP`` search).
"""
from __future__ import annotations

from typing import Callable, Sequence

import faiss
import numpy as np
import torch
from torch import Tensor, nn

from mmbench.constants import MODALITIES

NO_DONOR = -1


def sentiment_class(score: Tensor, neutral_threshold: float) -> Tensor:
    """Three-way class of a sentiment score: -1 negative, 0 neutral (|score| <= threshold), 1 positive."""
    return torch.where(score.abs() <= neutral_threshold, torch.zeros_like(score), torch.sign(score)).long()


class CompleteSampleRepository(nn.Module):
    """Complete training samples that donate the features of a query's missing modalities.

    Args:
        top_k: neighbours inspected for a class match (SMCMSA: 3).
    """

    def __init__(self, top_k: int = 3):
        super().__init__()
        self.top_k = top_k
        self.ids: list[str] = []
        self.register_buffer("embeddings", torch.zeros(0, len(MODALITIES), 0))  # (N, 3, H)
        self.register_buffer("predictions", torch.zeros(0, len(MODALITIES)))  # (N, 3)
        for m in MODALITIES:
            self.register_buffer(f"features_{m}", torch.zeros(0, 0, 0))  # (N, T, D) raw input space
            self.register_buffer(f"lengths_{m}", torch.zeros(0, dtype=torch.long))  # (N,)
        self._index: faiss.Index | None = None
        self._row_of: dict[str, int] = {}

    # -- filling and persistence --------------------------------------------------------------
    def fill(self, ids: Sequence[str], embeddings: Tensor, predictions: Tensor,
             features: dict[str, Tensor], lengths: dict[str, Tensor]) -> None:
        """Replace the content: ``embeddings`` (N, 3, H), ``predictions`` (N, 3), per-modality raw
        ``features`` (N, T, D) and ``lengths`` (N,)."""
        if len(set(ids)) != len(ids):
            raise ValueError("repository ids must be unique")
        self.embeddings = embeddings.detach().float()
        self.predictions = predictions.detach().float()
        for m in MODALITIES:
            setattr(self, f"features_{m}", features[m].detach().float())
            setattr(self, f"lengths_{m}", lengths[m].detach().long())
        self._set_ids(list(ids))

    def _set_ids(self, ids: list[str]) -> None:
        self.ids = ids
        self._row_of = {sample_id: row for row, sample_id in enumerate(ids)}
        self._index = None  # rebuilt from the embeddings on the next search

    def get_extra_state(self) -> dict:
        return {"ids": list(self.ids)}

    def set_extra_state(self, state: dict) -> None:
        self._set_ids(list(state["ids"]))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A fresh instance holds empty buffers: take the stored shapes before copying values in.
        for name, buffer in self._buffers.items():
            stored = state_dict.get(prefix + name)
            if buffer is not None and stored is not None and stored.shape != buffer.shape:
                self._buffers[name] = torch.empty(stored.shape, dtype=buffer.dtype, device=buffer.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def __len__(self) -> int:
        return len(self.ids)

    # -- retrieval ------------------------------------------------------------------------------
    def _search_index(self) -> faiss.Index:
        if self._index is None:
            self._index = faiss.IndexFlatIP(self.embeddings.shape[1] * self.embeddings.shape[2])
            self._index.add(self._as_search_vectors(self.embeddings, torch.ones_like(self.embeddings[..., 0],
                                                                                      dtype=torch.bool)))
        return self._index

    @staticmethod
    def _as_search_vectors(embeddings: Tensor, available: Tensor) -> np.ndarray:
        """(B, 3, H) -> (B, 3H): normalised per modality, weighted by availability / count, so an inner
        product with an all-modality repository vector is the mean cosine over available modalities."""
        weights = available.float() / available.float().sum(1, keepdim=True).clamp_min(1.0)
        vectors = nn.functional.normalize(embeddings.float(), dim=-1) * weights.unsqueeze(-1)
        return np.ascontiguousarray(vectors.flatten(1).detach().cpu().numpy(), dtype=np.float32)

    def neighbours(self, embeddings: Tensor, available: Tensor, query_ids: Sequence[str]) -> Tensor:
        """(B, top_k) repository rows, most similar first, never the query itself; -1 pads."""
        batch_size = len(query_ids)
        if len(self) == 0:
            return torch.full((batch_size, self.top_k), NO_DONOR, dtype=torch.long)
        faiss.omp_set_num_threads(1)  # deterministic, and the benchmark's cores are few
        _, rows = self._search_index().search(self._as_search_vectors(embeddings, available), self.top_k + 1)
        result = torch.full((batch_size, self.top_k), NO_DONOR, dtype=torch.long)
        for i, sample_id in enumerate(query_ids):
            own_row = self._row_of.get(sample_id, NO_DONOR)
            kept = [int(r) for r in rows[i] if r != NO_DONOR and r != own_row][: self.top_k]
            result[i, : len(kept)] = torch.tensor(kept, dtype=torch.long)
        return result

    def donors(self, embeddings: Tensor, predictions: Tensor, available: Tensor, query_ids: Sequence[str],
               classify: Callable[[Tensor], Tensor]) -> Tensor:
        """(B,) the donating row of each query, or -1: the first of its neighbours whose predicted class
        (``classify`` of the mean unimodal prediction over the query's available modalities) equals
        the query's own predicted class."""
        candidates = self.neighbours(embeddings, available, query_ids).to(available.device)  # (B, k)
        weights = available.float() / available.float().sum(1, keepdim=True).clamp_min(1.0)  # (B, 3)
        query_class = classify((predictions.float() * weights).sum(1))  # (B,)
        if len(self) == 0:
            return candidates[:, 0]
        stored = self.predictions[candidates.clamp_min(0)]  # (B, k, 3)
        candidate_class = classify((stored * weights.unsqueeze(1)).sum(-1))  # (B, k)
        match = (candidate_class == query_class.unsqueeze(1)) & (candidates != NO_DONOR)
        first = match.float().argmax(1)  # first matching position (0 if none; checked below)
        donor = candidates.gather(1, first.unsqueeze(1)).squeeze(1)
        return torch.where(match.any(1), donor, torch.full_like(donor, NO_DONOR))

    def donated(self, modality: str, donor: Tensor) -> tuple[Tensor, Tensor]:
        """Raw features (B, T, D) and step mask (B, T) of ``modality`` from each donor; zeros and an
        empty mask where ``donor`` is -1."""
        features, lengths = getattr(self, f"features_{modality}"), getattr(self, f"lengths_{modality}")
        has_donor = donor != NO_DONOR
        rows = donor.clamp_min(0).to(features.device)
        picked = features[rows] * has_donor.to(features.device).view(-1, 1, 1)
        steps = torch.arange(features.shape[1], device=features.device).unsqueeze(0) < lengths[rows].unsqueeze(1)
        return picked, steps & has_donor.to(features.device).unsqueeze(1)
