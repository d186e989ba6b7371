"""The missingness protocols as pure, seeded mask builders (definitions: docs/protocols.md).

- ``fixed``: one of the 7 availability patterns for the whole split (or, for training under the
  ``incomplete``/``same`` settings, a pattern drawn uniformly per sample).
- ``random``: a sample-level missing rate MR = 1 - sum(available) / (3N), every sample keeping at
  least one modality, split into samples missing two (fraction a) and one (fraction b) modalities
  with 2a + b = 3 MR, as in IMDer and DiCMoR.
- ``frame``: each valid time step of every modality dropped with probability r (TFR-Net / LNLN).
- ``imbalanced``: each modality missing at its own rate, every sample keeping at least one
  (MissBench; :mod:`mmbench.missing.imbalanced`).

Every builder takes an explicit ``numpy.random.Generator``; :func:`make_mask_set` derives it from
the key (dataset, split, protocol, condition, seed) with sha256, so masks agree across processes.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

from mmbench.constants import MAX_RANDOM_RATE, MODALITIES, PATTERNS, PROTOCOLS, pattern_to_available
from mmbench.missing.imbalanced import imbalanced_available, parse_imbalanced
from mmbench.missing.maskset import MaskSet


def mask_seed(dataset: str, split: str, protocol: str, condition: str, seed: int) -> int:
    """The 64-bit generator seed of a mask key (sha256, stable across processes and platforms).

    Example:
        >>> mask_seed("mosi", "test", "random", "0.3", 1111) == mask_seed("mosi", "test", "random", "0.3", 1111)
        True
    """
    key = json.dumps(["mmbench-mask-v1", dataset, split, protocol, condition, int(seed)])
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")


def fixed_available(n: int, pattern: str) -> np.ndarray:
    """(n, 3) bool availability of one pattern for every sample.

    Example:
        >>> fixed_available(2, "LA")
        array([[ True, False,  True],
               [ True, False,  True]])
    """
    return np.tile(np.array(pattern_to_available(pattern), dtype=bool), (n, 1))


def mixed_available(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) bool: each sample's pattern drawn uniformly from the 7 patterns (training masks).

    Example:
        >>> bool(mixed_available(4, np.random.default_rng(0)).any(axis=1).all())
        True
    """
    flags = np.array([pattern_to_available(p) for p in PATTERNS], dtype=bool)  # (7, 3)
    return flags[rng.integers(len(PATTERNS), size=n)]


def two_missing_fraction(rate: float) -> float:
    """Target fraction a of samples missing two modalities at missing rate ``rate`` (<= 2/3).

    The rest of the 3 MR removals go to b = 3 MR - 2a samples missing one. This piecewise-linear
    rule reproduces IMDer's schedule (``miss_2`` / ``miss_1`` in its data loader) at every rate
    0.1 .. 0.6: a = b = MR up to 0.3, then a = 2 MR - 0.3 (b = 0.6 - MR), and b = 0 past 0.6.

    Example:
        >>> [round(two_missing_fraction(r / 10), 6) for r in range(1, 7)]
        [0.1, 0.2, 0.3, 0.5, 0.7, 0.9]
    """
    if rate <= 0.3:
        return rate
    if rate <= 0.6:
        return 2.0 * rate - 0.3
    return 1.5 * rate


def random_available(n: int, rate: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Sample-level random missingness at missing rate ``rate``; every sample keeps a modality.

    k = round(min(rate, 2/3) * 3n) modalities are removed in all: a samples lose two and b lose
    one (2a + b = k, a as close to :func:`two_missing_fraction` * n as the counts allow). Which
    samples is a uniform draw; which modality is cycled L, V, A from a random start over them, so
    each modality is removed (or kept, for the a samples) equally often, to within one.

    Args:
        n: number of samples.
        rate: target MR in [0, 1]; above 2/3 it is capped at 2/3 (all samples keep one modality).
        rng: the generator to draw from.

    Returns:
        ((n, 3) bool availability, achieved MR = k / (3n)); |achieved - min(rate, 2/3)| <= 1/(6n).

    Raises:
        ValueError: a rate outside [0, 1].

    Example:
        >>> available, achieved = random_available(10, 0.3, np.random.default_rng(0))
        >>> achieved, int(available.sum()), sorted(available.sum(axis=1).tolist())
        (0.3, 21, [1, 1, 1, 2, 2, 2, 3, 3, 3, 3])
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"random missing rate must be in [0, 1]; got {rate}")
    available = np.ones((n, len(MODALITIES)), dtype=bool)
    if n == 0:
        return available, 0.0
    removals = min(int(round(min(rate, MAX_RANDOM_RATE) * 3 * n)), 2 * n)
    # a + b <= n needs a >= k - n; b >= 0 needs a <= k // 2 (non-empty range since k <= 2n).
    lose_two = int(np.clip(round(two_missing_fraction(min(rate, MAX_RANDOM_RATE)) * n),
                           max(0, removals - n), removals // 2))
    lose_one = removals - 2 * lose_two
    order = rng.permutation(n)
    two_rows, one_rows = order[:lose_two], order[lose_two:lose_two + lose_one]
    kept = (np.arange(lose_two) + rng.integers(len(MODALITIES))) % len(MODALITIES)
    available[two_rows] = False
    available[two_rows, kept] = True
    removed = (np.arange(lose_one) + rng.integers(len(MODALITIES))) % len(MODALITIES)
    available[one_rows, removed] = False
    return available, float((~available).sum()) / (3 * n)


def frame_keep(lengths: dict[str, np.ndarray], seq_lens: dict[str, int], rate: float,
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-time-step drops at rate ``rate`` within each sample's valid length (TFR-Net / LNLN).

    A valid step t < length is kept when a uniform draw in [0, 1) exceeds ``rate``; padding is
    never "kept". Modalities are drawn in the order L, V, A.

    Args:
        lengths: modality letter -> (N,) valid lengths.
        seq_lens: modality letter -> padded length T_m.
        rate: drop probability in [0, 1].
        rng: the generator to draw from.

    Returns:
        Modality letter -> (N, T_m) bool, True = step kept.

    Example:
        >>> keep = frame_keep({m: np.array([2, 4]) for m in "LVA"}, {m: 4 for m in "LVA"}, 0.0,
        ...                   np.random.default_rng(0))
        >>> keep["V"].astype(int)
        array([[1, 1, 0, 0],
               [1, 1, 1, 1]])
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"frame drop rate must be in [0, 1]; got {rate}")
    keep = {}
    for modality in MODALITIES:
        length = np.asarray(lengths[modality], dtype=np.int64)
        steps = int(seq_lens[modality])
        if length.size and (length.min() < 0 or length.max() > steps):
            raise ValueError(f"frame_keep: lengths of {modality!r} must lie in [0, {steps}]; "
                             f"got min {length.min()}, max {length.max()}")
        valid = np.arange(steps)[None, :] < length[:, None]  # (N, T_m)
        keep[modality] = valid & (rng.random((len(length), steps)) > rate)
    return keep


def frame_drop_rate(keep: dict[str, np.ndarray], lengths: dict[str, np.ndarray]) -> float:
    """Achieved frame rate: dropped valid steps / valid steps, over all modalities."""
    valid = sum(int(np.asarray(lengths[m]).sum()) for m in MODALITIES)
    kept = sum(int(keep[m].sum()) for m in MODALITIES)
    return 0.0 if valid == 0 else 1.0 - kept / valid


def parse_rate(condition: str | float, protocol: str) -> tuple[float, str]:
    """(rate, canonical condition string) of a ``random`` / ``frame`` condition such as ``"0.3"``."""
    try:
        rate = float(condition)
    except (TypeError, ValueError):
        raise ValueError(f"protocol {protocol!r}: condition must be a rate such as '0.3'; got {condition!r}") from None
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"protocol {protocol!r}: rate must be in [0, 1]; got {condition!r}")
    return rate, (f"{rate:.1f}" if round(rate, 1) == rate else repr(rate))


def make_mask_set(dataset: str, split: str, ids, lengths: dict[str, np.ndarray] | None,
                  seq_lens: dict[str, int] | None, protocol: str, condition: str, seed: int, *,
                  incomplete_train: bool = False) -> MaskSet:
    """The masks of one key, drawn from a generator seeded by :func:`mask_seed`.

    Draws are made in sorted-id order, so the mask of a sample depends on the set of ids, not on
    the order they come in.

    Args:
        dataset, split: the key's dataset name and split.
        ids: (N,) unique sample ids.
        lengths: modality letter -> (N,) valid lengths, aligned with ``ids`` (``frame`` only).
        seq_lens: modality letter -> padded length T_m (``frame`` only).
        protocol: ``fixed``, ``random``, ``frame`` or ``imbalanced``.
        condition: a pattern id (``fixed``), a rate string (``random``/``frame``) or three
            per-modality rates (``imbalanced``, ``"L0.3-V0.5-A0.7"``).
        seed: the run's seed.
        incomplete_train: under ``fixed``, draw each sample's pattern uniformly from the 7
            patterns (training masks; ``condition`` is then a label such as ``"mixed"``). It
            changes nothing under ``random``/``frame``/``imbalanced``, where training uses the
            test's condition.

    Returns:
        The :class:`MaskSet`, rows in the order of ``ids``.

    Example:
        >>> ids = np.array(["b", "a", "c"])
        >>> mask = make_mask_set("mosi", "test", ids, None, None, "random", "0.3", 1111)
        >>> mask.achieved_rate, sorted(mask.available.sum(axis=1).tolist())
        (0.3333333333333333, [1, 2, 3])
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    ids = np.asarray(ids).astype(str)
    order = np.argsort(ids, kind="stable")  # row order[j] holds the j-th smallest id
    n, target, achieved, frames, achieved_rates = len(ids), None, None, None, None
    if protocol == "fixed":
        condition = str(condition)
        if incomplete_train:
            drawn = mixed_available(n, np.random.default_rng(mask_seed(dataset, split, protocol, condition, seed)))
            achieved = float((~drawn).mean()) if n else 0.0
        else:
            drawn = fixed_available(n, condition)
    elif protocol == "imbalanced":
        rates, condition = parse_imbalanced(condition)
        rng = np.random.default_rng(mask_seed(dataset, split, protocol, condition, seed))
        drawn, achieved_rates = imbalanced_available(n, rates, rng)
        target, achieved = float(np.mean(list(rates.values()))), float(np.mean(list(achieved_rates.values())))
    else:
        target, condition = parse_rate(condition, protocol)
        rng = np.random.default_rng(mask_seed(dataset, split, protocol, condition, seed))
        if protocol == "random":
            drawn, achieved = random_available(n, target, rng)
        else:
            if lengths is None or seq_lens is None:
                raise ValueError(f"make_mask_set({dataset}/{split}): the frame protocol needs lengths and seq_lens")
            sorted_lengths = {m: np.asarray(lengths[m])[order] for m in MODALITIES}
            kept = frame_keep(sorted_lengths, seq_lens, target, rng)
            achieved = frame_drop_rate(kept, sorted_lengths)
            frames = {m: np.empty_like(kept[m]) for m in MODALITIES}
            for m in MODALITIES:
                frames[m][order] = kept[m]
            drawn = np.ones((n, len(MODALITIES)), dtype=bool)
    available = np.empty_like(drawn)
    available[order] = drawn
    return MaskSet(dataset=dataset, split=split, protocol=protocol, condition=condition, seed=int(seed), ids=ids,
                   available=available, frames=frames, target_rate=target, achieved_rate=achieved,
                   achieved_rates=achieved_rates)
