"""How evenly the modalities count: the modality equity index (MEI) and the modality learning index (MLI).

MissBench (arXiv 2603.09874) names both diagnostics but its formulas were not in what we could read;
these are ours, defined once here and in docs/metrics.md.

- :func:`balance_score`: one normalised spread for k non-negative amounts (contributions, gradient
  norms): with shares ``s_m = v_m / sum(v)``, ``1 - TV(s, uniform) / TV_max`` where ``TV`` is the
  total-variation distance ``0.5 * sum |s_m - 1/k|`` and ``TV_max = 1 - 1/k`` (all on one modality).
  1 = every modality the same amount, 0 = one modality carries everything.
- :func:`modality_contributions`: what each modality adds, from the fixed-pattern results: the mean,
  over the patterns S without m whose union with m is also a pattern, of ``metric(S + m) - metric(S)``
  (sign flipped for a lower-is-better metric such as MAE). S is never empty: there is no pattern with
  nothing available, so each modality has three comparisons (e.g. L: V→LV, A→LA, VA→LVA).
- MEI = ``balance_score`` of the contributions, negative ones counted as 0 (a modality that hurts
  contributes nothing). MLI = the mean over training epochs of ``balance_score`` of the modalities'
  mean gradient norms (see :mod:`mmbench.metrics.learning`).
"""
from __future__ import annotations

import math
from typing import Mapping

from mmbench.constants import MODALITIES


def balance_score(values: Mapping[str, float]) -> float:
    """1 when the (non-negative) amounts are equal, 0 when one holds everything; NaN when all are 0."""
    amounts = [max(0.0, float(v)) for v in values.values()]
    total, k = sum(amounts), len(amounts)
    if k < 2 or total <= 0 or not math.isfinite(total):
        return math.nan
    distance = 0.5 * sum(abs(a / total - 1 / k) for a in amounts)
    return 1.0 - distance / (1.0 - 1.0 / k)


def modality_contributions(pattern_values: Mapping[str, float], higher_is_better: bool = True) -> dict[str, float]:
    """Per modality, the mean gain of adding it to each pattern that lacks it (patterns named like ``LV``)."""
    sign = 1.0 if higher_is_better else -1.0
    contributions = {}
    for modality in MODALITIES:
        gains = []
        for pattern, value in pattern_values.items():
            if modality in pattern:
                continue
            with_it = "".join(m for m in MODALITIES if m in pattern or m == modality)
            if with_it in pattern_values:
                gains.append(sign * (pattern_values[with_it] - value))
        contributions[modality] = sum(gains) / len(gains) if gains else math.nan
    return contributions


def equity_index(pattern_values: Mapping[str, float], higher_is_better: bool = True) -> float:
    """MEI of one model: the balance of its modalities' contributions (NaN where one cannot be measured)."""
    contributions = modality_contributions(pattern_values, higher_is_better)
    if any(math.isnan(c) for c in contributions.values()):
        return math.nan
    return balance_score(contributions)
