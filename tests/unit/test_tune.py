"""``mmbench tune``: search spaces, the validation-only objective, resumable studies, tuned configurations."""
import json
import math

import optuna
import pytest

from mmbench import tune as tune_module
from mmbench.cli import main
from mmbench.config import configs_dir, load_method_config, search_dimensions
from mmbench.constants import PATTERNS
from mmbench.registry import get_method_class
from mmbench.reports.aggregate import aggregate
from mmbench.results import MetricRow, ResultStore, RunRecord
from mmbench.results.keys import config_id, key_hash
from mmbench.sweep import SweepOptions, expand
from mmbench.tune import TrialFailed, TuneOptions, stored_score, tune, validation_mae
from tests.helpers import tiny_bundle

CONFIG_FILES = sorted((configs_dir() / "methods").glob("*.yaml"))


@pytest.fixture(autouse=True)
def tiny_data(monkeypatch):
    """Every Runner the tuner starts reads the small in-memory bundle (this file tests the tuner)."""
    monkeypatch.setattr("mmbench.runner.load_dataset", lambda *args, **kwargs: tiny_bundle())


def options(tmp_path, method="fusion", trials=2, **changes) -> TuneOptions:
    return TuneOptions(dataset="mosi-synth", method=method, trials=trials, max_epochs=1, seeds=(1111,),
                       results_dir=tmp_path / "runs", **changes)


def fake_trials(calls: list):
    """A trial runner that trains nothing: the score is a known function of the trial's values."""
    def run(sweep: SweepOptions) -> float:
        calls.append(sweep)
        values = dict(o.split("=", 1) for o in sweep.overrides)
        return float(values["fusion.lr"]) if "fusion.lr" in values else 1.0
    return run


@pytest.mark.parametrize("path", CONFIG_FILES, ids=[p.stem for p in CONFIG_FILES])
def test_every_shipped_space_validates_and_stays_out_of_the_constructor(path):
    from mmbench.config import load_search_space

    dimensions = search_dimensions(get_method_class(path.stem), load_search_space(path.stem), method=path.stem)
    assert "search_space" not in load_method_config(path.stem)
    # mean has nothing to tune; every other method searches 2-5 of its hyperparameters
    assert len(dimensions) == 0 if path.stem == "mean" else 2 <= len(dimensions) <= 5


def test_an_untuned_run_key_has_no_tuning_entry():
    spec = expand(SweepOptions(datasets=("mosi-synth",), methods=("fusion",), seeds=(1111,)))[0]
    assert "tuning" not in spec.key()
    tuned = expand(SweepOptions(datasets=("mosi-synth",), methods=("fusion",), seeds=(1111,),
                                tuning={"trials": 2, "max_epochs": 1, "study": "s", "values": {"lr": 0.002}}))[0]
    assert tuned.key()["tuning"]["trials"] == 2


@pytest.mark.parametrize("space, problem", [
    ({"hiden_dim": {"choices": [32, 64]}}, "hiden_dim: unknown constructor argument of Fusion (did you mean 'hidden_dim'?)"),
    ({"lr": {"low": 3.0e-3, "high": 1.0e-4, "log": True}}, "lr: low 0.003 >= high 0.0001"),
    ({"batch_size": {"choices": []}}, "batch_size: choices must be a non-empty list"),
    ({"max_epochs": {"low": 1, "high": 9}}, "max_epochs: the training budget is the same for every tuned method"),
    ({"dropout": {"low": 0.0, "high": 2.0}}, "dropout=2.0: must lie in [0, 1]"),
    ({"hidden_dim": {"low": 16.5, "high": 64}}, "hidden_dim: hidden_dim takes an integer"),
])
def test_a_bad_space_is_refused_naming_the_method_and_key(tmp_path, monkeypatch, space, problem):
    monkeypatch.setattr(tune_module, "load_search_space", lambda name: space)
    with pytest.raises(ValueError) as error:
        tune(options(tmp_path), trial_runner=fake_trials([]))
    message = str(error.value)
    assert message.startswith("fusion search_space: ") and problem in message and "\n" not in message
    assert not (tmp_path / "runs").exists()  # refused before any study or run


def test_a_searched_key_cannot_also_be_set_and_a_method_without_space_is_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match="fusion.lr is searched by tune"):
        tune(options(tmp_path, overrides=("fusion.lr=0.01",)), trial_runner=fake_trials([]))
    assert main(["tune", "--dataset", "mosi-synth", "--method", "mean", "--trials", "2",
                 "--results", str(tmp_path)]) == 1
    assert "mean declares no search_space" in capsys.readouterr().err


def _rows(valid: dict, test: dict) -> list[MetricRow]:
    return ([MetricRow("valid", c, "mae", v) for c, v in valid.items()]
            + [MetricRow("test", c, "mae", v) for c, v in test.items()]
            + [MetricRow("valid", c, "acc7", 0.9) for c in valid])


def test_the_objective_reads_the_validation_split_only(tmp_path):
    valid = {p: 0.5 + i / 10 for i, p in enumerate(PATTERNS)}  # mean 0.8
    poisoned_test = {p: math.nan for p in PATTERNS}  # any read of a test value makes the score NaN
    assert validation_mae(_rows(valid, poisoned_test)) == pytest.approx(0.8)
    with pytest.raises(TrialFailed, match="no stored valid mae"):  # no fallback to the test split
        validation_mae(_rows({}, {p: 0.1 for p in PATTERNS}))
    # through the store, as a trial reads its run back
    key = {"method": "fusion", "seed": 1111}
    store = ResultStore(tmp_path)
    store.save(RunRecord(run_id="r1", config_hash=key_hash(key), dataset="mosi-synth", data_sha256="", method="fusion",
                         protocol="fixed", condition="all", train_setting="complete", selection="valid", seed=1111,
                         mask_sha256="", status="finished", started_at="2026-01-01T00:00:00", synthetic=True,
                         package_version="0", git_commit=None, config=key, config_id=config_id(key),
                         metrics=_rows(valid, {p: 9.0 for p in PATTERNS})))
    assert stored_score(store, key_hash(key)) == pytest.approx(0.8)


def test_the_study_is_resumable_up_to_n_trials_in_total(tmp_path):
    calls = []
    first = tune(options(tmp_path, trials=2), trial_runner=fake_trials(calls), run_best=False)
    assert len(calls) == 2 and first.n_trials == 2
    assert "fusion.lr=0.001" in calls[0].overrides  # the first trial is the YAML's default
    assert all(c.max_epochs == 1 and c.protocols == ("fixed",) and c.seeds == (1111,) for c in calls)
    again = tune(options(tmp_path, trials=3), trial_runner=fake_trials(calls), run_best=False)
    assert len(calls) == 3 and again.n_trials == 3 and again.study == first.study  # one new trial
    study = optuna.load_study(study_name=first.study, storage=first.storage)
    assert len(study.trials) == 3
    assert again.best_score == min(t.value for t in study.trials) == again.values["lr"]
    tune(options(tmp_path, trials=3), trial_runner=fake_trials(calls), run_best=False)
    assert len(calls) == 3  # complete: nothing more to try


def test_a_failed_trial_uses_up_its_share_of_the_budget(tmp_path):
    calls = []

    def flaky(sweep):
        calls.append(sweep)
        if len(calls) == 2:
            raise TrialFailed("deliberate")
        return 1.0

    result = tune(options(tmp_path, trials=3), trial_runner=flaky, run_best=False)
    assert len(calls) == 3 and result.n_trials == 3


@pytest.fixture(scope="module")
def tuned_store(tmp_path_factory):
    """A default fusion run, then fusion tuned with real trials and ae tuned on fake ones: one store."""
    from mmbench.runner import Runner

    tmp_path = tmp_path_factory.mktemp("tuned")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("mmbench.runner.load_dataset", lambda *args, **kwargs: tiny_bundle())
        Runner(SweepOptions(datasets=("mosi-synth",), methods=("fusion",), seeds=(1111,), max_epochs=1,
                            results_dir=tmp_path / "runs")).run()
        fusion = tune(options(tmp_path, trials=2))
        ae = tune(options(tmp_path, method="ae", trials=2), trial_runner=lambda sweep: 1.0)
    return ResultStore(tmp_path / "runs", readonly=True), fusion, ae


def test_tuned_rows_are_their_own_configuration_beside_the_default(tuned_store):
    store, fusion, _ = tuned_store
    rows = aggregate(store, metrics=["mae"])
    fusion_rows = rows[(rows["method"] == "fusion") & (rows["condition"] == "LVA")].set_index("label")
    assert len(fusion_rows) == 2 and fusion_rows["n_seeds"].tolist() == [1, 1]  # never averaged together
    tuned_label = next(label for label in fusion_rows.index if label.startswith("fusion [tuned"))
    assert "fusion [default" in " ".join(fusion_rows.index)
    assert fusion_rows.loc[tuned_label, "config_id"] == fusion.config_id
    trial_store = ResultStore(store.results_dir / "tuning", readonly=True)
    trials = trial_store.runs()
    assert len(trials) == 2 and set(trials["method"]) == {"fusion"}  # trials stay out of the main store
    assert fusion.best_score == pytest.approx(min(stored_score(trial_store, h) for h in trials["config_hash"]))


def test_the_same_budget_is_recorded_for_two_methods(tuned_store):
    store, fusion, ae = tuned_store
    runs = store.runs()
    keys = {row.method: json.loads(row.config) for row in runs.itertuples() if "tuning" in row.config}
    assert set(keys) == {"fusion", "ae"}
    for method, result in (("fusion", fusion), ("ae", ae)):
        record = keys[method]["tuning"]
        assert (record["trials"], record["max_epochs"]) == (2, 1) and keys[method]["budget"]["max_epochs"] == 1
        assert record["values"] == result.values and record["study"] == result.study

