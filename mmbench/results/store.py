"""SQLite results store: WAL mode, one transaction per run, safe with several writer processes.

Schema: ``runs`` (one row per run, keyed by ``run_id``; ``config_hash`` identifies what was run)
and ``metrics`` (one row per run, split, condition and metric). The store only appends and
updates a run's own row; reports read it and never recompute a metric.
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

from mmbench.results.records import MetricRow, RunRecord

DB_NAME = "mmbench.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, config_hash TEXT NOT NULL, dataset TEXT, data_sha256 TEXT, method TEXT,
    protocol TEXT, condition TEXT, train_setting TEXT, selection TEXT, seed INTEGER, mask_sha256 TEXT,
    status TEXT, started_at TEXT, ended_at TEXT, duration_s REAL, synthetic INTEGER,
    package_version TEXT, git_commit TEXT, config TEXT, error TEXT, artifacts_dir TEXT, device TEXT,
    n_test INTEGER);
CREATE INDEX IF NOT EXISTS runs_config_hash ON runs (config_hash, status);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(run_id), split TEXT, condition TEXT, achieved_rate REAL,
    metric TEXT, value REAL, mask_sha256 TEXT);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics (run_id);
"""


class ResultStore:
    """The store of one results directory (``<dir>/mmbench.sqlite``)."""

    def __init__(self, results_dir: Path | str):
        self.results_dir = Path(results_dir)
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.results_dir / DB_NAME
        with closing(self._connect()) as conn:
            conn.executescript(_SCHEMA)  # idempotent; executescript commits on its own

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=60000")
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")  # take the write lock now: writers queue, none is lost
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # -- writing ------------------------------------------------------------------------------
    def save(self, record: RunRecord) -> None:
        """Insert or replace ``record`` and its metrics, atomically."""
        row = record.row()
        row["config"] = json.dumps(row["config"], sort_keys=True, default=str)
        row["synthetic"] = int(bool(row["synthetic"]))
        columns = ", ".join(row)
        placeholders = ", ".join(f":{c}" for c in row)
        with self._transaction() as conn:
            conn.execute(f"INSERT OR REPLACE INTO runs ({columns}) VALUES ({placeholders})", row)
            conn.execute("DELETE FROM metrics WHERE run_id = ?", (record.run_id,))
            conn.executemany(
                "INSERT INTO metrics (run_id, split, condition, achieved_rate, metric, value, mask_sha256) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(record.run_id, m.split, m.condition, m.achieved_rate, m.metric, float(m.value), m.mask_sha256)
                 for m in record.metrics])

    # -- reading ------------------------------------------------------------------------------
    def is_finished(self, config_hash: str) -> bool:
        with closing(self._connect()) as conn:
            found = conn.execute("SELECT 1 FROM runs WHERE config_hash = ? AND status = 'finished' LIMIT 1",
                                 (config_hash,)).fetchone()
        return found is not None

    def runs(self) -> pd.DataFrame:
        with closing(self._connect()) as conn:
            frame = pd.read_sql_query("SELECT * FROM runs ORDER BY started_at", conn)
        frame["synthetic"] = frame["synthetic"].astype(bool)
        return frame

    def long_table(self) -> pd.DataFrame:
        """One row per (run, split, condition, metric) with the run's identifying columns."""
        query = """
            SELECT r.run_id, r.dataset, r.method, r.protocol, m.condition, m.achieved_rate, r.train_setting,
                   r.selection, r.seed, m.split, m.metric, m.value, m.mask_sha256, r.data_sha256,
                   r.config_hash, r.status, r.synthetic, r.n_test
            FROM metrics m JOIN runs r USING (run_id)
            ORDER BY r.dataset, r.method, r.protocol, m.condition, r.seed, m.split, m.metric"""
        with closing(self._connect()) as conn:
            frame = pd.read_sql_query(query, conn)
        frame["synthetic"] = frame["synthetic"].astype(bool)
        return frame

    def metric_rows(self, run_id: str) -> list[MetricRow]:
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT split, condition, metric, value, achieved_rate, mask_sha256 "
                                "FROM metrics WHERE run_id = ?", (run_id,)).fetchall()
        return [MetricRow(*row) for row in rows]
