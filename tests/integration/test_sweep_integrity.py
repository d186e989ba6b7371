"""What a sweep stores is what it says: versions, repeats, claims, dry runs, budgets (issue items 1, 8-11)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mmbench.cli import main
from mmbench.method import FitSettings, MMBenchMethod
from mmbench.sweep import SweepOptions
from mmbench.reference import Fusion
from mmbench.registry import method_names, register_method
from mmbench.reports.aggregate import aggregate
from mmbench.results import ResultStore
from mmbench.runner import Runner
from tests.helpers import tiny_bundle


def tiny_runner(results: Path, methods=("fusion",), **kwargs) -> Runner:
    options = SweepOptions(datasets=("mosi-synth",), methods=tuple(methods), results_dir=results,
                           max_epochs=kwargs.pop("max_epochs", 1), **kwargs)
    runner = Runner(options)
    runner._bundles["mosi-synth"] = tiny_bundle()
    return runner


def test_dry_run_lists_the_runs_with_their_config_and_status_and_trains_nothing(tmp_path):
    runner = tiny_runner(tmp_path, ("fusion", "mean"), seeds=(1111, 1112))
    entries = runner.dry_run()
    assert len(entries) == 4 and {e["status"] for e in entries} == {"new"}
    fusion = next(e for e in entries if e["method"] == "fusion")
    assert {"dataset", "method", "protocol", "condition", "seed", "train_setting", "config", "status"} <= set(fusion)
    assert fusion["config"]["hidden_dim"] == 64 and fusion["budget"]["max_epochs"] == 1
    assert ResultStore(tmp_path).runs().empty and not (tmp_path / "masks").exists()
    runner.run()
    assert {e["status"] for e in tiny_runner(tmp_path, ("fusion", "mean"), seeds=(1111, 1112)).dry_run()} == {"finished"}


def test_dry_run_from_the_command_line_prints_json(tmp_path, capsys):
    code = main(["run", "--dataset", "mosi-synth", "--method", "omg-agent-k5,fusion", "--seeds", "1111",
                 "--set", "omg-agent.batch_size=128", "--results", str(tmp_path / "runs"),
                 "--data-dir", str(tmp_path / "data"), "--dry-run"])
    assert code == 0
    entries = json.loads(capsys.readouterr().out)
    k5 = next(e for e in entries if e["method"] == "omg-agent-k5")
    assert k5["config"]["batch_size"] == 128 and k5["config"]["top_k"] == 5 and k5["status"] == "new"
    assert not (tmp_path / "runs" / "runs").exists()


def test_a_run_of_an_older_method_version_is_rerun_and_left_out_of_tables(tmp_path, monkeypatch):
    tiny_runner(tmp_path, seeds=(1111,)).run()
    monkeypatch.setattr(Fusion, "method_version", "99")
    runner = tiny_runner(tmp_path, seeds=(1111,))
    assert [e["status"] for e in runner.dry_run()] == ["stale"]
    summary = runner.run()
    assert len(summary.finished) == 1 and not summary.skipped
    runs = ResultStore(tmp_path).runs()
    assert len(runs) == 2 and set(runs["status"]) == {"finished"}
    rows = aggregate(ResultStore(tmp_path), metrics=["mae"])
    assert set(rows["n_seeds"]) == {1} and set(rows["n_stale"]) == {1}
    newest = runs.sort_values("ended_at").iloc[-1]["run_id"]
    values = ResultStore(tmp_path).long_table().query("run_id == @newest and split == 'test' and metric == 'mae'")
    assert sorted(rows["mean"]) == pytest.approx(sorted(values["value"]))


def test_a_claim_held_by_a_live_process_is_respected_and_a_dead_ones_is_taken_over(tmp_path):
    store = ResultStore(tmp_path)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        import socket
        import sqlite3
        import time

        with sqlite3.connect(store.path) as conn:
            conn.executemany("INSERT INTO claims VALUES (?, ?, ?, ?, ?)",
                             [("live", "r1", socket.gethostname(), sleeper.pid, time.time()),
                              ("dead", "r2", socket.gethostname(), dead.pid, time.time()),
                              ("elsewhere-old", "r3", "another-host", 1, time.time() - 3600)])
        assert store.claim("live", "x") == "held"
        assert store.claim("dead", "x") == "claimed"
        assert store.claim("elsewhere-old", "x") == "claimed"
    finally:
        sleeper.kill()


def test_a_run_is_recorded_finished_before_its_claim_is_released(tmp_path, monkeypatch):
    # in the gap between the two, a second sweep would find neither a claim nor a finished run and train it again
    finished_at_release = []
    release = ResultStore.release

    def checking_release(store, config_hash):
        finished_at_release.append(store.is_finished(config_hash))
        release(store, config_hash)

    monkeypatch.setattr(ResultStore, "release", checking_release)
    summary = tiny_runner(tmp_path, ("fusion", "mean"), seeds=(1111,)).run()
    assert len(summary.finished) == 2 and finished_at_release == [True, True]


def test_the_same_sweep_started_twice_at_once_trains_each_run_once(tmp_path):
    results = tmp_path / "runs"
    command = [sys.executable, "-m", "mmbench.cli", "run", "--dataset", "mosi-synth", "--method", "mean,fusion",
               "--protocol", "random", "--rates", "0.0,0.4", "--seeds", "1111,1112", "--limit", "48",
               "--max-epochs", "2", "--results", str(results), "--no-leaderboard",
               "--data-dir", str(tmp_path / "data")]
    env = {**os.environ, "MMBENCH_THREADS": "1"}
    subprocess.run([*command, "--dry-run"], env=env, capture_output=True, timeout=300, check=True)  # data cached
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    outputs = [p.communicate(timeout=600)[1] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    runs = ResultStore(results).runs()
    finished = runs[runs["status"] == "finished"]
    assert len(finished) == 8 and finished["config_hash"].is_unique  # 2 methods x 2 rates x 2 seeds, each once
    assert set(aggregate(ResultStore(results))["n_seeds"]) == {2}


def test_a_killed_runs_row_is_marked_interrupted_and_its_folder_removed(tmp_path):
    store = ResultStore(tmp_path)
    runner = tiny_runner(tmp_path, seeds=(1111,))
    resolved = runner.resolve()[0]
    from mmbench.results.keys import key_hash

    digest = key_hash(resolved.key())
    record = runner._record(resolved, resolved.key(), digest, "killed-run", "2026-01-01T00:00:00")
    store.save(record)  # what a run writes before it trains; then the process is killed
    Path(record.artifacts_dir).mkdir(parents=True)
    (Path(record.artifacts_dir) / "partial.ckpt").write_text("x")
    assert store.reap_abandoned() == ["killed-run"]
    assert not Path(record.artifacts_dir).exists()
    assert store.runs().set_index("run_id").loc["killed-run", "status"] == "interrupted"
    summary = runner.run()  # the run itself is still to do
    assert len(summary.finished) == 1


@register_method("plateau-test-method")
class Plateau(MMBenchMethod):
    """Validation MAE never improves: the LR schedule must fire before early stopping ends the run."""

    fit_defaults = FitSettings(lr=0.01)

    def __init__(self, data, **fit):
        super().__init__(data, **fit)
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, batch):
        return torch.zeros(len(batch["label"])) + 0.0 * self.weight

    def training_loss(self, batch):
        return ((self.weight - 1.0) ** 2).sum()


def test_a_plateau_halves_the_learning_rate_before_the_run_stops(tmp_path):
    # the benchmark's default budget (early stopping 10) and LR patience (5): the LR must halve first
    runner = tiny_runner(tmp_path, ("plateau-test-method",), seeds=(1111,), max_epochs=25)
    assert runner.run().finished
    log = next((tmp_path / "runs").glob("*/logs/version_0/metrics.csv"))
    curve = pd.read_csv(log)
    lrs = curve.filter(like="lr-").to_numpy().ravel()
    lrs = lrs[~np.isnan(lrs)]
    assert lrs.max() == pytest.approx(0.01) and lrs.min() == pytest.approx(0.005)  # halved once
    assert curve["epoch"].max() < 24  # and early stopping ended it


@pytest.mark.parametrize("method", [m for m in method_names(include_variants=False, include_runtime=False)])
def test_every_methods_default_budget_lets_its_lr_schedule_fire_before_stopping(method):
    from mmbench.execute import resolved_method_config
    from mmbench.sweep import RunSpec

    options = SweepOptions(datasets=("mosi-synth",), methods=(method,))
    _, config, budget = resolved_method_config(RunSpec("mosi-synth", method, "fixed", "all", 1111, "complete",
                                                       "valid", options))
    lr_patience = config.get("lr_patience", FitSettings().lr_patience)
    assert budget["early_stop_patience"] > lr_patience, (method, budget, lr_patience)


def test_incomplete_setting_statistics_never_see_a_removed_value(tmp_path):
    bundle = tiny_bundle()
    train = bundle.splits["train"]
    from mmbench.masks import run_masks

    train_mask, _, _ = run_masks(tmp_path, "mosi-synth", bundle.splits, "random", "0.5", 1111, "incomplete")
    removed = ~train_mask.available[train_mask.rows(train.ids)][:, 1]
    assert removed.any()
    vision = np.array(train.features["V"], dtype=np.float32)
    vision[removed] = 1e6  # a sentinel in every removed vision feature
    train.features["V"] = vision
    from mmbench.data.datamodule import DataInfo

    info = DataInfo.from_bundle(bundle)
    assert info.feature_stats["V"][0].max() > 1e5  # the complete statistics see the sentinel
    run_info = info.for_run(train, "incomplete", train_mask)
    assert run_info.feature_stats["V"][0].max() < 1e3 and run_info.train_setting == "incomplete"
    assert info.for_run(train, "same", train_mask).feature_stats is info.feature_stats
