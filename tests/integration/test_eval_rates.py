"""--eval-rates: one trained model tested at every listed condition, each result keeping where it trained."""
import pytest

from mmbench.metrics.cost import COST_METRICS
from mmbench.reports.aggregate import aggregate
from mmbench.results import ResultStore
from mmbench.sweep import SweepOptions
from tests.integration.test_runner import runner_on_tiny_data

EVAL = ("0.0", "0.3", "0.5", "0.7")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval-rates")
    runner_on_tiny_data(folder, ["fusion"], seeds=(1111,), protocols=("random",), rates=("0.3", "0.5"),
                        eval_rates=EVAL, max_epochs=1).run()
    runner_on_tiny_data(folder, ["fusion"], seeds=(1111,), protocols=("random",), rates=("0.3",),
                        max_epochs=1).run()  # the same training without --eval-rates
    return ResultStore(folder)


def test_each_model_is_tested_at_every_listed_rate_and_selected_at_its_own(store):
    table = store.long_table()
    runs = store.runs()
    widened = runs[runs["config"].str.contains("test_conditions")]
    assert sorted(widened["condition"]) == ["0.3", "0.5"]  # two trainings, not eight
    for run in widened.itertuples():
        rows = table[table["run_id"] == run.run_id]
        assert sorted(rows.loc[rows["split"] == "test", "condition"].unique()) == list(EVAL)
        assert set(rows.loc[rows["split"] == "valid", "condition"]) == {run.condition}  # selection never widens
        assert set(rows["train_condition"]) == {run.condition}


def test_the_own_condition_result_equals_the_same_training_without_eval_rates(store):
    table = store.long_table()
    test = table[(table["split"] == "test") & (table["condition"] == "0.3") & (table["train_condition"] == "0.3")
                 & ~table["metric"].isin(COST_METRICS)]
    by_run = test.pivot_table(index="metric", columns="config_hash", values="value")
    assert by_run.shape[1] == 2
    assert by_run.iloc[:, 0].tolist() == by_run.iloc[:, 1].tolist()  # the same model, tested once more


def test_the_leaderboard_keeps_train_and_test_condition_apart(store):
    rows = aggregate(store, metrics=["mae"])
    widened = rows[rows["label"].str.contains(r"\[train ")]
    assert len(widened) == 2 * len(EVAL) and (widened["n_seeds"] == 1).all()
    assert set(zip(widened["train_condition"], widened["condition"])) == {(t, c) for t in ("0.3", "0.5") for c in EVAL}
    assert set(widened["label"]) == {"fusion [train 0.3]", "fusion [train 0.5]"}
    plain = rows[~rows.index.isin(widened.index)]
    assert list(plain["condition"]) == ["0.3"] and list(plain["train_condition"]) == ["0.3"]


def test_eval_rates_are_refused_for_fixed_and_off_grid():
    with pytest.raises(ValueError, match="7 patterns"):
        SweepOptions(datasets=("mosi-synth",), methods=("fusion",), protocols=("fixed",), eval_rates=("0.3",))
    with pytest.raises(ValueError, match="0.35"):
        SweepOptions(datasets=("mosi-synth",), methods=("fusion",), protocols=("random",), eval_rates=("0.35",))


def test_the_matrix_has_a_row_per_training_rate_and_a_column_per_test_rate(store, tmp_path):
    from mmbench.reports.matrix import matrices, render_matrices
    from mmbench.reports.plots import make_figures

    rows = aggregate(store, metrics=["mae"])
    (title, metric, table), = matrices(rows)
    assert metric == "mae" and "train rate x test rate" in title and "SYNTHETIC" in title
    assert list(table.index) == ["0.3", "0.5"] and list(table.columns) == list(EVAL)
    own = rows[(rows["train_condition"] == "0.3") & (rows["condition"] == "0.7") & rows["label"].str.contains("train")]
    assert table.loc["0.3", "0.7"] == f"{own['mean'].iloc[0]:.3f}"  # one seed: no ± part
    assert "| 0.3 |" in render_matrices(rows, "md")
    stems = [p.stem for p in make_figures(rows, tmp_path, log=lambda _: None)]
    assert any(stem.startswith("matrix_mosi-synth_random_same_fusion") for stem in stems)


def test_a_dry_run_lists_what_each_run_will_be_tested_at(tmp_path):
    runner = runner_on_tiny_data(tmp_path, ["fusion"], seeds=(1111,), protocols=("random",), rates=("0.3",),
                                 eval_rates=("0.0", "0.7"))
    (entry,) = runner.dry_run()
    assert entry["condition"] == "0.3" and entry["test_conditions"] == ["0.3", "0.0", "0.7"]
    assert entry["status"] == "new"
