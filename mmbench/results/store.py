"""SQLite results store: WAL mode, one transaction per run, safe with several writer processes.

Schema: ``runs`` (one row per run, keyed by ``run_id``; ``config_hash`` identifies what was run,
``config_id`` the configuration without the seed, see :mod:`mmbench.results.keys`), ``metrics``
(one row per run, split, condition and metric) and ``claims`` (the run keys a live process is
training: a second sweep never trains the same run at once). The store only appends and updates a
run's own row; reports read it and never recompute a metric.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import time
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
    n_test INTEGER, config_id TEXT, data_quality TEXT);
CREATE INDEX IF NOT EXISTS runs_config_hash ON runs (config_hash, status);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(run_id), split TEXT, condition TEXT, achieved_rate REAL,
    metric TEXT, value REAL, mask_sha256 TEXT, achieved_rates TEXT);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics (run_id);
CREATE TABLE IF NOT EXISTS claims (
    config_hash TEXT PRIMARY KEY, run_id TEXT, host TEXT, pid INTEGER, heartbeat REAL);
"""
#: Columns added after the first schema: an older store gains them on open.
_ADDED_COLUMNS = {"config_id": "TEXT", "data_quality": "TEXT"}
#: Likewise for the metrics table (``achieved_rates``: JSON {"L": .., "V": .., "A": ..}, imbalanced only);
#: read-only, an older store reads them as NULL.
_ADDED_METRIC_COLUMNS = {"achieved_rates": "TEXT"}
#: A claim whose holder has not renewed it for this long is abandoned (a killed process, another host).
CLAIM_TTL_S = 300.0


class StoreError(OSError):
    """The results store cannot be opened or written (one line, naming the path)."""


class ResultStore:
    """The store of one results directory (``<dir>/mmbench.sqlite``)."""

    def __init__(self, results_dir: Path | str, *, readonly: bool = False):
        """Open (or, unless ``readonly``, create) the store of ``results_dir``.

        ``readonly`` is for reports: the store must exist (a mistyped path is an error, not a new
        empty store), and a store on a read-only file system can still be read.
        """
        self.results_dir = Path(results_dir)
        self.path = self.results_dir / DB_NAME
        self.readonly = readonly
        if readonly:
            if not self.path.is_file():
                raise StoreError(f"no results store in {self.results_dir} (expected {self.path}); "
                                 f"run `mmbench run ... --results {self.results_dir}` first")
            return
        try:
            self.results_dir.mkdir(parents=True, exist_ok=True)
            with closing(self._connect()) as conn:
                conn.executescript(_SCHEMA)  # idempotent; executescript commits on its own
                present = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
                for column, kind in _ADDED_COLUMNS.items():
                    if column not in present:
                        conn.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
                present = {row[1] for row in conn.execute("PRAGMA table_info(metrics)")}
                for column, kind in _ADDED_METRIC_COLUMNS.items():
                    if column not in present:
                        conn.execute(f"ALTER TABLE metrics ADD COLUMN {column} {kind}")
        except (sqlite3.OperationalError, OSError) as error:
            raise StoreError(f"cannot write the results store {self.path}: {error} "
                             f"(choose a writable --results directory)") from None

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            # immutable: no -wal/-shm files are needed, so a read-only directory can be read
            writable = os.access(self.results_dir, os.W_OK) and os.access(self.path, os.W_OK)
            uri = f"file:{self.path}?mode=ro" + ("" if writable else "&immutable=1")
            return sqlite3.connect(uri, uri=True, timeout=60.0, isolation_level=None)
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
        row["data_quality"] = json.dumps(row["data_quality"], sort_keys=True) if row["data_quality"] else None
        row["synthetic"] = int(bool(row["synthetic"]))
        columns = ", ".join(row)
        placeholders = ", ".join(f":{c}" for c in row)
        with self._transaction() as conn:
            conn.execute(f"INSERT OR REPLACE INTO runs ({columns}) VALUES ({placeholders})", row)
            conn.execute("DELETE FROM metrics WHERE run_id = ?", (record.run_id,))
            conn.executemany(
                "INSERT INTO metrics (run_id, split, condition, achieved_rate, metric, value, mask_sha256, "
                "achieved_rates) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(record.run_id, m.split, m.condition, m.achieved_rate, m.metric, float(m.value), m.mask_sha256,
                  json.dumps(m.achieved_rates) if m.achieved_rates else None)  # L, V, A as the mask gives them
                 for m in record.metrics])

    # -- claims: one live trainer per run key ---------------------------------------------------
    def claim(self, config_hash: str, run_id: str) -> str:
        """Claim the run ``config_hash`` for this process before training it.

        Returns ``"claimed"``, ``"finished"`` (nothing to do) or ``"held"`` (a live process is
        training it). A claim left by a dead process on this host, or one not renewed for
        :data:`CLAIM_TTL_S`, is taken over.
        """
        host, pid, now = socket.gethostname(), os.getpid(), time.time()
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE config_hash = ? AND status = 'finished' LIMIT 1",
                            (config_hash,)).fetchone():
                return "finished"
            holder = conn.execute("SELECT host, pid, heartbeat FROM claims WHERE config_hash = ?",
                                  (config_hash,)).fetchone()
            if holder is not None and _alive(*holder, now) and (holder[0], holder[1]) != (host, pid):
                return "held"
            conn.execute("INSERT OR REPLACE INTO claims (config_hash, run_id, host, pid, heartbeat) "
                         "VALUES (?, ?, ?, ?, ?)", (config_hash, run_id, host, pid, now))
        return "claimed"

    def renew_claims(self) -> None:
        """Keep this process's claims alive (called periodically while it trains)."""
        with self._transaction() as conn:
            conn.execute("UPDATE claims SET heartbeat = ? WHERE host = ? AND pid = ?",
                         (time.time(), socket.gethostname(), os.getpid()))

    def release(self, config_hash: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM claims WHERE config_hash = ? AND host = ? AND pid = ?",
                         (config_hash, socket.gethostname(), os.getpid()))

    def reap_abandoned(self) -> list[str]:
        """Mark runs left ``running`` by a dead process as ``interrupted`` and delete their partial
        artifact folders; return their run ids. A run still claimed by a live process is left alone."""
        now, reaped = time.time(), []
        with self._transaction() as conn:
            running = conn.execute("SELECT run_id, config_hash, artifacts_dir FROM runs WHERE status = 'running'").fetchall()
            for run_id, config_hash, artifacts in running:
                holder = conn.execute("SELECT host, pid, heartbeat FROM claims WHERE config_hash = ?",
                                      (config_hash,)).fetchone()
                if holder is not None and _alive(*holder, now):
                    continue
                conn.execute("UPDATE runs SET status = 'interrupted', error = ? WHERE run_id = ?",
                             ("the process training this run died (killed or crashed) before it ended", run_id))
                conn.execute("DELETE FROM claims WHERE config_hash = ?", (config_hash,))
                reaped.append(run_id)
                if artifacts:
                    shutil.rmtree(artifacts, ignore_errors=True)
        return reaped

    # -- reading ------------------------------------------------------------------------------
    def is_finished(self, config_hash: str) -> bool:
        with closing(self._connect()) as conn:
            found = conn.execute("SELECT 1 FROM runs WHERE config_hash = ? AND status = 'finished' LIMIT 1",
                                 (config_hash,)).fetchone()
        return found is not None

    def finished_keys(self) -> dict[str, dict]:
        """config_hash -> run key of every finished run."""
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT config_hash, config FROM runs WHERE status = 'finished'").fetchall()
        return {digest: json.loads(config) for digest, config in rows}

    def runs(self) -> pd.DataFrame:
        with closing(self._connect()) as conn:
            frame = pd.read_sql_query("SELECT * FROM runs ORDER BY started_at", conn)
        frame["synthetic"] = frame["synthetic"].astype(bool)
        return frame

    def long_table(self) -> pd.DataFrame:
        """One row per (run, split, condition, metric) with the run's identifying columns.

        ``train_condition`` is the condition the model was trained for (without ``--eval-rates``, the
        tested one); ``run_condition`` the run's own (``all`` for a fixed-protocol run).
        ``achieved_rates`` is the JSON text {"L": .., "V": .., "A": ..} of ``imbalanced`` rows, else None."""
        query = """
            SELECT r.run_id, r.dataset, r.method, r.protocol, m.condition, m.achieved_rate, {achieved_rates},
                   r.train_setting, r.selection, r.seed, m.split, m.metric, m.value, m.mask_sha256, r.data_sha256,
                   r.config_hash, r.status, r.synthetic, r.n_test, r.config_id,
                   CASE WHEN r.protocol = 'fixed' THEN m.condition ELSE r.condition END AS train_condition, r.condition AS run_condition
            FROM metrics m JOIN runs r USING (run_id)
            ORDER BY r.dataset, r.method, r.protocol, m.condition, r.seed, m.split, m.metric"""
        with closing(self._connect()) as conn:
            frame = pd.read_sql_query(query.format(achieved_rates=_metric_column(conn, "achieved_rates")), conn)
        frame["synthetic"] = frame["synthetic"].astype(bool)
        return frame

    def metric_rows(self, run_id: str) -> list[MetricRow]:
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT split, condition, metric, value, achieved_rate, mask_sha256, "
                                f"{_metric_column(conn, 'achieved_rates')} FROM metrics m WHERE run_id = ?",
                                (run_id,)).fetchall()
        return [MetricRow(*row[:-1], achieved_rates=json.loads(row[-1]) if row[-1] else None) for row in rows]


def _metric_column(conn: sqlite3.Connection, column: str) -> str:
    """``m.<column>``, or NULL under its name when a store older than the column is read read-only."""
    present = {row[1] for row in conn.execute("PRAGMA table_info(metrics)")}
    return f"m.{column}" if column in present else f"NULL AS {column}"


def _alive(host: str, pid: int, heartbeat: float, now: float) -> bool:
    """Whether a claim's holder still trains: a live pid on this host, or a recent heartbeat elsewhere."""
    if host == socket.gethostname():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return now - float(heartbeat) < CLAIM_TTL_S
