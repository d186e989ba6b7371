"""The runner end to end on small data: resume after a kill, failures recorded, same seed same numbers."""
import hashlib
import mmap
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

from mmbench.method import Prediction
from mmbench.metrics.cost import COST_METRICS, PeakMemory, PredictionTimer, parameter_count
from mmbench.sweep import SweepOptions
from mmbench.registry import register_method
from mmbench.results import ResultStore
from mmbench.runner import Runner
from tests.helpers import OneWeightMethod, tiny_bundle


@register_method("exploding-test-method")
class Exploding(OneWeightMethod):
    """Raises in its first training step, to test that the sweep goes on."""

    def training_loss(self, batch):
        raise RuntimeError("boom: deliberate failure")


def runner_on_tiny_data(tmp_path: Path, methods, **kwargs) -> Runner:
    options = SweepOptions(datasets=("mosi-synth",), methods=tuple(methods), results_dir=tmp_path,
                           max_epochs=kwargs.pop("max_epochs", 2), **kwargs)
    runner = Runner(options)
    runner._bundles["mosi-synth"] = tiny_bundle()  # skip generation: this test is about the runner
    return runner


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    runner = runner_on_tiny_data(tmp_path, ["exploding-test-method", "mean"], seeds=(1111,))
    summary = runner.run()
    assert len(summary.failed) == 1 and len(summary.finished) == 1
    runs = ResultStore(tmp_path).runs().set_index("method")
    assert runs.loc["exploding-test-method", "status"] == "failed"
    assert "boom: deliberate failure" in runs.loc["exploding-test-method", "error"]
    assert runs.loc["mean", "status"] == "finished"


def test_fixed_protocol_evaluates_seven_patterns_and_same_seed_same_numbers(tmp_path):
    first = runner_on_tiny_data(tmp_path / "a", ["fusion"], seeds=(1111,))
    first.run()
    second = runner_on_tiny_data(tmp_path / "b", ["fusion"], seeds=(1111,))
    second.run()
    table_a = ResultStore(tmp_path / "a").long_table()
    table_b = ResultStore(tmp_path / "b").long_table()
    test_a = table_a[table_a["split"] == "test"]
    assert sorted(test_a["condition"].unique()) == sorted(["L", "V", "A", "LV", "LA", "VA", "LVA"])
    seeded_a, seeded_b = (t[~t["metric"].isin(COST_METRICS)].reset_index(drop=True) for t in (table_a, table_b))
    pd.testing.assert_series_equal(seeded_a["value"], seeded_b["value"])  # costs are measured, not seeded
    # a finished run is not run again
    assert first.run().skipped and not first.run().finished


def test_every_method_of_a_sweep_reads_the_same_saved_masks(tmp_path):
    runner = runner_on_tiny_data(tmp_path, ["fusion", "mean"], seeds=(1111,), protocols=("random",),
                                 rates=("0.5",))
    runner.run()
    runs = ResultStore(tmp_path).runs()
    assert runs["mask_sha256"].nunique() == 1 and len(runs) == 2
    metrics = ResultStore(tmp_path).long_table()
    assert metrics.groupby("method")["mask_sha256"].agg(lambda s: tuple(sorted(set(s)))).nunique() == 1


def _finished(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return conn.execute("SELECT count(*) FROM runs WHERE status = 'finished'").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def test_killed_sweep_resumes_with_only_the_missing_runs(tmp_path):
    results = tmp_path / "runs"
    command = [sys.executable, "-m", "mmbench.cli", "run", "--dataset", "mosi-synth", "--method", "mean,fusion",
               "--protocol", "random", "--rates", "0.0,0.2,0.4,0.6", "--seeds", "1111,1112", "--limit", "48",
               "--max-epochs", "2", "--results", str(results), "--no-leaderboard",
               "--data-dir", str(tmp_path / "data")]
    env = {**os.environ, "MMBENCH_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while _finished(results / "mmbench.sqlite") < 3 and time.time() < deadline and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = _finished(results / "mmbench.sqlite")
    total = 2 * 4 * 2
    assert 3 <= done_before < total, "the kill should land halfway through the sweep"
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{total - done_before} run(s) finished, {done_before} already done" in rerun.stderr
    assert _finished(results / "mmbench.sqlite") == total


@register_method("zero-recovery-test-method")
class ZeroRecovery(OneWeightMethod):
    """'Recovers' every modality as zeros: its fidelity must equal the zero-imputation reference."""

    def predict(self, batch):
        return Prediction(self(batch), {"V": torch.zeros_like(batch["vision"]),
                                        "A": torch.zeros_like(batch["audio"]).mean(1)})


def test_reconstruction_fidelity_is_scored_by_the_runner_against_the_truth(tmp_path):
    runner = runner_on_tiny_data(tmp_path, ["zero-recovery-test-method"], seeds=(1111,), protocols=("fixed",),
                                 max_epochs=1)
    runner.run()
    table = ResultStore(tmp_path).long_table()
    test = table[(table["split"] == "test")].set_index(["condition", "metric"])["value"]
    assert test[("L", "rec_mse_V")] == pytest.approx(test[("L", "rec_mse_V_zero")])
    assert test[("L", "rec_mse_A")] == pytest.approx(test[("L", "rec_mse_A_zero")])
    assert ("L", "rec_cos_V_mean") in test.index and test[("L", "rec_cos_V")] == 0.0  # zero vector: cosine 0
    assert ("LVA", "rec_mse_V") not in test.index  # nothing missing, nothing to score


@register_method("complete-only-test-method")
class CompleteOnly(Exploding):
    supported_train_settings = ("complete",)


def test_an_unsupported_training_setting_is_refused_before_any_training(tmp_path):
    from mmbench.execute import UnsupportedSettingError

    runner = runner_on_tiny_data(tmp_path, ["mean", "complete-only-test-method"], seeds=(1111,),
                                 protocols=("random",), rates=("0.3",))
    with pytest.raises(UnsupportedSettingError, match="supports: complete"):
        runner.run()
    assert ResultStore(tmp_path).runs().empty  # nothing ran, not even the method that could


def test_test_oracle_selection_is_recorded_as_such(tmp_path):
    runner = runner_on_tiny_data(tmp_path, ["fusion"], seeds=(1111,), selection="test-oracle", max_epochs=1)
    runner.run()
    runs = ResultStore(tmp_path).runs()
    assert list(runs["selection"]) == ["test-oracle"] and list(runs["status"]) == ["finished"]


@pytest.mark.parametrize("variant, writer, file", [("aligned", "write_mmsa_pickle", "MOSI/Processed/aligned_50.pkl"),
                                                    ("mult", "write_mult_pickle", "mosi_data.pkl")])
def test_a_users_feature_pickle_runs_under_the_registered_name(tmp_path, variant, writer, file, capsys):
    from mmbench.cli import main
    from mmbench.data import writers

    path = tmp_path / "data" / file
    path.parent.mkdir(parents=True)
    getattr(writers, writer)(tiny_bundle(), path)
    with pytest.warns(UserWarning):  # a tiny file disagrees with MOSI's registry entry, loudly
        code = main(["run", "--dataset", "mosi", "--data-variant", variant, "--method", "fusion,mean",
                     "--max-epochs", "1", "--seeds", "1111", "--data-dir", str(tmp_path / "data"),
                     "--results", str(tmp_path / "runs"), "--no-leaderboard"])
    assert code == 0
    runs = ResultStore(tmp_path / "runs").runs()
    assert set(runs["status"]) == {"finished"} and not runs["synthetic"].any()
    assert runs["data_sha256"].iloc[0] == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("logger, pattern", [("csv", "metrics.csv"), ("tensorboard", "events.out.tfevents.*")])
def test_training_curves_go_to_the_chosen_logger_beside_the_run(tmp_path, logger, pattern):
    runner = runner_on_tiny_data(tmp_path, ["fusion"], seeds=(1111,), max_epochs=2, logger=logger)
    runner.run()
    run_dir = Path(ResultStore(tmp_path).runs()["artifacts_dir"].iloc[0])
    assert list((run_dir / "logs").rglob(pattern))
    assert (run_dir / "predictions.csv.gz").is_file() and (run_dir / "config.json").is_file()
    predictions = pd.read_csv(run_dir / "predictions.csv.gz")
    assert set(predictions["split"]) == {"valid", "test"} and predictions["condition"].nunique() == 7


def test_frame_protocol_on_one_step_data_is_refused_before_training(tmp_path):
    from mmbench.execute import UnsupportedSettingError
    from mmbench.data.types import DatasetBundle

    runner = runner_on_tiny_data(tmp_path, ["mean"], seeds=(1111,), protocols=("fixed", "frame"), rates=("0.3",))
    bundle = runner._bundles["mosi-synth"]
    one_step = {name: split.subset(np.arange(len(split))) for name, split in bundle.splits.items()}
    for split in one_step.values():
        split.features = {m: f[:, :1] for m, f in split.features.items()}
        split.lengths = {m: np.ones_like(v) for m, v in split.lengths.items()}
    runner._bundles["mosi-synth"] = DatasetBundle("mosi-synth", one_step, "synthetic", "0" * 64, "", (-3.0, 3.0))
    with pytest.raises(UnsupportedSettingError, match="one-step modalities"):
        runner.run()
    assert ResultStore(tmp_path).runs().empty


def test_every_run_records_its_cost_beside_each_tested_condition(tmp_path):
    runner_on_tiny_data(tmp_path, ["fusion", "mean"], seeds=(1111,), max_epochs=1).run()
    table = ResultStore(tmp_path).long_table()
    test = table[table["split"] == "test"]
    costs = test[test["metric"].isin(COST_METRICS)].pivot_table(index=["method", "condition"], columns="metric",
                                                                 values="value")
    assert len(costs) == 2 * 7 and set(costs.columns) == set(COST_METRICS)  # every test condition has all four
    fusion, mean = costs.loc["fusion"], costs.loc["mean"]
    assert (fusion["train_s"] > 0).all() and fusion["train_s"].nunique() == 1  # one fit per run
    assert (mean["train_s"] == 0).all() and (mean["params"] == 0).all()  # nothing to train
    assert (fusion["infer_ms"] > 0).all() and (fusion["peak_mem_mb"] > 0).all()
    assert fusion["params"].iloc[0] > 1000
    assert set(ResultStore(tmp_path).runs()["device"]) == {"cpu; faiss-cpu"}  # which index a retriever used
    assert not table[table["split"] == "valid"]["metric"].isin(COST_METRICS).any()
    # fusion declares its per-modality encoders: it gets a learning index; mean trains nothing, none
    assert set(test.loc[test["metric"] == "mli", "method"]) == {"fusion"}
    assert 0.0 <= test.loc[test["metric"] == "mli", "value"].iloc[0] <= 1.0


def test_a_run_predicts_every_split_and_condition_in_one_call(tmp_path, monkeypatch):
    # one call: the model moves to its device, and a method rebuilds its indexes, once per run
    calls = []
    predict = L.Trainer.predict

    def counting_predict(trainer, model, dataloaders=None, **kwargs):
        calls.append(len(dataloaders))
        return predict(trainer, model, dataloaders=dataloaders, **kwargs)

    monkeypatch.setattr(L.Trainer, "predict", counting_predict)
    runner_on_tiny_data(tmp_path, ["fusion"], seeds=(1111,), max_epochs=1).run()
    table = ResultStore(tmp_path).long_table()
    passes = table[["split", "condition"]].drop_duplicates()
    assert calls == [len(passes)] and len(passes) == 2 * 7  # valid and test, the 7 patterns each


def test_the_prediction_timer_charges_each_dataloader_its_own_steps():
    class Sleepy(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def predict_step(self, batch, batch_idx, dataloader_idx=0):
            time.sleep(0.05 * dataloader_idx)  # the second loader's steps cost 50 ms each
            return batch

    loaders = [torch.utils.data.DataLoader(torch.zeros(4, 1), batch_size=1) for _ in range(2)]
    timer = PredictionTimer(2)
    L.Trainer(accelerator="cpu", logger=False, callbacks=[timer], enable_progress_bar=False,
              enable_model_summary=False).predict(Sleepy(), dataloaders=loaders)
    assert timer.seconds[1] >= 4 * 0.05 and timer.seconds[0] < timer.seconds[1] / 4


def test_parameter_count_counts_shared_and_frozen_parameters_once():
    layer = torch.nn.Linear(3, 2)  # 8 parameters
    frozen = torch.nn.Linear(2, 1).requires_grad_(False)  # 3 parameters
    assert parameter_count(torch.nn.Sequential(layer, layer, frozen)) == 11


def _touched_pages(mib: int) -> mmap.mmap:
    """``mib`` MiB of fresh resident memory: an anonymous mapping, every page written. (An allocation
    through malloc may be served from memory the process already holds, which moves no high-water mark;
    after the earlier tests of a full run a 64 MiB ``np.ones`` did exactly that.)"""
    pages = mmap.mmap(-1, mib * 2**20)
    np.frombuffer(pages, dtype=np.uint8)[:: mmap.PAGESIZE] = 1
    return pages


def test_peak_memory_forgets_an_earlier_peak_and_sees_an_allocation_made_after_its_reset():
    peak = PeakMemory("cpu")
    earlier = _touched_pages(256)  # a peak before the run
    high = peak.read_mb()
    earlier.close()
    peak.reset()
    before = peak.read_mb()
    assert before <= high - 200
    block = _touched_pages(64)
    assert peak.read_mb() >= before + 60
    block.close()
