"""Aggregate the store's per-seed numbers into (mean, std, n_seeds, n_failed) rows."""
from __future__ import annotations

import pandas as pd

from mmbench.results import ResultStore

GROUP_KEYS = ["dataset", "method", "protocol", "condition", "train_setting", "selection", "metric"]


def aggregate(store: ResultStore, *, dataset: str | None = None, protocol: str | None = None,
              metrics: list[str] | None = None, include_oracle: bool = False, split: str = "test") -> pd.DataFrame:
    """One row per (dataset, method, protocol, condition, setting, selection, metric).

    ``mean``/``std`` are in the stored unit, ``std`` with ddof = 1 (None for a single seed).
    Failed runs are not averaged, only counted in ``n_failed``.
    """
    table = store.long_table()
    table = table[(table["status"] == "finished") & (table["split"] == split)]
    runs = store.runs()
    if not include_oracle:
        table = table[table["selection"] != "test-oracle"]
        runs = runs[runs["selection"] != "test-oracle"]
    if dataset:
        table, runs = table[table["dataset"] == dataset], runs[runs["dataset"] == dataset]
    if protocol:
        table, runs = table[table["protocol"] == protocol], runs[runs["protocol"] == protocol]
    if metrics:
        table = table[table["metric"].isin(metrics)]
    if table.empty:
        return pd.DataFrame(columns=GROUP_KEYS + ["mean", "std", "n_seeds", "n_failed", "synthetic",
                                                  "achieved_rate", "n_test"])
    grouped = table.groupby(GROUP_KEYS, sort=False)
    rows = grouped.agg(mean=("value", "mean"), std=("value", lambda v: v.std(ddof=1) if len(v) > 1 else None),
                       n_seeds=("seed", "nunique"), synthetic=("synthetic", "max"),
                       achieved_rate=("achieved_rate", "mean"), n_test=("n_test", "max")).reset_index()
    rows["std"] = rows["std"].astype(object).where(rows["n_seeds"] > 1, None)
    failed = runs[runs["status"] == "failed"].groupby(["dataset", "method", "protocol", "train_setting",
                                                       "selection"]).size().rename("n_failed").reset_index()
    rows = rows.merge(failed, how="left", on=["dataset", "method", "protocol", "train_setting", "selection"])
    rows["n_failed"] = rows["n_failed"].fillna(0).astype(int)
    rows.loc[rows["protocol"] == "fixed", "achieved_rate"] = None
    return rows
