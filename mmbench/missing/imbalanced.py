"""The ``imbalanced`` protocol: each modality missing at its own rate (MissBench's setting).

A condition names three per-modality missing rates in L, V, A order, ``"L0.3-V0.5-A0.7"``, each on
the one-decimal grid 0.0 .. 0.7 of the ``random`` protocol. Like ``random``, masks are utterance
level: a sample keeps or loses a whole modality. The masks of N samples are drawn in three steps:

1. **Independent draws.** For each modality m, a uniform draw of exactly k_m = round(p_m N)
   samples loses m, independently of the other modalities (sampling without replacement: the
   exact-count form of an independent Bernoulli(p_m) per sample).
2. **Keep one.** A sample that would lose every modality keeps one, drawn with probability
   proportional to 1 - p_m (its target availability). Each modality then has fewer removals than
   k_m by the number of samples that kept it.
3. **Restore the counts.** Each removal step 2 undid is made on another sample, drawn uniformly
   among those that have m and would still keep a modality without it. When no such sample is
   left (only when the rates sum to nearly 2), one sample missing both other modalities hands one
   of them to a sample missing only m, and then loses m (column counts are unchanged by the hand-over).

Why 1 - p_m in step 2: after step 3 every modality's count is exact whatever step 2 keeps, so the
rule only decides whose draws step 3 moves. Proportional to 1 - p_m spreads the moved removals
over the modalities in proportion to the samples each is available in; keeping always the
least-missing modality would move them all onto that one. At L0.3-V0.5-A0.7 about 10% of samples
lose everything in step 1: the chosen rule moves in expectation 16% of L's removals, 7% of V's and
3% of A's, where the least-missing rule would move 35% of L's (see docs/protocols.md).

Tolerance: the achieved rate of every modality is k_m / N, so |achieved_m - p_m| <= 1/(2N). Only
when the rounded counts exceed 2N (rates summing to more than 2 - 1.5/N) is one removal given back,
by the modality rounded up the most, which is then within 1/N. Rates summing past 2
(``L0.7-V0.7-A0.7``) cannot be met while every sample keeps a modality and are refused.
"""
from __future__ import annotations

import re

import numpy as np

from mmbench.constants import IMBALANCED_RATE_GRID, MODALITIES

_CONDITION_FORMAT = re.compile(r"L([^-]+)-V([^-]+)-A([^-]+)")


def imbalanced_condition(rates) -> str:
    """The condition id of three per-modality rates in L, V, A order.

    Example:
        >>> imbalanced_condition((0.3, 0.5, 0.7))
        'L0.3-V0.5-A0.7'
    """
    return "-".join(f"{m}{float(r):.1f}" for m, r in zip(MODALITIES, rates))


def parse_imbalanced(condition: str) -> tuple[dict[str, float], str]:
    """(rates by modality, canonical id) of an ``imbalanced`` condition such as ``"L0.3-V0.5-A0.7"``.

    Raises:
        ValueError: one line naming the id, when it is malformed, a rate is off the grid
            0.0 .. 0.7 (one decimal), or the rates sum past 2.

    Example:
        >>> parse_imbalanced("L0.30-V0.5-A0.7")
        ({'L': 0.3, 'V': 0.5, 'A': 0.7}, 'L0.3-V0.5-A0.7')
    """
    grid = f"{IMBALANCED_RATE_GRID[0]}..{IMBALANCED_RATE_GRID[-1]}"
    match = _CONDITION_FORMAT.fullmatch(str(condition).strip())
    if match is None:
        raise ValueError(f"imbalanced condition {condition!r}: expected three rates in L, V, A order such as "
                         f"'L0.3-V0.5-A0.7'")
    tenths = []
    for modality, text in zip(MODALITIES, match.groups()):
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if f"{value:.1f}" not in IMBALANCED_RATE_GRID or abs(value - round(value, 1)) > 1e-9:
            raise ValueError(f"imbalanced condition {condition!r}: the rate of {modality} must be one of "
                             f"{grid} (one decimal); got {text!r}")
        tenths.append(round(value * 10))
    if sum(tenths) > 20:  # more than 2N removals: some sample would lose every modality
        raise ValueError(f"imbalanced condition {condition!r}: the rates sum to {sum(tenths) / 10:.1f} > 2, "
                         f"so not every sample could keep a modality")
    rates = {m: t / 10 for m, t in zip(MODALITIES, tenths)}
    return rates, imbalanced_condition(rates.values())


def missing_counts(n: int, rates: dict[str, float]) -> np.ndarray:
    """(3,) int: how many of ``n`` samples lose each modality (round(p_m n), at most 2n in all).

    Example:
        >>> missing_counts(2000, {"L": 0.3, "V": 0.5, "A": 0.7}).tolist()
        [600, 1000, 1400]
    """
    exact = np.array([rates[m] for m in MODALITIES]) * n
    counts = np.floor(exact + 0.5).astype(np.int64)  # half up, not to even: stable across rates
    while counts.sum() > 2 * n:  # rounding pushed past 2n: give back the largest rounding excess
        counts[np.argmax(counts - exact)] -= 1
    return counts


def keep_one_modality(missing: np.ndarray, rates: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """Give every sample that lost all three modalities one back, drawn with probability ∝ 1 - p_m.

    Args:
        missing: (N, 3) bool, True = modality removed; changed in place.
        rates: target rate of each modality.
        rng: the generator to draw from.

    Returns:
        (R,) int: the modality index each of the R all-missing samples kept, in row order.

    Example:
        >>> missing = np.array([[True, True, True], [True, False, True]])
        >>> kept = keep_one_modality(missing, {"L": 0.7, "V": 0.7, "A": 0.0}, np.random.default_rng(0))
        >>> missing.sum(axis=1).tolist(), kept.tolist()
        ([2, 2], [2])
    """
    rows = np.flatnonzero(missing.all(axis=1))
    availability = 1.0 - np.array([rates[m] for m in MODALITIES])
    kept = rng.choice(len(MODALITIES), size=len(rows), p=availability / availability.sum())
    missing[rows, kept] = False
    return kept


def restore_counts(missing: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> None:
    """Remove modality m from more samples until it is missing from exactly ``counts[m]`` (in place).

    A sample may lose m when it has m and another modality it keeps. When none may (every sample
    with m misses both others), a sample ``donor`` missing both others hands one of them to a
    sample ``taker`` missing only m, and then loses m. Such a taker exists whenever
    ``counts.sum() <= 2N``: some sample misses at most one modality, and it cannot have m.
    """
    for index in range(len(MODALITIES)):
        short = int(counts[index] - missing[:, index].sum())
        eligible = np.flatnonzero(~missing[:, index] & (missing.sum(axis=1) <= 1))
        chosen = rng.choice(eligible, size=min(short, len(eligible)), replace=False) if short > 0 else []
        missing[chosen, index] = True
        for _ in range(max(0, short - len(eligible))):
            donor = rng.choice(np.flatnonzero(~missing[:, index]))
            taker = rng.choice(np.flatnonzero(missing[:, index] & (missing.sum(axis=1) == 1)))
            handed = rng.choice(np.flatnonzero(missing[donor]))
            missing[donor, handed], missing[taker, handed] = False, True
            missing[donor, index] = True


def imbalanced_available(n: int, rates: dict[str, float], rng: np.random.Generator
                         ) -> tuple[np.ndarray, dict[str, float]]:
    """Per-modality missing rates ``rates``, every sample keeping at least one modality.

    Args:
        n: number of samples.
        rates: modality letter -> target missing rate p_m (rates summing to at most 2).
        rng: the generator to draw from.

    Returns:
        ((n, 3) bool availability, achieved rate of each modality = k_m / n).

    Example:
        >>> available, achieved = imbalanced_available(10, {"L": 0.3, "V": 0.5, "A": 0.7}, np.random.default_rng(0))
        >>> achieved, bool(available.any(axis=1).all())
        ({'L': 0.3, 'V': 0.5, 'A': 0.7}, True)
    """
    counts = missing_counts(n, rates)
    missing = np.zeros((n, len(MODALITIES)), dtype=bool)
    for index, count in enumerate(counts):  # 1. independent exact-size draws
        missing[rng.choice(n, size=int(count), replace=False), index] = True
    keep_one_modality(missing, rates, rng)  # 2. nobody loses everything
    restore_counts(missing, counts, rng)  # 3. the removals step 2 undid, made elsewhere
    achieved = {m: float(missing[:, i].mean()) if n else 0.0 for i, m in enumerate(MODALITIES)}
    return ~missing, achieved
