"""Sentiment metrics as pure functions ``(preds, labels) -> Tensor``: the single source of truth.

Every number in a table, and the validation MAE that selects every checkpoint
(:func:`mean_condition_mae`), comes from one function here; ``modular.py`` only accumulates and calls
them. The caller names the metric family (``mosi``, ``mosei``, ``sims``); nothing here looks up a
dataset. The definitions follow MMSA's ``src/MMSA/utils/metricsTop.py`` (thuiar/MMSA), regression mode:

- MOSI / MOSEI (labels in [-3, 3]): Has0 splits at 0 with 0 counted as non-negative
  (``label >= 0``); Non0 drops the samples whose label is exactly 0 and compares ``label > 0`` with
  ``pred > 0``. ACC7 / ACC5 clip both sides to [-3, 3] / [-2, 2] and round half to even
  (``np.round``). MAE and Corr use the unclipped predictions.
- CH-SIMS (labels in [-1, 1]): predictions and labels are clipped to [-1, 1] first (for MAE and
  Corr too, as MMSA does), and the classes are the right-closed intervals of MMSA's edges
  ``[-1.01, ..., 1.01]``: ACC2 = {[-1, 0], (0, 1]}, ACC3 = {[-1, -0.1], (-0.1, 0.1], (0.1, 1]},
  ACC5 = {[-1, -0.7], (-0.7, -0.1], (-0.1, 0.1], (0.1, 0.7], (0.7, 1]}.

Class assignments are made in float32 (what MMSA receives from its models), so a label stored as
float32 ``0.1`` lies in (-0.1, 0.1] as intended; MAE and Corr are computed in float64.
F1 is the weighted F1 of sklearn's ``f1_score(y_true, y_pred, average="weighted")``: per-class F1
weighted by the class's support among the *labels* (MMSA issue #17 fixed that argument order).
See docs/metrics.md for the table of definitions.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torchmetrics.functional import mean_absolute_error, pearson_corrcoef
from torchmetrics.functional.classification import multiclass_f1_score

from mmbench.constants import MODALITIES

_MOSI_KEYS = ("acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc7", "acc5", "mae", "corr")
#: Keys regression_metrics returns, per metric family (a dataset's family: ``mmbench.data.registry.metric_family``).
METRIC_KEYS: dict[str, tuple[str, ...]] = {
    "mosi": _MOSI_KEYS,
    "mosei": _MOSI_KEYS,
    "sims": ("acc2", "acc3", "acc5", "f1", "mae", "corr"),
}
METRIC_FAMILIES: tuple[str, ...] = tuple(METRIC_KEYS)
#: Direction of every stored key; reports read it to mark the best cell.
HIGHER_IS_BETTER: dict[str, bool] = {
    **{key: key != "mae" for family in METRIC_KEYS.values() for key in family},
    **{f"rec_mse_{m}{suffix}": False for m in MODALITIES for suffix in ("", "_zero", "_mean")},
    **{f"rec_cos_{m}{suffix}": True for m in MODALITIES for suffix in ("", "_mean")},
}

#: Inner class edges of CH-SIMS (MMSA's ms_2 / ms_3 / ms_5 without the outer -1.01, 1.01).
SIMS_EDGES: dict[int, tuple[float, ...]] = {2: (0.0,), 3: (-0.1, 0.1), 5: (-0.7, -0.1, 0.1, 0.7)}


def _as_float32(preds: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    return torch.as_tensor(preds).reshape(-1).float(), torch.as_tensor(labels).reshape(-1).float()


def _accuracy(pred_class: Tensor, true_class: Tensor) -> Tensor:
    if true_class.numel() == 0:
        return torch.tensor(math.nan)
    return (pred_class == true_class).double().mean()


def _weighted_f1(pred_class: Tensor, true_class: Tensor, num_classes: int = 2) -> Tensor:
    """sklearn's ``f1_score(true, pred, average="weighted")``: weights are the labels' supports."""
    if true_class.numel() == 0:
        return torch.tensor(math.nan)
    return multiclass_f1_score(pred_class.long(), true_class.long(), num_classes=num_classes,
                               average="weighted", zero_division=0)


def _non_zero(preds: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Non0 classes: samples with label exactly 0 dropped; positive = ``> 0`` on both sides."""
    preds, labels = _as_float32(preds, labels)
    keep = labels != 0
    return preds[keep] > 0, labels[keep] > 0


def _has_zero(preds: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Has0 classes: all samples; non-negative (``>= 0``) vs negative on both sides."""
    preds, labels = _as_float32(preds, labels)
    return preds >= 0, labels >= 0


def acc2_has0(preds: Tensor, labels: Tensor) -> Tensor:
    """Binary accuracy over all samples, negative (< 0) vs non-negative (>= 0).

    Example:
        >>> float(acc2_has0(torch.tensor([0.5, -1.0, 0.0]), torch.tensor([0.0, -2.0, -0.1])))
        0.6666666666666666
    """
    return _accuracy(*_has_zero(preds, labels))


def f1_has0(preds: Tensor, labels: Tensor) -> Tensor:
    """Weighted F1 of the Has0 classes (negative vs non-negative, all samples).

    Example:
        >>> round(float(f1_has0(torch.tensor([1.0, 1.0, -1.0, -1.0]), torch.tensor([1.0, -1.0, -1.0, -1.0]))), 4)
        0.7667
    """
    return _weighted_f1(*_has_zero(preds, labels))


def acc2_non0(preds: Tensor, labels: Tensor) -> Tensor:
    """Binary accuracy, positive vs negative, on the samples whose label is not 0 (NaN if none).

    A prediction of exactly 0 counts as negative (MMSA: ``test_preds[non_zeros] > 0``).

    Example:
        >>> float(acc2_non0(torch.tensor([0.5, -1.0, 0.0]), torch.tensor([0.0, -2.0, 0.3])))
        0.5
    """
    return _accuracy(*_non_zero(preds, labels))


def f1_non0(preds: Tensor, labels: Tensor) -> Tensor:
    """Weighted F1, positive vs negative, on the samples whose label is not 0 (NaN if none).

    Example:
        >>> float(f1_non0(torch.tensor([2.0, -1.0, 0.5]), torch.tensor([1.0, -1.0, 0.0])))
        1.0
    """
    return _weighted_f1(*_non_zero(preds, labels))


def _rounded_accuracy(preds: Tensor, labels: Tensor, bound: float) -> Tensor:
    preds, labels = _as_float32(preds, labels)
    # torch.round rounds half to even, like MMSA's np.round: 2.5 -> 2, -0.5 -> -0 == 0.
    return _accuracy(torch.round(preds.clamp(-bound, bound)), torch.round(labels.clamp(-bound, bound)))


def acc7(preds: Tensor, labels: Tensor) -> Tensor:
    """7-class accuracy: both sides clipped to [-3, 3] and rounded half to even.

    Example:
        >>> float(acc7(torch.tensor([2.5, 3.7, -0.4]), torch.tensor([2.0, 3.0, 0.6])))
        0.6666666666666666
    """
    return _rounded_accuracy(preds, labels, 3.0)


def acc5(preds: Tensor, labels: Tensor) -> Tensor:
    """5-class accuracy: both sides clipped to [-2, 2] and rounded half to even.

    Example:
        >>> float(acc5(torch.tensor([2.6, -3.0, 0.4]), torch.tensor([3.0, -2.2, 1.0])))
        0.6666666666666666
    """
    return _rounded_accuracy(preds, labels, 2.0)


def mae(preds: Tensor, labels: Tensor) -> Tensor:
    """Mean absolute error, in float64, on the values as given (no clipping).

    Example:
        >>> float(mae(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 3.0])))
        1.5
    """
    preds, labels = torch.as_tensor(preds).reshape(-1), torch.as_tensor(labels).reshape(-1)
    return mean_absolute_error(preds.double(), labels.double())


def corr(preds: Tensor, labels: Tensor) -> Tensor:
    """Pearson correlation in float64; 0.0 when either side is constant.

    A constant prediction (e.g. the ``mean`` baseline) has no variance, so Pearson's r is 0/0. We
    report 0.0, "no linear association", so the floor every table shows stays a number and seeds
    can be averaged; a NaN would silently drop out of means. Float64 also keeps torchmetrics'
    near-zero-variance guard (relative variance < sqrt(eps)) from turning a real but peaked
    prediction vector into NaN, which happens in float32 for MOSEI-sized test sets.

    Example:
        >>> float(corr(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 7.0])))  # doctest: +ELLIPSIS
        0.9933...
        >>> float(corr(torch.tensor([0.5, 0.5, 0.5]), torch.tensor([2.0, 4.0, 7.0])))
        0.0
    """
    preds = torch.as_tensor(preds).reshape(-1).double()
    labels = torch.as_tensor(labels).reshape(-1).double()
    if preds.numel() < 2 or bool((preds == preds[0]).all()) or bool((labels == labels[0]).all()):
        return torch.tensor(0.0, dtype=torch.float64)
    return pearson_corrcoef(preds, labels)


def _sims_classes(values: Tensor, num_classes: int) -> Tensor:
    """Class index of each value in MMSA's right-closed CH-SIMS bins, after clipping to [-1, 1]."""
    edges = torch.tensor(SIMS_EDGES[num_classes], dtype=torch.float32)
    # bucketize(right=False) returns i with edges[i-1] < x <= edges[i]: MMSA's (low, high] bins.
    return torch.bucketize(values.clamp(-1.0, 1.0), edges, right=False)


def _sims_accuracy(preds: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    preds, labels = _as_float32(preds, labels)
    return _accuracy(_sims_classes(preds, num_classes), _sims_classes(labels, num_classes))


def sims_acc2(preds: Tensor, labels: Tensor) -> Tensor:
    """CH-SIMS 2-class accuracy: [-1, 0] vs (0, 1] (class = value > 0).

    Example:
        >>> float(sims_acc2(torch.tensor([0.0, 0.2, -0.3]), torch.tensor([-0.2, 0.0, -1.0])))
        0.6666666666666666
    """
    return _sims_accuracy(preds, labels, 2)


def sims_acc3(preds: Tensor, labels: Tensor) -> Tensor:
    """CH-SIMS 3-class accuracy: [-1, -0.1], (-0.1, 0.1], (0.1, 1].

    Example:
        >>> float(sims_acc3(torch.tensor([0.1, -0.1, 0.5]), torch.tensor([0.0, -0.5, 0.11])))
        1.0
    """
    return _sims_accuracy(preds, labels, 3)


def sims_acc5(preds: Tensor, labels: Tensor) -> Tensor:
    """CH-SIMS 5-class accuracy: [-1, -0.7], (-0.7, -0.1], (-0.1, 0.1], (0.1, 0.7], (0.7, 1].

    Example:
        >>> float(sims_acc5(torch.tensor([-0.7, 0.7, 1.5]), torch.tensor([-1.0, 0.8, 0.9])))
        0.6666666666666666
    """
    return _sims_accuracy(preds, labels, 5)


def sims_f1(preds: Tensor, labels: Tensor) -> Tensor:
    """CH-SIMS weighted F1 of the 2 classes of :func:`sims_acc2`.

    Example:
        >>> round(float(sims_f1(torch.tensor([0.5, 0.5, -0.5, -0.5]), torch.tensor([0.4, -0.4, -0.4, -0.4]))), 4)
        0.7667
    """
    preds, labels = _as_float32(preds, labels)
    return _weighted_f1(_sims_classes(preds, 2), _sims_classes(labels, 2))


_MOSI_FUNCTIONS = {"acc2_has0": acc2_has0, "f1_has0": f1_has0, "acc2_non0": acc2_non0, "f1_non0": f1_non0,
                   "acc7": acc7, "acc5": acc5, "mae": mae, "corr": corr}
#: The function behind each key, per family (the CH-SIMS functions carry a ``sims_`` prefix).
METRIC_FUNCTIONS = {
    "mosi": _MOSI_FUNCTIONS,
    "mosei": _MOSI_FUNCTIONS,
    "sims": {"acc2": sims_acc2, "acc3": sims_acc3, "acc5": sims_acc5, "f1": sims_f1, "mae": mae, "corr": corr},
}


def check_family(family: str) -> str:
    """``family`` if it is a metric family; a dataset name is refused, so metrics never look one up.

    Example:
        >>> check_family("mosei")
        'mosei'
    """
    if family not in METRIC_FAMILIES:
        raise ValueError(f"{family!r} is not a metric family ({', '.join(METRIC_FAMILIES)}); pass the dataset's "
                         f"family, mmbench.data.registry.metric_family({family!r})")
    return family


def mean_condition_mae(per_condition) -> Tensor:
    """The validation monitor: each condition's :func:`mae`, averaged over conditions (each weighs the same).

    Args:
        per_condition: an iterable of ``(preds, labels)``, one pair per condition (e.g. the 7 patterns
            of ``fixed``); no finiteness check, so a diverged model yields NaN for early stopping to see.

    Returns:
        A float64 scalar on the inputs' device.

    Example:
        >>> float(mean_condition_mae([(torch.tensor([0.0, 0.0, 0.0]), torch.tensor([1.0, 1.0, 1.0])),
        ...                           (torch.tensor([0.0]), torch.tensor([3.0]))]))
        2.0
    """
    values = [mae(preds, labels) for preds, labels in per_condition]
    if not values:
        raise ValueError("mean_condition_mae: no condition given")
    return torch.stack(values).mean()


def regression_metrics(preds, labels, family: str) -> dict[str, float]:
    """Every sentiment metric of a metric family, as plain floats (accuracies as fractions).

    Args:
        preds: (N,) or (N, 1) continuous predictions (Tensor, array or list).
        labels: (N,) continuous labels, same N.
        family: ``"mosi"``, ``"mosei"`` or ``"sims"`` (:data:`METRIC_FAMILIES`); decides the keys (see
            :data:`METRIC_KEYS`). A dataset's family is ``mmbench.data.registry.metric_family(name)``.

    Returns:
        Key -> value. For CH-SIMS, predictions are clipped to [-1, 1] before every metric, MAE and
        Corr included, as MMSA does; for MOSI/MOSEI, MAE and Corr use the raw predictions.

    Raises:
        ValueError: an unknown family (e.g. a dataset name), empty input, different lengths, or
            non-finite predictions or labels.

    Example:
        >>> out = regression_metrics([-0.4, -1.2, 2.6, 0.0], [0.0, -1.0, 3.0, 0.6], "mosi")
        >>> out["acc2_has0"], out["acc2_non0"], out["acc7"]
        (0.75, 0.6666666666666666, 0.75)
    """
    check_family(family)
    preds = torch.as_tensor(preds).detach().cpu().reshape(-1)
    labels = torch.as_tensor(labels).detach().cpu().reshape(-1)
    if preds.numel() == 0 or preds.numel() != labels.numel():
        raise ValueError(f"regression_metrics({family!r}): need as many predictions as labels, and at least one; "
                         f"got {preds.numel()} predictions and {labels.numel()} labels")
    for name, values in (("predictions", preds), ("labels", labels)):
        if not bool(torch.isfinite(values.double()).all()):
            bad = int((~torch.isfinite(values.double())).sum())
            raise ValueError(f"regression_metrics({family!r}): {bad} of {values.numel()} {name} are NaN or "
                             f"infinite (a diverged model?)")
    if family == "sims":
        preds, labels = preds.clamp(-1.0, 1.0), labels.clamp(-1.0, 1.0)
    return {key: float(fn(preds, labels)) for key, fn in METRIC_FUNCTIONS[family].items()}
