"""OMG-Agent's Semantic Planner entry point (paper Sec. 3.3, eq. 4-6; Appendix A): c_S = g(S*) for a batch of
observations, from cached plans, planning (batched) only what the cache lacks."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from agents.omg_agent.plan_cache import PROMPT_VERSION, SAMPLER_VERSION, PlanCache, cache_root, plan_key
from agents.omg_agent.plan_schema import parse_plan
from agents.omg_agent.planner_registry import DEFAULT_PLANNER, load_planner, precision_tag
from agents.omg_agent.reranking import select_plan
from mmbench.data.text_encoder import EMBEDDING_DIM, encode_sentences


@dataclass
class PlanBook:
    """c_S for observations: cached plans, planning (batched) only the missing ones.

    psi at planning time is g applied to the observation text (adaptation: the plan cache is built once,
    before and independently of training, so the trainable observation encoder cannot be used there); g is
    all-MiniLM-L6-v2 (``mmbench.data.text_encoder``), whose space psi is trained to share in the method. When
    no candidate parses, the plan is empty and c_S is the zero vector (no guidance), counted in ``stats``.

    Args:
        planner_model: the LM name (``smollm2`` = the offline default).
        n_candidates: |Omega|.
        lambda_s, gamma: eq. (5).
        rerank: False = ablation "w/o re-ranking" (first parsable candidate).
        cache_dir: root of the caches (plans under ``omg_plans/``, sentence vectors under ``text_embeddings/``).
        batch_size: observations per LM batch.
        device: where the LM plans (None: the CPU, in float32); the method sets its own. Plans made in
            another precision (on CUDA) are cached under their own keys, tagged with that precision.
    """

    planner_model: str = DEFAULT_PLANNER
    n_candidates: int = 5
    lambda_s: float = 0.3
    gamma: float = 0.1
    rerank: bool = True
    cache_dir: Path | None = None
    batch_size: int = 16
    stats: dict = field(default_factory=lambda: {"planned": 0, "cached": 0, "no_valid_plan": 0, "seconds": 0.0})
    device: str | torch.device | None = None

    def __post_init__(self):
        self.cache = PlanCache(cache_root(self.cache_dir, self.planner_model))

    def key(self, observation: str) -> str:
        # The entry holds every sampled candidate, so "w/o re-ranking" reads the same entry and picks
        # differently (see chosen_plan): ``rerank`` is not part of the key. The CPU's float32 plans keep
        # the plain model name; another precision's plans differ slightly and are keyed apart.
        tag = precision_tag(self.device)
        model = self.planner_model if tag is None else f"{self.planner_model}@{tag}"
        return plan_key(model, self.n_candidates, self.lambda_s, self.gamma, observation)

    def chosen_plan(self, entry: dict) -> str:
        """S* of a cached entry: the re-ranked plan, or the first parsable candidate without re-ranking."""
        if self.rerank:
            return entry["plan"]
        return next((text for text, *_ in entry["candidates"] if parse_plan(text) is not None), "")

    def plans(self, observations: Sequence[str], progress=None) -> list[str]:
        """The chosen plan text for each observation ("" when no candidate parsed)."""
        keys = [self.key(o) for o in observations]
        todo: dict[str, str] = {}
        for key, obs in zip(keys, observations):
            if self.cache.get(key) is None and key not in todo:
                todo[key] = obs
        self.stats["cached"] += len(set(keys)) - len(todo)
        pending = list(todo.items())
        for start in range(0, len(pending), self.batch_size):
            chunk = pending[start:start + self.batch_size]
            self.cache.put_many(self._plan_batch([k for k, _ in chunk], [o for _, o in chunk]))
            if progress is not None:
                progress(len(chunk))
        return [self.chosen_plan(self.cache.get(k)) for k in keys]

    def _plan_batch(self, keys: list[str], observations: list[str]) -> list[dict]:
        began = time.perf_counter()
        generator = load_planner(self.planner_model, self.device)
        tag = precision_tag(self.device)
        candidates = generator.generate(observations, self.n_candidates)
        texts = [c.text for cands in candidates for c in cands]
        vectors = embed_texts(texts + list(observations), self.cache_dir)
        plan_vectors, obs_vectors = vectors[: len(texts)], vectors[len(texts):]
        entries = []
        for i, (key, obs, cands) in enumerate(zip(keys, observations, candidates)):
            rows = plan_vectors[i * self.n_candidates:(i + 1) * self.n_candidates]
            best = select_plan(cands, rows, obs_vectors[i], self.lambda_s, self.gamma, rerank=True)
            self.stats["no_valid_plan"] += best is None
            entries.append({"key": key, "observation": obs, "plan": "" if best is None else cands[best].text,
                            "candidates": [[c.text, round(c.logprob, 4), c.truncated] for c in cands],
                            "model": self.planner_model, "prompt_version": PROMPT_VERSION,
                            "sampler_version": SAMPLER_VERSION, **({"precision": tag} if tag else {})})
        self.stats["planned"] += len(observations)
        self.stats["seconds"] += time.perf_counter() - began
        return entries

    def embed(self, observations: Sequence[str]) -> np.ndarray:
        """(N, 384) c_S = g(S*) for each observation (zeros when no plan parsed)."""
        plans = self.plans(observations)
        vectors = embed_texts([p for p in plans if p], self.cache_dir)
        out = np.zeros((len(plans), EMBEDDING_DIM), dtype=np.float32)
        out[[i for i, p in enumerate(plans) if p]] = vectors
        return out


_SENTENCE_MEMO: dict[str, np.ndarray] = {}


def embed_texts(texts: Iterable[str], cache_dir: Path | None) -> np.ndarray:
    """g(text) (N, 384) for any texts: an in-process memo over mmbench's on-disk sentence cache.

    Used for plans (c_S, u_i), observations (psi at planning time) and psi's alignment targets.
    """
    texts = list(texts)
    missing = list(dict.fromkeys(t for t in texts if t not in _SENTENCE_MEMO))
    if missing:
        _SENTENCE_MEMO.update(zip(missing, encode_sentences(missing, cache_dir=cache_dir)))
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    return np.stack([_SENTENCE_MEMO[t] for t in texts]).astype(np.float32)
