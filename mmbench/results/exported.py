"""The store as one long table, and back: every table and figure can be rebuilt from an export alone.

``mmbench export`` writes :func:`export_table`: the long table (one row per run, split, condition
and metric) with each run's own columns beside it (its run key as JSON, times, status, data quality),
and one row with an empty ``metric`` for a run that ended without numbers (failed, interrupted), so
``n_failed`` survives the trip. :func:`open_results` opens either a results directory or such an
export (``.csv``, ``.csv.gz``, ``.jsonl``, ``.jsonl.gz``, ``.parquet``): an export is loaded into a
temporary store, so reports read both the same way. Per-sample predictions are not in an export;
reports that need them (the paired bootstrap) fall back to what the export holds.
"""
from __future__ import annotations

import atexit
import json
import shutil
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

import pandas as pd

from mmbench.results.store import ResultStore, StoreError

#: Run columns carried beside every row of an export (``config`` is exported as ``run_key``).
RUN_COLUMNS = ("config", "started_at", "ended_at", "duration_s", "synthetic", "n_test", "data_quality",
               "git_commit", "package_version", "device", "error")
_METRIC_COLUMNS = ("run_id", "split", "condition", "achieved_rate", "metric", "value", "mask_sha256",
                   "achieved_rates")  # an older export without achieved_rates reads it as NULL


def export_table(store: ResultStore) -> pd.DataFrame:
    """The long table with each run's columns; runs without numbers appear once with no metric."""
    long = store.long_table().drop(columns=["synthetic", "n_test"])
    runs = store.runs()
    run_columns = runs[["run_id", *RUN_COLUMNS]].rename(columns={"config": "run_key"})
    table = long.merge(run_columns, on="run_id", how="left")
    empty = runs[~runs["run_id"].isin(long["run_id"])]
    if len(empty):
        blank = empty.rename(columns={"config": "run_key", "condition": "run_condition"})
        blank = blank.assign(split="", metric="", value=float("nan"), condition=blank["run_condition"],
                             train_condition=blank["run_condition"], achieved_rate=None)
        table = pd.concat([table, blank.reindex(columns=table.columns)], ignore_index=True)
    return table


def read_export(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path, dtype={"condition": str, "train_condition": str, "run_condition": str},
                           keep_default_na=True)
    if name.endswith((".jsonl", ".jsonl.gz")):
        return pd.read_json(path, lines=True, dtype=False)  # no type guessing: ids and times stay text
    if name.endswith(".parquet"):
        return pd.read_parquet(path)
    raise StoreError(f"{path}: not a results directory nor an export (.csv[.gz], .jsonl[.gz], .parquet)")


def open_results(path: Path | str) -> ResultStore:
    """A read-only store from a results directory or from a file ``mmbench export`` wrote."""
    path = Path(path)
    if not path.is_file():
        return ResultStore(path, readonly=True)
    table = read_export(path)
    missing = {"run_id", "run_key", "config_hash", "metric", "value", "status"} - set(table.columns)
    if missing:
        raise StoreError(f"{path}: not an mmbench export with run columns (missing {', '.join(sorted(missing))}); "
                         f"export it again with `mmbench export`")
    folder = Path(tempfile.mkdtemp(prefix="mmbench-export-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    store = ResultStore(folder)
    runs = table.drop_duplicates("run_id").rename(columns={"run_key": "config"})
    runs = runs.assign(condition=runs["run_condition"], mask_sha256="", artifacts_dir="",
                       synthetic=runs["synthetic"].astype(bool).astype(int))
    run_fields = ["run_id", "config_hash", "dataset", "data_sha256", "method", "protocol", "condition",
                  "train_setting", "selection", "seed", "mask_sha256", "status", "config_id", "artifacts_dir",
                  *[c for c in RUN_COLUMNS if c != "synthetic"], "synthetic"]
    metrics = table[table["metric"].fillna("") != ""]
    with closing(sqlite3.connect(store.path)) as conn, conn:
        conn.executemany(f"INSERT INTO runs ({', '.join(run_fields)}) VALUES ({', '.join('?' * len(run_fields))})",
                         _records(runs, run_fields))
        conn.executemany(f"INSERT INTO metrics ({', '.join(_METRIC_COLUMNS)}) "
                         f"VALUES ({', '.join('?' * len(_METRIC_COLUMNS))})",
                         _records(metrics, list(_METRIC_COLUMNS)))
    return ResultStore(folder, readonly=True)


def _records(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    frame = frame.reindex(columns=columns).astype(object).where(frame.reindex(columns=columns).notna(), None)
    return [tuple(json.dumps(v) if isinstance(v, (dict, list)) else v for v in row)
            for row in frame.itertuples(index=False)]
