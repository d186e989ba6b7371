"""Stateful torchmetrics wrappers: they accumulate, the functions in ``functional`` compute.

``SentimentMetrics`` keeps every prediction and label (correlation and F1 need them all; running
sums would not do) and calls :func:`mmbench.metrics.functional.regression_metrics` in ``compute``,
so a batch-by-batch result equals the one-shot result exactly. ``ReconstructionMetrics`` keeps
per-key sums of per-sample values (the full feature tensors of a MOSEI test set would not fit
comfortably), which is exact because every reconstruction metric is a mean over samples.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from mmbench.constants import MODALITIES
from mmbench.metrics.functional import HIGHER_IS_BETTER, METRIC_KEYS, check_family, regression_metrics
from mmbench.metrics.reconstruction import reconstruction_per_sample

_REC_KEYS: tuple[str, ...] = tuple(key for key in HIGHER_IS_BETTER if key.startswith("rec_"))


class SentimentMetrics(Metric):
    """All sentiment metrics of a dataset's family, from every prediction seen since the last reset.

    ``higher_is_better`` is None because the keys disagree (MAE is lower-is-better); the
    per-key direction is :attr:`higher_is_better_per_key`, taken from
    :data:`mmbench.metrics.functional.HIGHER_IS_BETTER`.

    Args:
        family: the metric family (``"mosi"``, ``"mosei"``, ``"sims"``); see
            :func:`mmbench.metrics.functional.regression_metrics`.

    Example:
        >>> metric = SentimentMetrics("mosi")
        >>> metric.update(torch.tensor([1.0, -2.0]), torch.tensor([0.5, -1.0]))
        >>> metric.update(torch.tensor([0.2]), torch.tensor([-0.4]))
        >>> metric.compute()["acc2_has0"]
        0.6666666666666666
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    def __init__(self, family: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.family = check_family(family)
        self.higher_is_better_per_key = {key: HIGHER_IS_BETTER[key] for key in METRIC_KEYS[self.family]}
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    def update(self, preds: Tensor, labels: Tensor) -> None:
        """Add a batch: (B,) or (B, 1) predictions and (B,) labels."""
        preds, labels = torch.as_tensor(preds).detach(), torch.as_tensor(labels).detach()
        if preds.numel() != labels.numel():
            raise ValueError(f"SentimentMetrics.update: {preds.numel()} predictions but {labels.numel()} labels")
        self.preds.append(preds.reshape(-1).float())
        self.labels.append(labels.reshape(-1).float())

    def compute(self) -> dict[str, float]:
        if not self.preds:
            raise ValueError("SentimentMetrics.compute: no predictions were added since the last reset")
        return regression_metrics(dim_zero_cat(self.preds), dim_zero_cat(self.labels), self.family)


class ReconstructionMetrics(Metric):
    """Reconstruction fidelity (``rec_mse_<m>``, ``rec_cos_<m>`` and references) over batches.

    Args:
        train_mean: modality letter -> training-set mean feature, (D,) or (T, D).

    Example:
        >>> metric = ReconstructionMetrics({"A": torch.zeros(2)})
        >>> missing = torch.tensor([[False, False, True]])
        >>> metric.update({"A": torch.ones(1, 2)}, {"A": torch.ones(1, 2)}, missing)
        >>> metric.update({"A": torch.zeros(1, 2)}, {"A": torch.ones(1, 2)}, missing)
        >>> metric.compute()["rec_mse_A"]
        0.5
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    def __init__(self, train_mean: dict[str, Tensor], **kwargs) -> None:
        super().__init__(**kwargs)
        self.train_mean = {m: torch.as_tensor(v).detach().cpu() for m, v in train_mean.items()}
        self.higher_is_better_per_key = {key: HIGHER_IS_BETTER[key] for key in _REC_KEYS}
        for key in _REC_KEYS:
            self.add_state(f"sum_{key}", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        for modality in MODALITIES:
            self.add_state(f"count_{modality}", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, recovered: dict[str, Tensor], truth: dict[str, Tensor], missing: Tensor,
               lengths: dict[str, Tensor] | None = None) -> None:
        """Add a batch; arguments as :func:`mmbench.metrics.reconstruction.reconstruction_metrics`."""
        values = reconstruction_per_sample(recovered, truth, missing, self.train_mean, lengths=lengths)
        for key, per_sample in values.items():
            setattr(self, f"sum_{key}", getattr(self, f"sum_{key}") + per_sample.sum().to(self.device))
        for modality in MODALITIES:
            if f"rec_mse_{modality}" in values:
                count = getattr(self, f"count_{modality}") + len(values[f"rec_mse_{modality}"])
                setattr(self, f"count_{modality}", count)

    def compute(self) -> dict[str, float]:
        out = {}
        for key in _REC_KEYS:
            count = int(getattr(self, f"count_{key.split('_')[2]}"))
            if count:
                out[key] = float(getattr(self, f"sum_{key}")) / count
        return out
