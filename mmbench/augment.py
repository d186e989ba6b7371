"""Batch views a method builds on top of what the benchmark gives it (shared, method-agnostic).

A method may remove more than the benchmark mask removed (its own augmentation), never restore
anything. ``complete_view`` is the one way to reach the unmasked training features, and only where
the training setting hands them over: a complete training batch, or ``full_<field>`` targets
under the ``same`` setting. Under ``incomplete`` it refuses. ``training_views`` decides, from the
run's training setting (never from the batch's keys), whether a method's own missing-pattern
sampling applies: under ``complete`` only.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from mmbench.constants import MODALITIES, MODALITY_FIELDS, PATTERNS, pattern_to_available

#: The 6 patterns with at least one modality missing (MMIN's training conditions).
MISSING_PATTERNS: tuple[str, ...] = tuple(p for p in PATTERNS if len(p) < len(MODALITIES))


def has_complete_view(batch: dict) -> bool:
    """Whether the unmasked features of this batch are known to the method."""
    if all(f"full_{MODALITY_FIELDS[m]}" in batch for m in MODALITIES):
        return True
    return bool(batch["available"].all()) and _no_frames_dropped(batch)


def complete_view(batch: dict) -> dict:
    """The batch with every modality present: the training targets of a recovery method.

    Raises:
        ValueError: when the batch is masked and carries no ``full_<field>`` targets (the
            ``incomplete`` setting, or an evaluation batch).
    """
    if not has_complete_view(batch):
        raise ValueError("this batch has removed features and no full_<field> targets: a complete view "
                         "exists only for complete training batches or under the 'same' training setting")
    view = dict(batch)
    for m in MODALITIES:
        field = MODALITY_FIELDS[m]
        full = batch.get(f"full_{field}", batch[field])
        lengths = batch[f"{field}_lengths"]
        view[field] = full
        view[f"{field}_mask"] = torch.arange(full.shape[1], device=full.device).unsqueeze(0) < lengths.unsqueeze(1)
    view["available"] = torch.ones_like(batch["available"])
    return view


def _no_frames_dropped(batch: dict) -> bool:
    for m in MODALITIES:
        field = MODALITY_FIELDS[m]
        mask = batch[f"{field}_mask"]
        lengths = batch[f"{field}_lengths"]
        if not bool((mask.sum(1) == lengths.clamp_max(mask.shape[1])).all()):
            return False
    return True


def drop_modalities(batch: dict, available: Tensor) -> dict:
    """The batch with only the modalities in ``available`` (B, 3) kept, the others zeroed.

    ``available`` is intersected with the batch's own flags, so nothing removed comes back.
    Transcripts and token ids of a removed language modality are blanked too.
    """
    available = available.to(batch["available"].device) & batch["available"]
    view = dict(batch)
    for position, m in enumerate(MODALITIES):
        field = MODALITY_FIELDS[m]
        keep = available[:, position]
        view[f"{field}_mask"] = batch[f"{field}_mask"] & keep.unsqueeze(1)
        view[field] = batch[field] * view[f"{field}_mask"].unsqueeze(-1).to(batch[field].dtype)
    view["available"] = available
    if "raw_text" in batch:
        view["raw_text"] = [t if bool(k) else "" for t, k in zip(batch["raw_text"], available[:, 0].tolist())]
    if "text_bert" in batch:
        view["text_bert"] = batch["text_bert"] * available[:, 0].view(-1, 1, 1).to(batch["text_bert"].dtype)
    return view


def random_patterns(batch_size: int, patterns: tuple[str, ...] = MISSING_PATTERNS,
                    generator: torch.Generator | None = None, device=None) -> Tensor:
    """(B, 3) availability flags, each row a pattern drawn uniformly from ``patterns``."""
    table = torch.tensor([pattern_to_available(p) for p in patterns], dtype=torch.bool)
    choice = torch.randint(len(patterns), (batch_size,), generator=generator)
    return table[choice].to(device)


def draw_patterns(batch: dict, patterns: tuple[str, ...] = PATTERNS, generator: torch.Generator | None = None) -> dict:
    """The batch with each sample reduced to one of ``patterns``, drawn uniformly per sample."""
    available = random_patterns(len(batch["label"]), patterns, generator, batch["available"].device)
    return drop_modalities(batch, available)


def training_input(batch: dict, train_setting: str, simulate: Callable[[dict], dict] = draw_patterns) -> dict:
    """What a method trains on: under ``complete`` its own simulated missingness (``simulate``,
    default: one of the 7 patterns per sample); under ``same`` and ``incomplete`` the batch exactly
    as the benchmark masked it, nothing added."""
    return simulate(batch) if train_setting == "complete" else batch


def training_views(batch: dict, train_setting: str,
                   simulate: Callable[[dict], dict] = draw_patterns) -> tuple[dict, dict]:
    """(input, complete target) of a training batch of a recovery method: :func:`training_input`,
    and the complete features (from ``full_<field>`` under ``same``; ``incomplete`` has none, and
    :func:`complete_view` raises)."""
    return training_input(batch, train_setting, simulate), complete_view(batch)
