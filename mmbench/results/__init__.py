"""The results store: typed run records in SQLite, per-run artifacts beside it."""
from mmbench.results.records import MetricRow, RunRecord
from mmbench.results.store import ResultStore, StoreError

__all__ = ["MetricRow", "RunRecord", "ResultStore", "StoreError"]
