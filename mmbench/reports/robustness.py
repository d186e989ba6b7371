"""Robustness summaries of a metric-vs-missing-rate curve (the ``rates`` layout), defined in docs/metrics.md.

Per (dataset, method configuration, metric), over the evaluated rates r_0 < ... < r_k:

- ``auc``: the area under the curve by the trapezoid rule, divided by the rate span r_k - r_0, i.e.
  the curve's mean level, in the metric's unit. Per seed, then mean ± std over seeds.
- ``drop``: what the metric loses from the lowest to the highest rate, m(r_0) - m(r_k) (the reverse
  for a lower-is-better metric such as MAE), so positive is worse. Per seed.
- ``relative_robustness`` (MultiBench, Liang et al. 2021, ``eval_scripts/robustness.py``): the
  trapezoid area of the mean curve (MultiBench's step 0.1 generalised to the rates evaluated),
  min-max normalised over the rows of the table: 1 = the most robust row, 0 = the least.
- ``effective_robustness`` (MultiBench): sum over the rates of m(r) - (F(r) + m(r_0) - F(r_0)), with F
  the ``fusion`` reference's mean curve: how much better the row holds up than late fusion once the
  difference at r_0 is removed (positive = more robust; sign flipped for lower-is-better metrics).
  Per seed; not min-max normalised, so it stays in the metric's unit and does not move when a row
  is added to the table.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

SUMMARIES: tuple[str, ...] = ("auc", "drop", "relative_robustness", "effective_robustness")
HEADERS: dict[str, str] = {"auc": "AUC", "drop": "Drop", "relative_robustness": "RelRob",
                           "effective_robustness": "EffRob"}


def _curve(curve: Mapping[float, float]) -> tuple[np.ndarray, np.ndarray]:
    rates = np.array(sorted(curve), dtype=float)
    return rates, np.array([curve[r] for r in rates], dtype=float)


def area(curve: Mapping[float, float]) -> float:
    """Trapezoid area under ``{rate: value}`` (NaN with fewer than two rates).

    Example:
        >>> area({0.0: 0.8, 0.5: 0.6})
        0.35
    """
    rates, values = _curve(curve)
    return float(np.trapezoid(values, rates)) if len(rates) > 1 else float("nan")


def normalised_area(curve: Mapping[float, float]) -> float:
    """:func:`area` divided by the rate span: the curve's mean level.

    Example:
        >>> round(normalised_area({0.0: 0.8, 0.3: 0.7, 0.7: 0.5}), 4)
        0.6643
    """
    rates, _ = _curve(curve)
    return float(area(curve) / (rates[-1] - rates[0])) if len(rates) > 1 else float("nan")


def drop(curve: Mapping[float, float], higher_is_better: bool = True) -> float:
    """The loss from the lowest to the highest rate; positive = worse at the highest rate.

    Example:
        >>> round(drop({0.0: 0.8, 0.7: 0.5}), 3), round(drop({0.0: 1.0, 0.7: 1.4}, higher_is_better=False), 3)
        (0.3, 0.4)
    """
    rates, values = _curve(curve)
    if len(rates) < 2:
        return float("nan")
    return float(values[0] - values[-1]) if higher_is_better else float(values[-1] - values[0])


def effective_robustness(curve: Mapping[float, float], reference: Mapping[float, float],
                         higher_is_better: bool = True) -> float:
    """MultiBench's effective robustness against ``reference`` over the rates both curves hold.

    Example:
        >>> round(effective_robustness({0.0: 0.9, 0.5: 0.8}, {0.0: 0.8, 0.5: 0.6}), 3)
        0.1
    """
    rates = sorted(set(curve) & set(reference))
    if len(rates) < 2:
        return float("nan")
    values = np.array([curve[r] for r in rates])
    baseline = np.array([reference[r] for r in rates])
    gain = values - (baseline + values[0] - baseline[0])
    return float(gain.sum() if higher_is_better else -gain.sum())


def relative_robustness(areas: Mapping[str, float], higher_is_better: bool = True) -> dict[str, float]:
    """MultiBench's relative robustness: each row's area min-max normalised over the rows (NaN if all equal).

    Example:
        >>> relative_robustness({"a": 0.25, "b": 0.75, "c": 0.5})
        {'a': 0.0, 'b': 1.0, 'c': 0.5}
    """
    finite = {k: (v if higher_is_better else -v) for k, v in areas.items() if not np.isnan(v)}
    if len(finite) < 2 or max(finite.values()) == min(finite.values()):
        return {k: float("nan") for k in areas}
    low, high = min(finite.values()), max(finite.values())
    return {k: (finite[k] - low) / (high - low) if k in finite else float("nan") for k in areas}


def summarise(seed_curves: pd.DataFrame, higher_is_better: bool, reference: str | None) -> pd.DataFrame:
    """Every summary of one metric for every row of one table.

    Args:
        seed_curves: one row per (label, seed, rate) with ``value`` (rate a float).
        higher_is_better: the metric's direction.
        reference: the label of the ``fusion`` row whose mean curve effective robustness compares
            with, or None when the table has none (effective robustness is then NaN).

    Returns:
        One row per (label, summary) with ``mean``, ``std`` (ddof 1, None for one seed) and ``n_seeds``.
    """
    mean_curves = {label: rows.groupby("rate")["value"].mean().to_dict()
                   for label, rows in seed_curves.groupby("label", sort=False)}
    reference_curve = mean_curves.get(reference) if reference else None
    per_seed = []
    for (label, _), rows in seed_curves.groupby(["label", "seed"], sort=False):
        curve = dict(zip(rows["rate"], rows["value"]))
        per_seed += [(label, "auc", normalised_area(curve)), (label, "drop", drop(curve, higher_is_better)),
                     (label, "effective_robustness", effective_robustness(curve, reference_curve, higher_is_better)
                      if reference_curve else float("nan"))]
    frame = pd.DataFrame(per_seed, columns=["label", "summary", "value"]).dropna(subset=["value"])
    rows = frame.groupby(["label", "summary"], sort=False)["value"].agg(["mean", "count", "std"]).reset_index()
    rows = rows.rename(columns={"count": "n_seeds"})
    rows["std"] = rows["std"].astype(object).where(rows["n_seeds"] > 1, None)
    relative = relative_robustness({label: area(curve) for label, curve in mean_curves.items()}, higher_is_better)
    relative_rows = pd.DataFrame([{"label": label, "summary": "relative_robustness", "mean": value, "std": None,
                                   "n_seeds": int(seed_curves.loc[seed_curves["label"] == label, "seed"].nunique())}
                                  for label, value in relative.items() if not np.isnan(value)])
    return pd.concat([rows, relative_rows], ignore_index=True)
