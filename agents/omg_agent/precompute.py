"""The ``mmbench plan`` driver: fill the plan cache for every observation of a dataset ahead of training."""
from __future__ import annotations

import sys
import time
from typing import Sequence

import numpy as np

from agents.omg_agent.observation import ObservationDescriber
from agents.omg_agent.plan_cache import PROMPT_VERSION, SAMPLER_VERSION
from agents.omg_agent.planner import PlanBook


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
