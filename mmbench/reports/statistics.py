"""Statistics of leaderboard cells: intervals over seeds, paired tests, and which cells earn a mark.

A cell holds one value per seed (one run each). For the paper layouts (:mod:`mmbench.reports.layouts`):

- **95 % interval over seeds**: mean ± t(0.975, n-1) · s / sqrt(n) (``scipy.stats.t``; s with ddof 1).
- **Paired t-test over seeds**: the seeds two rows share, ``scipy.stats.ttest_rel``, two-sided.
- **Paired bootstrap over test samples**: each row's saved test predictions, averaged per sample over
  the seeds the two rows share; the same resampled sample indices for both rows (fixed RNG seed,
  :data:`N_RESAMPLES` resamples); the metric recomputed on every resample by the functions of
  :mod:`mmbench.metrics.functional`. Two-sided p = 2 · (1 + #{resamples where the order flips or
  ties}) / (1 + resamples), at most 1. A column that averages several conditions (the patterns
  layout's ``Avg``) averages each resample's metric over them, the indices shared.
- **Marks**: rows ranked by mean in the metric's direction. The best is marked when it differs from
  the second at level :data:`ALPHA`; the second when the best is marked and the second differs from
  the third. The bootstrap decides where both rows have predictions, else the seed t-test. A metric
  without a direction (a cost such as ``train_s``) is never marked.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
LEVEL = 0.95
N_RESAMPLES = 1000
#: The bootstrap's RNG seed: the same store gives the same p-values on every machine.
BOOTSTRAP_SEED = 1111
BOOTSTRAP = "paired bootstrap over test samples"
T_TEST = "paired t-test over seeds"


def t_interval(values, level: float = LEVEL) -> tuple[float, float] | None:
    """The ``level`` t-interval of the mean of ``values`` (NaNs ignored); None for fewer than 2 values.

    Example:
        >>> low, high = t_interval([1.0, 2.0, 3.0])
        >>> round(low, 3), round(high, 3)
        (-0.484, 4.484)
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return None
    mean, sem = float(values.mean()), float(stats.sem(values))
    if sem == 0.0:  # identical seeds: scipy rejects a zero scale
        return mean, mean
    low, high = stats.t.interval(level, df=len(values) - 1, loc=mean, scale=sem)
    return float(low), float(high)


def shared_seeds(a: Mapping[int, float], b: Mapping[int, float]) -> tuple[int, ...]:
    """The seeds both rows hold a (non-NaN) value for, sorted."""
    return tuple(sorted(s for s in set(a) & set(b) if not (np.isnan(a[s]) or np.isnan(b[s]))))


def paired_t_pvalue(a: Mapping[int, float], b: Mapping[int, float]) -> float | None:
    """Two-sided p of ``ttest_rel`` over the shared seeds; None with fewer than 2.

    The same difference on every seed gives 1.0 when it is 0 and 0.0 otherwise (t = 0/0 or x/0).

    Example:
        >>> round(paired_t_pvalue({1: 0.80, 2: 0.82, 3: 0.81}, {1: 0.70, 2: 0.71, 3: 0.72}), 4)
        0.0033
    """
    seeds = shared_seeds(a, b)
    if len(seeds) < 2:
        return None
    differences = np.array([a[s] - b[s] for s in seeds])
    if np.allclose(differences, differences[0], rtol=0.0, atol=1e-12):
        # the same difference on every seed: ttest_rel's t is x/0 (a rounding error away from it
        # when the values are floats), so answer its limit directly
        return 1.0 if abs(differences[0]) <= 1e-12 else 0.0
    return float(stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue)


def resample_indices(n_samples: int, n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """(n_resamples, n_samples) indices drawn with replacement; the same arguments give the same draws."""
    return np.random.default_rng(seed).integers(0, n_samples, size=(n_resamples, n_samples))


def metric_function(family: str, metric: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """``(preds, labels) -> value`` equal to ``regression_metrics(preds, labels, family)[metric]``, one metric only.

    The functions of :mod:`mmbench.metrics.functional` are the single source of truth; this only
    skips the others and applies the CH-SIMS clipping that :func:`regression_metrics` applies first.
    """
    import torch

    from mmbench.metrics.functional import METRIC_FUNCTIONS, check_family

    function = METRIC_FUNCTIONS[check_family(family)][metric]

    def value(preds: np.ndarray, labels: np.ndarray) -> float:
        preds, labels = torch.from_numpy(preds), torch.from_numpy(labels)
        if family == "sims":
            preds, labels = preds.clamp(-1.0, 1.0), labels.clamp(-1.0, 1.0)
        return float(function(preds, labels))

    return value


def bootstrap_draws(preds: np.ndarray, labels: np.ndarray, indices: np.ndarray,
                    value: Callable[[np.ndarray, np.ndarray], float]) -> np.ndarray:
    """The metric on every resample: ``value(preds[i], labels[i])`` for each row ``i`` of ``indices``."""
    return np.array([value(preds[rows], labels[rows]) for rows in indices])


def bootstrap_pvalue(best: np.ndarray, other: np.ndarray, higher_is_better: bool) -> float:
    """Two-sided p that two rows differ, from their metric on the same resamples.

    Example:
        >>> bootstrap_pvalue(np.array([0.8, 0.9, 0.85]), np.array([0.5, 0.6, 0.55]), True)
        0.5
        >>> bootstrap_pvalue(np.array([0.8, 0.9]), np.array([0.8, 0.9]), True)
        1.0
    """
    gain = (best - other) if higher_is_better else (other - best)
    flips = min(int((gain <= 0).sum()), int((gain >= 0).sum()))
    return min(1.0, 2.0 * (1 + flips) / (1 + len(gain)))


class Predictions:
    """Saved test predictions of a store's runs, read once per run."""

    def __init__(self, results_dir: Path | str):
        self.results_dir = Path(results_dir)
        self._runs: dict[str, pd.DataFrame | None] = {}

    def path(self, run_id: str, artifacts_dir: str | None = None) -> Path | None:
        """``predictions.csv.gz`` of a run: its artifacts folder, else ``<results>/runs/<run_id>``
        (a store moved or opened from another working directory)."""
        for folder in (Path(artifacts_dir) if artifacts_dir else None, self.results_dir / "runs" / run_id):
            if folder is not None and (folder / "predictions.csv.gz").is_file():
                return folder / "predictions.csv.gz"
        return None

    def of_run(self, run_id: str, artifacts_dir: str | None = None) -> pd.DataFrame | None:
        """The run's test rows (condition, id, label, pred), or None when it saved none."""
        if run_id not in self._runs:
            path = self.path(run_id, artifacts_dir)
            frame = pd.read_csv(path, dtype={"condition": str, "id": str}) if path else None
            self._runs[run_id] = None if frame is None else frame[frame["split"] == "test"]
        return self._runs[run_id]

    def averaged(self, runs: Mapping[int, tuple[str, str | None]], seeds: tuple[int, ...],
                 conditions: tuple[str, ...]) -> pd.DataFrame | None:
        """Per (condition, id): the label and the prediction averaged over ``seeds``.

        ``runs`` maps a seed to its (run_id, artifacts_dir). None when a seed's run saved no predictions
        of one of ``conditions``.
        """
        if not seeds:
            return None
        frames = []
        for seed in seeds:
            frame = self.of_run(*runs[seed])
            frame = None if frame is None else frame[frame["condition"].isin(conditions)]
            if frame is None or set(frame["condition"]) != set(conditions):
                return None
            frames.append(frame)
        joined = pd.concat(frames)
        return joined.groupby(["condition", "id"], as_index=False).agg(label=("label", "first"), pred=("pred", "mean"))


@dataclass
class Candidate:
    """One row of one column: its value per seed and, where saved, its averaged predictions."""

    label: str
    values: dict[int, float]
    #: seeds -> per (condition, id) label and averaged prediction, or None (no predictions saved).
    predictions: Callable[[tuple[int, ...]], pd.DataFrame | None] = lambda seeds: None

    @property
    def mean(self) -> float:
        return float(np.nanmean(list(self.values.values()))) if self.values else float("nan")


@dataclass
class Comparison:
    """A row against another on one column: both tests' p-values and the one that decides."""

    p_ttest: float | None = None
    p_bootstrap: float | None = None

    @property
    def test(self) -> str | None:
        return BOOTSTRAP if self.p_bootstrap is not None else T_TEST if self.p_ttest is not None else None

    @property
    def p_value(self) -> float | None:
        return self.p_bootstrap if self.p_bootstrap is not None else self.p_ttest


@dataclass
class Bootstrap:
    """Paired bootstraps of one metric family; each row's draws are computed once per seeds and samples."""

    family: str
    n_resamples: int = N_RESAMPLES
    seed: int = BOOTSTRAP_SEED
    _cache: dict = field(default_factory=dict)

    def compare(self, first: Candidate, second: Candidate, metric: str, higher_is_better: bool) -> Comparison:
        """``first`` against ``second`` on one column: seed t-test and, with predictions, the bootstrap."""
        comparison = Comparison(p_ttest=paired_t_pvalue(first.values, second.values))
        seeds = shared_seeds(first.values, second.values)
        frames = [first.predictions(seeds), second.predictions(seeds)] if seeds else [None]
        if any(frame is None for frame in frames):
            return comparison
        ids = _common_ids(frames)
        if ids:
            draws = [self._draws(candidate, frame, seeds, ids, metric)
                     for candidate, frame in zip((first, second), frames)]
            comparison.p_bootstrap = bootstrap_pvalue(draws[0], draws[1], higher_is_better)
        return comparison

    def _draws(self, candidate: Candidate, frame: pd.DataFrame, seeds, ids: tuple[str, ...],
               metric: str) -> np.ndarray:
        """The metric on every resample, averaged over the frame's conditions (same indices for each);
        each (row, condition) is drawn once, so an average column reuses its conditions' draws."""
        indices, value, per_condition = None, None, []
        for condition, rows in frame.groupby("condition"):
            key = (candidate.label, condition, metric, seeds, hash(ids))
            if key not in self._cache:
                if indices is None:
                    indices = resample_indices(len(ids), self.n_resamples, self.seed)
                    value = metric_function(self.family, metric)
                rows = rows.set_index("id").loc[list(ids)]
                self._cache[key] = bootstrap_draws(rows["pred"].to_numpy(np.float32),
                                                   rows["label"].to_numpy(np.float32), indices, value)
            per_condition.append(self._cache[key])
        return np.mean(per_condition, axis=0)


def _common_ids(frames: list[pd.DataFrame]) -> tuple[str, ...]:
    """Sample ids present under every condition of every frame, sorted (the bootstrap's population)."""
    common = None
    for frame in frames:
        conditions = frame["condition"].nunique()
        counts = frame.groupby("id")["condition"].nunique()
        ids = set(counts.index[counts == conditions])
        common = ids if common is None else common & ids
    return tuple(sorted(common or ()))


@dataclass
class ColumnMarks:
    """What one column of a table says: each row's mark and its p-value against the column's best."""

    marks: dict[str, str] = field(default_factory=dict)  # label -> "best" | "second"
    against_best: dict[str, Comparison] = field(default_factory=dict)
    tests: set[str] = field(default_factory=set)  # the tests that decided a mark


def mark_column(candidates: list[Candidate], metric: str, higher_is_better: bool | None, bootstrap: Bootstrap,
                alpha: float = ALPHA) -> ColumnMarks:
    """Compare every row with the column's best and mark best / second best where significant.

    Args:
        candidates: the column's rows (rows without any value are ignored).
        higher_is_better: the metric's direction; None (a cost metric) marks nothing.
        bootstrap: the table's :class:`Bootstrap` (caches draws across the columns of one table).
        alpha: the significance level.
    """
    result = ColumnMarks()
    ranked = [c for c in candidates if not np.isnan(c.mean)]
    if higher_is_better is None or len(ranked) < 2:
        return result
    ranked.sort(key=lambda c: -c.mean if higher_is_better else c.mean)
    best = ranked[0]
    for other in ranked[1:]:
        result.against_best[other.label] = bootstrap.compare(best, other, metric, higher_is_better)
    to_second = result.against_best[ranked[1].label]
    if to_second.p_value is None or to_second.p_value >= alpha:
        return result
    result.marks[best.label] = "best"
    result.tests.add(to_second.test)
    if len(ranked) > 2:
        to_third = bootstrap.compare(ranked[1], ranked[2], metric, higher_is_better)
        if to_third.p_value is not None and to_third.p_value < alpha:
            result.marks[ranked[1].label] = "second"
            result.tests.add(to_third.test)
    return result
