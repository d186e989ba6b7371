"""The on-disk plan cache: where chosen plans are stored, under which key, and the versions that key carries."""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

#: Bump when the prompt, the schema or the decoding changes: old cache entries are then not reused.
PROMPT_VERSION = "omg-plan-v1"
#: Bump when the candidates' sampling changes (seeds, generator use): part of the cache key too.
#: v2: seeded per (observation, candidate, slot); v1 seeded from the whole LM batch.
SAMPLER_VERSION = "omg-sampler-v2"


def plan_key(planner_model: str, n_candidates: int, lambda_s: float, gamma: float, observation: str) -> str:
    """sha256 of (planner model, prompt version, sampler version, |Omega|, lambda_s, gamma, observation text).

    A changed prompt or sampler never reads plans written before it. The observation text is a function of
    (dataset, sample id, availability pattern), so identical observations (e.g. the 4 patterns with language
    share the transcript) are planned once and reused across seeds, runs and patterns.
    """
    payload = f"{planner_model}|{PROMPT_VERSION}|{SAMPLER_VERSION}|{n_candidates}|{lambda_s}|" \
              f"{gamma}|{observation}"
    return hashlib.sha256(payload.encode()).hexdigest()


def cache_root(cache_dir: Path | None, planner_model: str) -> Path | None:
    """``<cache_dir>/omg_plans/<model slug>``: one cache per planner model (None: memory only)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", planner_model)
    return None if cache_dir is None else Path(cache_dir) / "omg_plans" / slug


class PlanCache:
    """Chosen plans on disk: ``<root>/chunk-<pid>.jsonl``, append-only, one JSON object a line."""

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
