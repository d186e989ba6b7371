"""Runs trained elsewhere store what a sequential sweep stores (issue 19, "Throughput").

The same small sweep (mosi-synth, 48 samples per split, 1 epoch, ``mean`` and ``fusion``, fixed and
random 0.5, one seed, one thread per run) is run sequentially once, then with ``--jobs 2``, on a
local Ray cluster and through submitit's local executor: every store holds the same run keys and the
same numbers, bit for bit, but the cost metrics (measured wall times, not seeded). A method that
SIGKILLs its own worker checks that a lost run is retried, and recorded failed once retries run out.
"""
import os
import signal
from pathlib import Path

import pandas as pd
import pytest

from mmbench.cli import main
from mmbench.launchers import Completion, Launcher
from mmbench.launchers.work import WORKER_LOG
from mmbench.metrics.cost import COST_METRICS
from mmbench.registry import register_method
from mmbench.results import ResultStore
from mmbench.runner import Runner, SweepSummary
from mmbench.sweep import SweepOptions
from tests.helpers import OneWeightMethod, tiny_bundle

SWEEP = {"datasets": ("mosi-synth",), "methods": ("mean", "fusion"), "protocols": ("fixed", "random"),
         "rates": ("0.5",), "seeds": (1111,), "limit": 48, "max_epochs": 1}
#: Where the self-killing methods find their marker (read in the worker, which inherits the environment).
MARKER_ENV = "MMBENCH_TEST_KILL_MARKER"


@pytest.fixture(autouse=True)
def one_thread_per_run(monkeypatch):
    monkeypatch.setenv("MMBENCH_THREADS", "1")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def sequential(tmp_path_factory, data_dir) -> Path:
    """The reference: the sweep trained one run after another in this process."""
    results = tmp_path_factory.mktemp("sequential")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MMBENCH_THREADS", "1")
        summary = Runner(SweepOptions(**SWEEP, results_dir=results, data_dir=data_dir)).run()
    assert len(summary.finished) == 4
    return results


def stored_numbers(results: Path) -> pd.DataFrame:
    """Every seeded number of a store, by run key (config_hash), in a stable order."""
    table = ResultStore(results).long_table()
    table = table[~table["metric"].isin(COST_METRICS)]
    columns = ["config_hash", "split", "condition", "metric", "value", "mask_sha256", "n_test"]
    return table[columns].sort_values(columns[:4]).reset_index(drop=True)


def assert_same_store(results: Path, reference: Path) -> None:
    runs, expected = (ResultStore(r).runs().sort_values("config_hash") for r in (results, reference))
    assert list(runs["status"]) == ["finished"] * len(expected)
    assert list(runs["config_hash"]) == list(expected["config_hash"])  # same run keys, each once
    assert list(runs["mask_sha256"]) == list(expected["mask_sha256"])
    pd.testing.assert_frame_equal(stored_numbers(results), stored_numbers(reference), check_exact=True)


def worker_logs(results: Path) -> list[Path]:
    return [Path(d) / WORKER_LOG for d in ResultStore(results).runs()["artifacts_dir"] if (Path(d) / WORKER_LOG).is_file()]


def test_two_jobs_store_what_the_sequential_runner_stores(tmp_path, data_dir, sequential):
    summary = Runner(SweepOptions(**SWEEP, results_dir=tmp_path, data_dir=data_dir, jobs=2)).run()
    assert len(summary.finished) == 4 and not summary.failed
    assert_same_store(tmp_path, sequential)
    assert len(worker_logs(tmp_path)) == 4  # each run trained in a worker process, not in the driver
    again = Runner(SweepOptions(**SWEEP, results_dir=tmp_path, data_dir=data_dir, jobs=2)).run()
    assert len(again.skipped) == 4 and not again.finished  # a finished run is never repeated


class _Linear(OneWeightMethod):
    """A trainable one-weight method whose training step may kill its own process."""

    def training_loss(self, batch):
        if self.should_die():
            os.kill(os.getpid(), signal.SIGKILL)  # halfway: the run is claimed, its folder written, training
        return (self(batch) - batch["label"]).abs().mean()


@register_method("killed-once-test-method")
class KilledOnce(_Linear):
    def should_die(self) -> bool:
        marker = Path(os.environ[MARKER_ENV])
        if marker.exists():
            return False
        marker.touch()
        return True


@register_method("always-killed-test-method")
class AlwaysKilled(_Linear):
    def should_die(self) -> bool:
        return True


def test_a_killed_worker_costs_only_its_own_run_which_is_retried_then_recorded_failed(tmp_path, data_dir,
                                                                                    monkeypatch):
    # killed-once dies on its first attempt only, always-killed on every one, beside mean in a pool of 2
    marker = tmp_path / "killed"
    monkeypatch.setenv(MARKER_ENV, str(marker))
    methods = ("killed-once-test-method", "always-killed-test-method", "mean")
    options = SweepOptions(**{**SWEEP, "methods": methods, "protocols": ("fixed",)}, results_dir=tmp_path / "runs",
                           data_dir=data_dir, jobs=2, retries=1)
    summary = Runner(options).run()
    assert marker.exists(), "killed-once should have killed its worker once"
    assert len(summary.finished) == 2 and len(summary.failed) == 1
    store = ResultStore(tmp_path / "runs")
    runs = store.runs().set_index("method")
    assert len(runs) == 3  # a retry is the same run, not a new row
    assert runs.loc["killed-once-test-method", "status"] == "finished" and runs.loc["mean", "status"] == "finished"
    assert (Path(runs.loc["killed-once-test-method", "artifacts_dir"]) / "predictions.csv.gz").is_file()
    assert runs.loc["always-killed-test-method", "status"] == "failed"
    assert "lost 2 time(s)" in runs.loc["always-killed-test-method", "error"]  # its first try and one retry
    assert not store._connect().execute("SELECT * FROM claims").fetchall()  # every claim released


def test_a_local_ray_cluster_stores_what_the_sequential_runner_stores(tmp_path, data_dir, sequential):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = Runner(SweepOptions(**SWEEP, results_dir=tmp_path, data_dir=data_dir, launcher="ray")).run()
        assert ray.is_initialized()  # the test's cluster is the test's to shut down
    finally:
        ray.shutdown()
    assert len(summary.finished) == 4
    assert_same_store(tmp_path, sequential)


def test_submitit_local_executor_stores_what_the_sequential_runner_stores(tmp_path, data_dir, sequential):
    options = SweepOptions(**SWEEP, results_dir=tmp_path, data_dir=data_dir, launcher="slurm", slurm_cluster="local",
                           jobs=2)
    summary = Runner(options).run()
    assert len(summary.finished) == 4
    assert_same_store(tmp_path, sequential)
    assert list((tmp_path / "slurm").rglob("*_result.pkl"))  # the jobs went through submitit's files


class InterruptedLauncher(Launcher):
    """Takes runs, leaves a partial folder for each, then the user presses Ctrl-C."""

    capacity = 2

    def __init__(self):
        self.submitted, self.cancelled = [], False

    def submit(self, tasks):
        for task in tasks:
            task.run_dir.mkdir(parents=True)
            (task.run_dir / "partial.ckpt").write_text("x")
        self.submitted += tasks

    def wait(self, timeout_s) -> list[Completion]:
        raise KeyboardInterrupt

    def cancel(self):
        self.cancelled = True


def test_ctrl_c_cancels_marks_the_runs_in_flight_interrupted_and_removes_their_folders(tmp_path, monkeypatch):
    launcher = InterruptedLauncher()
    monkeypatch.setattr("mmbench.runner.make_launcher", lambda options, folder: launcher)
    runner = Runner(SweepOptions(datasets=("mosi-synth",), methods=("mean", "fusion"), seeds=(1111, 1112),
                                 results_dir=tmp_path, jobs=2))
    runner._bundles["mosi-synth"] = tiny_bundle()
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    assert launcher.cancelled and len(launcher.submitted) == 2  # capacity 2: the other 2 runs were never claimed
    runs = ResultStore(tmp_path).runs()
    assert len(runs) == 2 and set(runs["status"]) == {"interrupted"} and set(runs["artifacts_dir"]) == {""}
    assert not any(task.run_dir.exists() for task in launcher.submitted)
    assert not ResultStore(tmp_path)._connect().execute("SELECT * FROM claims").fetchall()  # free to run again


def test_the_launch_flags_reach_the_sweep_options(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(Runner, "run", lambda self: seen.setdefault("options", self.options) and SweepSummary())
    code = main(["run", "--dataset", "mosi-synth", "--method", "mean", "--results", str(tmp_path), "--no-leaderboard",
                 "--jobs", "3", "--launcher", "slurm", "--retries", "2", "--gpus-per-run", "0.5",
                 "--slurm-partition", "gpu", "--slurm-time", "90"])
    options = seen["options"]
    assert code == 0 and (options.jobs, options.launcher, options.retries, options.gpus_per_run) == (3, "slurm", 2, 0.5)
    assert (options.slurm_partition, options.slurm_time, options.ray_address) == ("gpu", 90, None)


@pytest.mark.parametrize("argv, message", [(["--jobs", "0"], "--jobs 0"), (["--retries", "-1"], "--retries -1"),
                                           (["--ray-address", "auto"], "--launcher ray"),
                                           (["--launcher", "ray", "--slurm-time", "60"], "--launcher slurm")])
def test_launch_options_that_cannot_work_are_refused_in_one_line_before_anything_runs(tmp_path, capsys, argv, message):
    code = main(["run", "--dataset", "mosi-synth", "--method", "mean", "--results", str(tmp_path),
                 "--data-dir", str(tmp_path / "data"), *argv])
    error = capsys.readouterr().err.strip()
    assert code == 1 and message in error and len(error.splitlines()) == 1
    assert ResultStore(tmp_path).runs().empty and not (tmp_path / "data").exists()  # nothing loaded or stored
