"""Sentiment and reconstruction metrics, defined once: the runner's evaluation (so every table) and the
validation monitor of the methods' base class call these functions.

- :mod:`mmbench.metrics.functional`: pure ``(preds, labels) -> Tensor`` functions, one per metric
  and variant; :func:`regression_metrics`, the entry point that returns a metric family's keys
  (the caller passes the family: ``mmbench.data.registry.metric_family(dataset)``); and
  :func:`mean_condition_mae`, the validation monitor.
- :mod:`mmbench.metrics.reconstruction`: fidelity of recovered features (``rec_mse_<m>``, ...) and
  :func:`recovery_fidelity`, which scores a method's recoveries against the true features.
- :mod:`mmbench.metrics.modular`: torchmetrics ``Metric`` wrappers that accumulate and call the above.

Definitions, with MMSA's conventions and pitfalls: docs/metrics.md.
"""
from mmbench.metrics.functional import (HIGHER_IS_BETTER, METRIC_FAMILIES, METRIC_KEYS, mean_condition_mae,
                                        regression_metrics)
from mmbench.metrics.modular import ReconstructionMetrics, SentimentMetrics
from mmbench.metrics.reconstruction import TrainingMeans, reconstruction_metrics, recovery_fidelity

__all__ = ["HIGHER_IS_BETTER", "METRIC_FAMILIES", "METRIC_KEYS", "ReconstructionMetrics", "SentimentMetrics",
           "TrainingMeans", "mean_condition_mae", "reconstruction_metrics", "recovery_fidelity", "regression_metrics"]
