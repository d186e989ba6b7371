"""The saved mask files of a results directory: built once, read by every method of a sweep.

A mask file is keyed by (dataset, split, protocol, condition, seed, sample-set) and lives under
``<results>/masks/``. The first run that needs it writes it; every later run, whatever its method,
loads the identical file, so every method sees the same removed features.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from mmbench.constants import PATTERNS
from mmbench.data.types import SplitData
from mmbench.missing import MaskSet, make_mask_set

TRAIN_MIXED_CONDITION = "mixed"  # incomplete/same training under fixed: a pattern drawn per sample


def _ids_digest(ids: np.ndarray) -> str:
    return hashlib.sha256("\n".join(sorted(map(str, ids))).encode()).hexdigest()[:12]


def mask_file(masks_dir: Path, dataset: str, split: str, protocol: str, condition: str, seed: int,
              ids: np.ndarray) -> Path:
    return masks_dir / dataset / f"{split}-{protocol}-{condition}-seed{seed}-{_ids_digest(ids)}.npz"


def saved_mask(masks_dir: Path, dataset: str, split_name: str, split: SplitData, protocol: str,
               condition: str, seed: int) -> MaskSet:
    """Load the mask file of this key, or build it deterministically and save it atomically."""
    path = mask_file(masks_dir, dataset, split_name, protocol, condition, seed, split.ids)
    if path.is_file():
        return MaskSet.load(path)
    incomplete = condition == TRAIN_MIXED_CONDITION
    mask = make_mask_set(dataset, split_name, split.ids, split.lengths, split.seq_lens(),
                         protocol, condition, seed, incomplete_train=incomplete)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    mask.save(tmp)
    os.replace(tmp, path)  # another process may have written the same content meanwhile: fine
    return MaskSet.load(path)


def evaluation_conditions(protocol: str, condition: str) -> list[str]:
    """The test (and validation) conditions of a run: the 7 patterns for fixed, else its rate."""
    return list(PATTERNS) if protocol == "fixed" else [condition]


def run_masks(masks_dir: Path, dataset: str, splits: dict[str, SplitData], protocol: str, condition: str,
              seed: int, train_setting: str, test_conditions: tuple[str, ...] | None = None
              ) -> tuple[MaskSet | None, dict[str, MaskSet], dict[str, MaskSet]]:
    """(train mask or None, validation masks, test masks) of one run, all from saved files.

    ``test_conditions`` (``--eval-rates``) widens the test beyond the run's own conditions; validation,
    hence model selection, stays at the run's own condition: what the model is tested at is never a
    prior it was selected with.
    """
    train_mask = None
    if train_setting != "complete":
        train_condition = TRAIN_MIXED_CONDITION if protocol == "fixed" else condition
        train_mask = saved_mask(masks_dir, dataset, "train", splits["train"], protocol, train_condition, seed)
    conditions = evaluation_conditions(protocol, condition)
    valid = {c: saved_mask(masks_dir, dataset, "valid", splits["valid"], protocol, c, seed) for c in conditions}
    test = {c: saved_mask(masks_dir, dataset, "test", splits["test"], protocol, c, seed)
            for c in (test_conditions or conditions)}
    return train_mask, valid, test


def combined_sha256(masks: list[MaskSet | None]) -> str:
    """One digest over several mask sets (their own content hashes, in order)."""
    return hashlib.sha256("\n".join(m.sha256() if m else "complete" for m in masks).encode()).hexdigest()
