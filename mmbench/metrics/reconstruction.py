"""Reconstruction fidelity of recovered modalities, in each modality's input feature space.

For a modality m, only the samples where m is missing count (a present modality needs no
reconstruction). Each sample's features, (D,) or (T, D), are flattened to one vector; the MSE and
the cosine similarity are computed per sample and then averaged over samples. Two references put
the numbers in context: zero imputation (``rec_mse_<m>_zero``; its cosine is undefined, so there is
no ``rec_cos_<m>_zero``) and training-mean imputation (``rec_mse_<m>_mean``, ``rec_cos_<m>_mean``).
Keys are those of docs/metrics.md; all MSE keys are lower-is-better, all cosine keys higher.

:func:`recovery_fidelity` scores what a method returns from its predict step (sequence-level or
utterance-level recoveries) against the true features, which only the runner holds.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mmbench.constants import MODALITIES
from mmbench.layers import masked_mean

#: torch's cosine_similarity clamps each norm at eps, so a zero vector scores 0, not NaN.
_COS_EPS = 1e-8


def _flat(values: Tensor, rows: Tensor) -> Tensor:
    values = torch.as_tensor(values).detach().cpu()
    return values[rows].reshape(int(rows.sum()), -1).double()  # (k, T*D) or (k, D)


def _valid(truth: Tensor, rows: Tensor, lengths: Tensor | None) -> Tensor:
    """(k, T*D) float weights: 1 on the valid time steps of each sample, 0 on padding."""
    truth = torch.as_tensor(truth)
    k = int(rows.sum())
    if lengths is None or truth.dim() != 3:
        return torch.ones(k, truth[0].numel(), dtype=torch.float64)
    steps, dim = truth.shape[1], truth.shape[2]
    valid = torch.arange(steps)[None, :] < torch.as_tensor(lengths).cpu()[rows][:, None]  # (k, T)
    return valid[:, :, None].expand(k, steps, dim).reshape(k, -1).double()


def _mse(estimate: Tensor, truth: Tensor, weight: Tensor) -> Tensor:
    return ((estimate - truth) ** 2 * weight).sum(1) / weight.sum(1).clamp_min(1.0)  # (k,)


def _cos(estimate: Tensor, truth: Tensor, weight: Tensor) -> Tensor:
    return F.cosine_similarity(estimate * weight, truth * weight, dim=1, eps=_COS_EPS)  # (k,)


def reconstruction_metrics(recovered: dict[str, Tensor], truth: dict[str, Tensor], missing: Tensor,
                           train_mean: dict[str, Tensor], *,
                           lengths: dict[str, Tensor] | None = None) -> dict[str, float]:
    """MSE and cosine of recovered features against the true ones, with zero/mean references.

    Args:
        recovered: modality letter -> (N, D) or (N, T, D) features a method recovered; only the
            letters present are scored.
        truth: modality letter -> the true features, same shapes.
        missing: (N, 3) bool, True where the modality (order L, V, A) was removed.
        train_mean: modality letter -> the training-set mean feature, (D,) or (T, D), broadcast
            to each sample (the mean-imputation reference).
        lengths: optional modality letter -> (N,) valid lengths; padded steps are then left out
            of every number. Without it the whole padded array counts.

    Returns:
        ``rec_mse_<m>``, ``rec_cos_<m>``, ``rec_mse_<m>_zero``, ``rec_mse_<m>_mean`` and
        ``rec_cos_<m>_mean`` for every scored modality m that is missing in at least one sample.

    Raises:
        ValueError: shapes that do not match, or a scored modality without truth or mean.

    Example:
        >>> truth = {"V": torch.tensor([[1.0, 0.0], [0.0, 2.0], [5.0, 5.0]])}
        >>> recovered = {"V": torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])}
        >>> missing = torch.tensor([[False, True, False], [False, True, False], [False, False, False]])
        >>> out = reconstruction_metrics(recovered, truth, missing, {"V": torch.tensor([0.5, 0.5])})
        >>> out["rec_mse_V"], out["rec_cos_V"], out["rec_mse_V_zero"], out["rec_mse_V_mean"]
        (0.25, 1.0, 1.25, 0.75)
    """
    return {key: float(values.mean()) for key, values in
            reconstruction_per_sample(recovered, truth, missing, train_mean, lengths=lengths).items()}


def reconstruction_per_sample(recovered: dict[str, Tensor], truth: dict[str, Tensor], missing: Tensor,
                              train_mean: dict[str, Tensor], *,
                              lengths: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
    """The per-sample values behind :func:`reconstruction_metrics` (same arguments).

    Returns:
        Key -> (k_m,) float64, one value per sample where m is missing; their means are the
        metrics, their sums are what :class:`mmbench.metrics.modular.ReconstructionMetrics` adds up.
    """
    missing = torch.as_tensor(missing).detach().cpu().bool()
    if missing.dim() != 2 or missing.shape[1] != len(MODALITIES):
        raise ValueError(f"missing: expected (N, {len(MODALITIES)}) bool in order {MODALITIES}, "
                         f"got shape {tuple(missing.shape)}")
    out: dict[str, Tensor] = {}
    for position, modality in enumerate(MODALITIES):
        rows = missing[:, position]
        if modality not in recovered or not bool(rows.any()):
            continue
        if modality not in truth or modality not in train_mean:
            raise ValueError(f"reconstruction_metrics: modality {modality!r} is scored but has no "
                             f"{'truth' if modality not in truth else 'train_mean'} entry")
        if tuple(recovered[modality].shape) != tuple(truth[modality].shape) or len(truth[modality]) != len(rows):
            raise ValueError(f"reconstruction_metrics: modality {modality!r}: recovered "
                             f"{tuple(recovered[modality].shape)}, truth {tuple(truth[modality].shape)}, "
                             f"missing has N = {len(rows)}")
        estimate, target = _flat(recovered[modality], rows), _flat(truth[modality], rows)
        weight = _valid(truth[modality], rows, None if lengths is None else lengths.get(modality))
        mean = torch.as_tensor(train_mean[modality]).detach().cpu().double()
        mean = mean.expand(truth[modality].shape[1:]).reshape(1, -1).expand_as(target)
        out[f"rec_mse_{modality}"] = _mse(estimate, target, weight)
        out[f"rec_cos_{modality}"] = _cos(estimate, target, weight)
        out[f"rec_mse_{modality}_zero"] = _mse(torch.zeros_like(target), target, weight)
        out[f"rec_mse_{modality}_mean"] = _mse(mean, target, weight)
        out[f"rec_cos_{modality}_mean"] = _cos(mean, target, weight)
    return out


def time_average(features: Tensor, lengths) -> Tensor:
    """(N, T, D) -> (N, D): the mean over each sample's valid steps (``lengths``, (N,))."""
    steps = torch.arange(features.shape[1]).unsqueeze(0) < torch.as_tensor(np.asarray(lengths)).unsqueeze(1)
    return masked_mean(features, steps)


def _float_tensor(values) -> Tensor:
    return torch.from_numpy(np.asarray(values, dtype=np.float32))


class TrainingMeans:
    """The training split's mean features (the mean-imputation reference), computed once per level.

    Args:
        features: modality letter -> (N, T, D) training features (arrays or memory maps).
        lengths: modality letter -> (N,) valid lengths.
    """

    def __init__(self, features: Mapping, lengths: Mapping):
        self.features, self.lengths = features, lengths
        self._means: dict[tuple[str, bool], Tensor] = {}

    def get(self, modality: str, utterance_level: bool) -> Tensor:
        """(D,) mean of per-sample time averages, or (T, D) per-step mean."""
        key = (modality, utterance_level)
        if key not in self._means:
            features = _float_tensor(self.features[modality])
            self._means[key] = (time_average(features, self.lengths[modality]).mean(0) if utterance_level
                                else features.mean(0))
        return self._means[key]


def recovery_fidelity(recovered: dict[str, Tensor], features: Mapping, lengths: Mapping, missing: Tensor,
                      train_means: TrainingMeans) -> dict[str, float]:
    """:func:`reconstruction_metrics` of what a method recovered, at the level it recovered it.

    Args:
        recovered: modality letter -> (N, T, D) input-space features, or (N, D) utterance-level ones.
        features, lengths: modality letter -> the true (N, T, D) features and (N,) valid lengths of the
            same samples, in the same order.
        missing: (N, 3) bool, True where the modality (order L, V, A) was removed.
        train_means: the training split's means (the mean-imputation reference).

    Returns:
        As :func:`reconstruction_metrics`. A sequence is scored over its valid steps; an
        utterance-level recovery against the time average of the valid steps.
    """
    truth, means, valid_lengths = {}, {}, {}
    for modality, estimate in recovered.items():
        full = _float_tensor(features[modality])
        utterance_level = estimate.dim() == 2
        if utterance_level:
            full = time_average(full, lengths[modality])
        else:
            valid_lengths[modality] = torch.from_numpy(np.asarray(lengths[modality]))
        truth[modality], means[modality] = full, train_means.get(modality, utterance_level)
    return reconstruction_metrics(recovered, truth, missing, means, lengths=valid_lengths)
