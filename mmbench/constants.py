"""Vocabulary every part of mmbench shares: modalities, patterns, protocols, settings, seeds.

Defined once here; nothing else retypes a modality list (see ../shared/interfaces.md).
"""
from __future__ import annotations

from itertools import combinations, permutations

#: Canonical modality order: language, vision, audio. ``available`` tensors are (B, 3) in this order.
MODALITIES: tuple[str, ...] = ("L", "V", "A")
#: Batch / file field that holds each modality's features.
MODALITY_FIELDS: dict[str, str] = {"L": "text", "V": "vision", "A": "audio"}
MODALITY_NAMES: dict[str, str] = {"L": "language", "V": "vision", "A": "audio"}


def _pattern_id(letters: tuple[str, ...]) -> str:
    return "".join(m for m in MODALITIES if m in letters)


#: The 7 availability patterns of the ``fixed`` protocol; the letters present are available.
PATTERNS: tuple[str, ...] = tuple(
    _pattern_id(combo) for size in (1, 2, 3) for combo in combinations(MODALITIES, size)
)
#: The order tables show them in (OMG-Agent paper, Table 1).
TABLE_PATTERN_ORDER: tuple[str, ...] = ("A", "V", "L", "VA", "LA", "LV", "LVA")


def pattern_to_available(pattern: str) -> tuple[bool, bool, bool]:
    """Availability flags (L, V, A) of a pattern id.

    Example:
        >>> pattern_to_available("LA")
        (True, False, True)
    """
    unknown = set(pattern) - set(MODALITIES)
    if not pattern or unknown or pattern != _pattern_id(tuple(pattern)):
        raise ValueError(f"unknown pattern id {pattern!r}; expected one of {', '.join(PATTERNS)}")
    return tuple(m in pattern for m in MODALITIES)  # type: ignore[return-value]


PROTOCOLS: tuple[str, ...] = ("fixed", "random", "frame", "imbalanced")
#: What ``--protocol all`` runs (interfaces.md: ``fixed|random|frame|all``); ``imbalanced`` is asked for by name.
ALL_PROTOCOLS: tuple[str, ...] = ("fixed", "random", "frame")
RANDOM_RATES: tuple[str, ...] = tuple(f"{r / 10:.1f}" for r in range(8))  # "0.0".."0.7"
FRAME_RATES: tuple[str, ...] = tuple(f"{r / 10:.1f}" for r in range(10))  # "0.0".."0.9", as LNLN
#: The rates one modality may take under ``imbalanced``: the ``random`` grid.
IMBALANCED_RATE_GRID: tuple[str, ...] = RANDOM_RATES
#: Default ``imbalanced`` conditions: the 6 orderings of (0.3, 0.5, 0.7) over L, V, A (MissBench).
#: Their mean rate is 0.5, so each sits beside the ``random`` protocol's shared rate 0.5.
IMBALANCED_CONDITIONS: tuple[str, ...] = tuple(
    "-".join(f"{m}{r}" for m, r in zip(MODALITIES, order)) for order in permutations(("0.3", "0.5", "0.7")))
#: A target MR above this cannot be met while every sample keeps one modality.
MAX_RANDOM_RATE: float = 2.0 / 3.0

TRAIN_SETTINGS: tuple[str, ...] = ("complete", "same", "incomplete")
DEFAULT_TRAIN_SETTING: dict[str, str] = {"fixed": "complete", "random": "same", "frame": "same",
                                         "imbalanced": "same"}
SELECTIONS: tuple[str, ...] = ("valid", "test-oracle")
SPLITS: tuple[str, ...] = ("train", "valid", "test")
#: MMSA's default seeds.
DEFAULT_SEEDS: tuple[int, ...] = (1111, 1112, 1113, 1114, 1115)
#: Lightning monitor every method's model selection reads (lower is better).
VALID_MONITOR: str = "val_mae"
