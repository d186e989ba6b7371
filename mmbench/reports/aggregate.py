"""Aggregate the store's per-seed numbers into (mean, std, n_seeds, n_failed) rows, one per configuration.

Which runs count (see :mod:`mmbench.results.keys`):

1. Only the newest code version of a configuration: finished runs of an older mmbench or method
   version of the same configuration are *stale*, kept in the store and left out (``n_stale``).
2. One result per run key: when the same key and seed finished twice (two sweeps, a rerun), the
   newest counts and the others are *superseded* (``n_superseded``; the table title says so).
3. A cell averages the runs of one ``config_id`` only: a quick-profile run, another epoch budget,
   another data file or another ``--set`` is another row, labelled by what differs.
4. ``n_failed`` counts failed or interrupted runs of that configuration and training condition that
   no later finished run of the same key replaced.
"""
from __future__ import annotations

import json

import pandas as pd

from mmbench.reports.equity import equity_rows
from mmbench.results import ResultStore
from mmbench.results.keys import config_id, difference_labels, family_id, slot_id, versions

GROUP_KEYS = ["dataset", "method", "protocol", "condition", "train_setting", "selection", "metric", "config_id",
              "train_condition"]
RESULT_COLUMNS = GROUP_KEYS + ["label", "mean", "std", "n_seeds", "n_failed", "n_superseded",
                               "n_stale", "synthetic", "achieved_rate", "achieved_rates", "n_test", "data_quality"]
#: Statuses of runs that ended without a result.
FAILED_STATUSES = ("failed", "interrupted")


def counted_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs tables may use, with ``config_id``, ``slot`` and the counts of what was left out.

    Adds ``counted`` (bool) and, per run, ``superseded`` / ``stale`` flags; ``runs`` is the store's
    runs table (its ``config`` column holds each run key as JSON).
    """
    runs = runs.copy()
    keys = [json.loads(c) if isinstance(c, str) else (c or {}) for c in runs["config"]]
    runs["config_id"] = [cid or config_id(key) for cid, key in zip(runs.get("config_id", [None] * len(runs)), keys)]
    runs["slot"] = [slot_id(key) for key in keys]
    runs["family"] = [family_id(key) for key in keys]
    runs["versions"] = [versions(key) for key in keys]
    runs["key"] = keys
    runs["order"] = runs["ended_at"].fillna(runs["started_at"]).fillna("")
    finished = runs[runs["status"] == "finished"].sort_values("order")
    newest_version = finished.groupby("family")["versions"].last()
    runs["stale"] = [(s == "finished") and v != newest_version.get(f, v)
                     for s, v, f in zip(runs["status"], runs["versions"], runs["family"])]
    current = finished[~finished["run_id"].isin(runs.loc[runs["stale"], "run_id"])]
    newest_per_slot = set(current.groupby("slot")["run_id"].last())
    runs["superseded"] = (runs["status"] == "finished") & ~runs["stale"] & ~runs["run_id"].isin(newest_per_slot)
    runs["counted"] = runs["run_id"].isin(newest_per_slot)
    last_finish = current.groupby("config_hash")["order"].max()
    runs["open_failure"] = [s in FAILED_STATUSES and not (h in last_finish and last_finish[h] >= o)
                            for s, h, o in zip(runs["status"], runs["config_hash"], runs["order"])]
    return runs


def aggregate(store: ResultStore, *, dataset: str | None = None, protocol: str | None = None,
              metrics: list[str] | None = None, include_oracle: bool = False, split: str = "test") -> pd.DataFrame:
    """One row per (dataset, method, protocol, condition, setting, selection, metric, config_id, train condition).

    ``mean``/``std`` are in the stored unit, ``std`` with ddof = 1 (None for a single seed);
    ``n_seeds`` is the number of values averaged. Failed runs are not averaged, only counted.
    """
    runs = counted_runs(store.runs())
    if not include_oracle:
        runs = runs[runs["selection"] != "test-oracle"]
    if dataset:
        runs = runs[runs["dataset"] == dataset]
    if protocol:
        runs = runs[runs["protocol"] == protocol]
    table = store.long_table().drop(columns=["config_id"], errors="ignore")
    table = table[table["split"] == split]
    table = table.merge(runs.loc[runs["counted"], ["run_id", "config_id"]], on="run_id")
    equity = equity_rows(table)
    if not equity.empty:
        table = pd.concat([table, equity], ignore_index=True)
    if metrics:
        table = table[table["metric"].isin(metrics)]
    if table.empty:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    grouped = table.groupby(GROUP_KEYS, sort=False)
    rows = grouped.agg(mean=("value", "mean"), std=("value", lambda v: v.std(ddof=1) if len(v) > 1 else None),
                       n_seeds=("value", "size"), synthetic=("synthetic", "max"),
                       achieved_rate=("achieved_rate", "mean"), achieved_rates=("achieved_rates", _mean_rates),
                       n_test=("n_test", "max"),
                       run_condition=("run_condition", "first")).reset_index()
    rows["std"] = rows["std"].astype(object).where(rows["n_seeds"] > 1, None)
    per_config = runs.groupby(["config_id", "condition"])
    counts = pd.DataFrame({"n_failed": per_config["open_failure"].sum(),
                           "n_superseded": per_config["superseded"].sum()}).reset_index()
    counts = counts.rename(columns={"condition": "run_condition"})
    rows = rows.merge(counts, how="left", on=["config_id", "run_condition"])
    stale = runs.groupby("family")["stale"].sum()
    configs = runs.drop_duplicates("config_id").set_index("config_id")  # one run's columns per configuration
    rows["n_stale"] = [int(stale.get(configs["family"].get(c), 0)) for c in rows["config_id"]]
    for column in ("n_failed", "n_superseded"):
        rows[column] = rows[column].fillna(0).astype(int)
    rows["data_quality"] = [configs["data_quality"].get(c) or None for c in rows["config_id"]]
    rows["label"] = _labels(rows, configs["key"])
    # --eval-rates: one configuration holds a model per training condition, each tested at every rate
    evaluated_widely = [bool(configs["key"].get(c, {}).get("test_conditions")) for c in rows["config_id"]]
    rows.loc[evaluated_widely, "label"] += " [train " + rows.loc[evaluated_widely, "train_condition"] + "]"
    rows.loc[rows["protocol"] == "fixed", "achieved_rate"] = None
    rows["achieved_rates"] = [json.loads(r) if isinstance(r, str) else None for r in rows["achieved_rates"]]
    return rows.drop(columns=["run_condition"])[RESULT_COLUMNS]


def _mean_rates(stored: pd.Series) -> str | None:
    """Per-modality mean over seeds of the stored ``achieved_rates`` JSON (imbalanced), else None."""
    rates = pd.DataFrame([json.loads(r) for r in stored if isinstance(r, str)])
    return json.dumps(rates.mean().to_dict()) if len(rates) else None


def _labels(rows: pd.DataFrame, key_of: pd.Series) -> list[str]:
    """The row label: the method, plus what sets its configuration apart where a table holds several."""
    labels: dict[str, str] = {}
    table_keys = ["dataset", "method", "protocol", "train_setting", "selection"]
    for (_, method, *_), group in rows.groupby(table_keys, sort=False):
        ids = list(dict.fromkeys(group["config_id"]))
        differences = difference_labels({cid: key_of.get(cid, {}) for cid in ids})
        for cid in ids:
            labels[cid] = f"{method} [{differences[cid]}]" if differences[cid] else method
    return [labels[c] for c in rows["config_id"]]
