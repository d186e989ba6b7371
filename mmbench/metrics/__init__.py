"""Sentiment and reconstruction metrics: one definition, used by every method and every table.

- :mod:`mmbench.metrics.functional`: pure ``(preds, labels) -> Tensor`` functions, one per metric
  and variant, and :func:`regression_metrics`, the entry point that returns a dataset's keys.
- :mod:`mmbench.metrics.reconstruction`: fidelity of recovered features (``rec_mse_<m>``, ...).
- :mod:`mmbench.metrics.modular`: torchmetrics ``Metric`` wrappers that accumulate and call the above.

Definitions, with MMSA's conventions and pitfalls: docs/metrics.md.
"""
from mmbench.metrics.functional import HIGHER_IS_BETTER, METRIC_KEYS, regression_metrics
from mmbench.metrics.modular import ReconstructionMetrics, SentimentMetrics
from mmbench.metrics.reconstruction import reconstruction_metrics

__all__ = ["HIGHER_IS_BETTER", "METRIC_KEYS", "ReconstructionMetrics", "SentimentMetrics", "reconstruction_metrics",
           "regression_metrics"]
