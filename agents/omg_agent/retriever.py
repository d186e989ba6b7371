"""OMG-Agent's Evidence Retriever (paper Sec. 3.4, eq. 7-9): (u_X, c_S) -> top-K evidence E and C_evi.

The knowledge base holds the **training split only** (it is filled from the training loader). Entry i has
a key k_i (a learnable projection of the entry's complete observation embedding and of u_i, recomputed
when the index is rebuilt), a value v_i (the entry's standardised utterance-level features of the target
modality) and u_i = g(d_i), the sentence embedding of the entry's plan under its full observation.

Search: faiss ``IndexFlatIP`` over L2-normalised keys (inner product = cosine); a GPU index when faiss was
built with GPU support and the keys live on CUDA (``mmbench.faiss_index``: one set of GPU resources per
process; :func:`mmbench.faiss_index.faiss_index_kind` says which kind a run gets). faiss returns the
top-(K + 1) indices without gradient; the scores of those K are then recomputed with the current key
network, so the query and key projections are trained end to end (as REALM does). A query's own training
entry is removed from its neighbours (``exclude_ids``), so a sample never retrieves itself. The index is
rebuilt when the keys change (:meth:`KnowledgeBase.rebuild`, once per training epoch by the method; its
cost is recorded in ``last_rebuild_seconds``).

Switches for the ablations: ``weighting="mean"`` (w/o sparse attention: uniform mean over top-K),
``query_mode`` = ``plan`` (eq. 7), ``content`` (u_X only: c_S zeroed in the query) or ``random_plan``
(c_S replaced by a random plan embedding from the base).
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmbench.faiss_index import flat_inner_product_index


class KnowledgeBase(nn.Module):
    """Training entries of one target modality and their faiss index.

    Buffers are not persistent: the base is rebuilt from the training loader at every fit start.
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("observation", torch.zeros(0, 0), persistent=False)  # (N, d_u) complete obs.
        self.register_buffer("semantic", torch.zeros(0, 0), persistent=False)  # (N, 384) u_i = g(d_i)
        self.register_buffer("value", torch.zeros(0, 0), persistent=False)  # (N, D_m) v_i
        self.ids: list[str] = []
        self.index = None
        self.last_rebuild_seconds = float("nan")

    def __len__(self) -> int:
        return len(self.ids)

    def fill(self, ids: list[str], observation: Tensor, semantic: Tensor, value: Tensor) -> None:
        self.ids = list(ids)
        self._row = {sample_id: row for row, sample_id in enumerate(self.ids)}
        self.observation, self.semantic, self.value = observation, semantic, value
        self.index = None

    def rows_of(self, ids: list[str]) -> Tensor:
        """Row of each id in the base, -1 for ids not in it (validation / test samples)."""
        return torch.tensor([self._row.get(i, -1) for i in ids], dtype=torch.long)

    @torch.no_grad()
    def rebuild(self, keys: Tensor) -> None:
        """(Re)index L2-normalised ``keys`` (N, d); called whenever the key network changed."""
        began = time.perf_counter()
        vectors = F.normalize(keys.float(), dim=1).cpu().numpy().astype(np.float32)
        self.index = flat_inner_product_index(vectors.shape[1], keys.device)
        self.index.add(np.ascontiguousarray(vectors))
        self.last_rebuild_seconds = time.perf_counter() - began

    def search(self, queries: Tensor, k: int, exclude_rows: Tensor) -> Tensor:
        """(B, k) rows of the k nearest entries by cosine, never the row in ``exclude_rows`` (B,)."""
        if self.index is None:
            raise RuntimeError("the knowledge base has no index: call rebuild(keys) first")
        k = min(k, len(self) - 1)
        depth = k + 1
        vectors = F.normalize(queries.detach().float(), dim=1).cpu().numpy().astype(np.float32)
        _, found = self.index.search(np.ascontiguousarray(vectors), depth)
        found = torch.from_numpy(found)  # (B, k + 1)
        keep = found != exclude_rows.unsqueeze(1).cpu()
        rows = []
        for r in range(found.shape[0]):  # drop the query's own entry (at most one), keep the order
            rows.append(found[r][keep[r]][:k])
        return torch.stack(rows).to(queries.device)


class EvidenceRetriever(nn.Module):
    """q = sigma(W_q [u_X ; c_S] + b_q); keys k_i = sigma(W_k [o_i ; u_i] + b_k); top-K softmax(cos / kappa).

    Args:
        observation_dim: d_u of u_X (and of the entries' complete-observation embeddings o_i).
        plan_dim: d_S of c_S and u_i.
        key_dim: d of q and k_i.
        top_k: K.
        temperature: kappa.
        weighting: ``softmax`` (eq. 8) or ``mean`` (ablation: uniform over the top-K).
        query_mode: ``plan`` | ``content`` | ``random_plan`` (ablations of Appendix D, Table 3).
    """

    def __init__(self, observation_dim: int, plan_dim: int, key_dim: int = 128, top_k: int = 10,
                 temperature: float = 0.07, weighting: str = "softmax", query_mode: str = "plan"):
        super().__init__()
        if weighting not in ("softmax", "mean") or query_mode not in ("plan", "content", "random_plan"):
            raise ValueError(f"unknown retriever switch weighting={weighting!r} query_mode={query_mode!r}")
        self.query = nn.Sequential(nn.Linear(observation_dim + plan_dim, key_dim), nn.Tanh())
        self.key = nn.Sequential(nn.Linear(observation_dim + plan_dim, key_dim), nn.Tanh())
        self.top_k, self.temperature = top_k, temperature
        self.weighting, self.query_mode = weighting, query_mode

    def entry_keys(self, base: KnowledgeBase, rows: Tensor | None = None) -> Tensor:
        observation = base.observation if rows is None else base.observation[rows]
        semantic = base.semantic if rows is None else base.semantic[rows]
        return self.key(torch.cat([observation, semantic], dim=-1))

    def query_plan(self, base: KnowledgeBase, plan: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if self.query_mode == "content":
            return torch.zeros_like(plan)
        if self.query_mode == "random_plan":
            pick = torch.randint(len(base), (plan.shape[0],), generator=generator).to(plan.device)
            return base.semantic[pick]
        return plan

    def forward(self, base: KnowledgeBase, observation: Tensor, plan: Tensor, exclude_rows: Tensor,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """(E (B, D_m), C_evi (B,), neighbour rows (B, K)) for queries from u_X (B, d_u) and c_S (B, d_S)."""
        query = self.query(torch.cat([observation, self.query_plan(base, plan, generator)], dim=-1))  # (B, d)
        rows = base.search(query, self.top_k, exclude_rows)  # (B, K)
        keys = self.entry_keys(base, rows)  # (B, K, d), with gradient
        scores = F.cosine_similarity(query.unsqueeze(1), keys, dim=-1) / self.temperature  # s_i
        if self.weighting == "mean":
            weights = torch.full_like(scores, 1.0 / scores.shape[1])
        else:
            weights = torch.softmax(scores, dim=1)  # alpha_i over N_K
        evidence = (weights.unsqueeze(-1) * base.value[rows]).sum(1)  # E, eq. (8)
        plan_cos = F.cosine_similarity(plan.unsqueeze(1), base.semantic[rows], dim=-1)
        evidence_cost = (weights * (1.0 - plan_cos)).sum(1)  # C_evi, eq. (9)
        return evidence, evidence_cost, rows
