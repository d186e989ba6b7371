"""SMCMSA's similar-modality completion: a repository of training samples and its donors.

The repository holds, for every **training** sample: its id, the stage-1 unimodal embedding of each
modality, each unimodal network's sentiment prediction, and the raw (input-space) features and
valid steps of each modality, as observed: complete under the ``complete`` and ``same`` settings;
under ``incomplete`` a removed modality or frame is not there (zero features, no valid step, zero
embedding). A sample with missing modalities queries it with the embeddings of its available
modalities; for each missing modality m, among the ``top_k`` most similar entries (cosine) that
observed m, the first whose predicted sentiment class matches the query's predicted class donates
its raw features of m. No match: no donor (the modality stays zero, as in SMCMSA). With complete
entries every missing modality gets the same donor, SMCMSA's rule.

Choices where SMCMSA is silent (it only completes samples with one available modality):
- Several available modalities: the similarity is the mean of the cosine similarities over the
  available modalities (one faiss inner product on concatenated, L2-normalised, availability-weighted
  vectors), and a "predicted class" is the class of the mean of the unimodal predictions over the
  query's available modalities, for the query and for each candidate donor alike (over those the
  candidate observed; all it observed if it shares none with the query).
- Incomplete entries (``incomplete`` setting): an entry's unobserved modality adds nothing to the
  similarity (zero embedding) and never donates: the candidates for modality m are searched in an
  index of the entries that observed m.
- A sample never retrieves itself: the search asks for ``top_k + 1`` neighbours and drops the entry
  whose id is the query's own (training samples are in the repository).
- Persistence: everything is a buffer (ids as the module's extra state), so a checkpoint's
  ``state_dict`` restores the repository into a fresh instance; buffers are resized on load.
  The cost: the checkpoint carries the raw training features (about 95 MB for ``mosi-synth``).
- Determinism: faiss searches with one OpenMP thread (exact ``IndexFlatIP`` search), for that search
  only: the process's thread count is restored after it. The index is on the GPU when the repository
  is on CUDA and faiss has GPU support (``mmbench.faiss_index``).
"""
from __future__ import annotations

from typing import Callable, Sequence

import faiss
import numpy as np
import torch
from torch import Tensor, nn

from mmbench.constants import MODALITIES
from mmbench.faiss_index import faiss_threads, flat_inner_product_index

NO_DONOR = -1


def sentiment_class(score: Tensor, neutral_threshold: float) -> Tensor:
    """Three-way class of a sentiment score: -1 negative, 0 neutral (|score| <= threshold), 1 positive."""
    return torch.where(score.abs() <= neutral_threshold, torch.zeros_like(score), torch.sign(score)).long()


class CompleteSampleRepository(nn.Module):
    """Training samples, as observed, that donate the features of a query's missing modalities.

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
            self.register_buffer(f"steps_{m}", torch.zeros(0, 0, dtype=torch.bool))  # (N, T) observed steps
        self._indexes: dict[bytes, tuple[faiss.Index, Tensor]] = {}  # eligible entries -> (index, their rows)
        self._row_of: dict[str, int] = {}

    # -- filling and persistence --------------------------------------------------------------
    def fill(self, ids: Sequence[str], embeddings: Tensor, predictions: Tensor,
             features: dict[str, Tensor], steps: dict[str, Tensor]) -> None:
        """Replace the content: ``embeddings`` (N, 3, H), ``predictions`` (N, 3), per-modality raw
        ``features`` (N, T, D) and observed ``steps`` (N, T) bool (none: the modality was removed)."""
        if len(set(ids)) != len(ids):
            raise ValueError("repository ids must be unique")
        for m in MODALITIES:
            observed = steps[m].detach().bool()
            setattr(self, f"steps_{m}", observed)
            setattr(self, f"features_{m}", features[m].detach().float() * observed.unsqueeze(-1))
        # An unobserved modality's embedding (computed from nothing) must not count in a similarity.
        self.embeddings = embeddings.detach().float() * self.observed().unsqueeze(-1)
        self.predictions = predictions.detach().float()
        self._set_ids(list(ids))

    def observed(self) -> Tensor:
        """(N, 3) bool: which modalities of each entry have at least one observed step."""
        return torch.stack([getattr(self, f"steps_{m}").any(1) for m in MODALITIES], 1)

    def _set_ids(self, ids: list[str]) -> None:
        self.ids = ids
        self._row_of = {sample_id: row for row, sample_id in enumerate(ids)}
        self._indexes = {}  # rebuilt from the embeddings on the next search

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
    def _search_index(self, donating: int | None) -> tuple[faiss.Index, Tensor]:
        """Index of the entries that observed modality position ``donating`` (None: every entry) and
        their repository rows; entries with the same rows share one index."""
        eligible = torch.ones(len(self), dtype=torch.bool) if donating is None else self.observed()[:, donating].cpu()
        key = eligible.numpy().tobytes()
        if key not in self._indexes:
            rows = eligible.nonzero().squeeze(1)
            entries = self.embeddings[rows.to(self.embeddings.device)]
            index = flat_inner_product_index(self.embeddings.shape[1] * self.embeddings.shape[2],
                                             self.embeddings.device)
            index.add(self._as_search_vectors(entries, torch.ones_like(entries[..., 0], dtype=torch.bool)))
            self._indexes[key] = (index, rows)
        return self._indexes[key]

    @staticmethod
    def _as_search_vectors(embeddings: Tensor, available: Tensor) -> np.ndarray:
        """(B, 3, H) -> (B, 3H): normalised per modality, weighted by availability / count, so an inner
        product with an all-modality repository vector is the mean cosine over available modalities."""
        weights = available.float() / available.float().sum(1, keepdim=True).clamp_min(1.0)
        vectors = nn.functional.normalize(embeddings.float(), dim=-1) * weights.unsqueeze(-1)
        return np.ascontiguousarray(vectors.flatten(1).detach().cpu().numpy(), dtype=np.float32)

    def neighbours(self, embeddings: Tensor, available: Tensor, query_ids: Sequence[str],
                   donating: int | None = None) -> Tensor:
        """(B, top_k) repository rows, most similar first, never the query itself; -1 pads. With
        ``donating`` (a modality position), only entries that observed that modality."""
        result = torch.full((len(query_ids), self.top_k), NO_DONOR, dtype=torch.long)
        if len(self) == 0:
            return result
        index, index_rows = self._search_index(donating)
        with faiss_threads(1):  # deterministic, and the benchmark's cores are few
            _, found = index.search(self._as_search_vectors(embeddings, available), self.top_k + 1)
        for i, sample_id in enumerate(query_ids):
            own_row = self._row_of.get(sample_id, NO_DONOR)
            rows = [int(index_rows[r]) for r in found[i] if r != NO_DONOR]  # faiss pads with -1
            kept = [r for r in rows if r != own_row][: self.top_k]
            result[i, : len(kept)] = torch.tensor(kept, dtype=torch.long)
        return result

    def donors(self, embeddings: Tensor, predictions: Tensor, available: Tensor, query_ids: Sequence[str],
               classify: Callable[[Tensor], Tensor], donating: int | None = None) -> Tensor:
        """(B,) the donating row of each query, or -1: the first of its neighbours (among the entries
        that observed modality ``donating``) whose predicted class equals the query's own. A class
        is ``classify`` of the mean unimodal prediction over the query's available modalities (for
        a candidate: those it observed too, or all it observed if it shares none)."""
        candidates = self.neighbours(embeddings, available, query_ids, donating).to(available.device)  # (B, k)
        weights = available.float() / available.float().sum(1, keepdim=True).clamp_min(1.0)  # (B, 3)
        query_class = classify((predictions.float() * weights).sum(1))  # (B,)
        if len(self) == 0:
            return candidates[:, 0]
        rows = candidates.clamp_min(0)
        observed = self.observed()[rows]  # (B, k, 3)
        shared = observed & available.unsqueeze(1)
        counted = torch.where(shared.any(-1, keepdim=True), shared, observed).float()
        counted = counted / counted.sum(-1, keepdim=True).clamp_min(1.0)
        candidate_class = classify((self.predictions[rows] * counted).sum(-1))  # (B, k)
        match = (candidate_class == query_class.unsqueeze(1)) & (candidates != NO_DONOR)
        first = match.float().argmax(1)  # first matching position (0 if none; checked below)
        donor = candidates.gather(1, first.unsqueeze(1)).squeeze(1)
        return torch.where(match.any(1), donor, torch.full_like(donor, NO_DONOR))

    def donors_by_modality(self, embeddings: Tensor, predictions: Tensor, available: Tensor,
                           query_ids: Sequence[str], classify: Callable[[Tensor], Tensor]) -> Tensor:
        """(B, 3): for each modality a query misses, its donating row (-1: none, or not missing).
        Modalities whose candidate entries are the same (all of them, with complete entries) share
        one search, hence one donor: SMCMSA's rule."""
        result = torch.full(available.shape, NO_DONOR, dtype=torch.long, device=available.device)
        observed = self.observed().cpu()
        searched: list[tuple[Tensor, Tensor]] = []  # (eligible entries, their donors)
        for position in range(len(MODALITIES)):
            missing = ~available[:, position]
            if not bool(missing.any()):
                continue
            eligible = observed[:, position]
            donor = next((d for e, d in searched if torch.equal(e, eligible)), None)
            if donor is None:
                donor = self.donors(embeddings, predictions, available, query_ids, classify, donating=position)
                searched.append((eligible, donor))
            result[:, position] = torch.where(missing, donor, torch.full_like(donor, NO_DONOR))
        return result

    def donated(self, modality: str, donor: Tensor) -> tuple[Tensor, Tensor]:
        """Raw features (B, T, D) and observed steps (B, T) of ``modality`` from each donor; zeros and
        an empty mask where ``donor`` is -1."""
        features, steps = getattr(self, f"features_{modality}"), getattr(self, f"steps_{modality}")
        has_donor = (donor != NO_DONOR).to(features.device)
        rows = donor.clamp_min(0).to(features.device)
        return features[rows] * has_donor.view(-1, 1, 1), steps[rows] & has_donor.unsqueeze(1)
