"""Intervals, paired tests and significance marks, on constructed values and stores with a known answer."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mmbench.metrics import METRIC_KEYS, regression_metrics
from mmbench.reports import statistics
from mmbench.reports.layouts import layout_tables
from mmbench.results import ResultStore
from tests.unit.test_layouts import ranked_store, save_run


def test_t_interval_is_the_textbook_one():
    values = [0.70, 0.74, 0.78, 0.73]
    low, high = statistics.t_interval(values)
    half = stats.t.ppf(0.975, 3) * np.std(values, ddof=1) / 2
    assert (low, high) == pytest.approx((np.mean(values) - half, np.mean(values) + half))
    assert statistics.t_interval([0.7]) is None
    assert statistics.t_interval([0.7, 0.7]) == (0.7, 0.7)


def test_paired_t_test_uses_only_the_shared_seeds():
    first = {1: 0.80, 2: 0.82, 3: 0.85, 4: 0.99}
    second = {1: 0.70, 2: 0.75, 3: 0.71}
    expected = stats.ttest_rel([0.80, 0.82, 0.85], [0.70, 0.75, 0.71]).pvalue
    assert statistics.paired_t_pvalue(first, second) == pytest.approx(expected)
    assert statistics.paired_t_pvalue({1: 0.8}, {1: 0.7}) is None  # one shared seed: no test
    assert statistics.paired_t_pvalue(second, dict(second)) == 1.0


def test_bootstrap_pvalue_separates_clear_gaps_from_noise():
    rng = np.random.default_rng(0)
    base = rng.normal(0.7, 0.02, 1000)
    assert statistics.bootstrap_pvalue(base + 0.1, base, True) == pytest.approx(2 / 1001)
    assert statistics.bootstrap_pvalue(base, base + rng.normal(0, 0.01, 1000), True) > 0.5
    assert statistics.bootstrap_pvalue(base, base + 0.1, False) == pytest.approx(2 / 1001)  # lower is better


@pytest.mark.parametrize("family", ["mosi", "sims"])
def test_metric_function_equals_regression_metrics_for_every_key(family):
    rng = np.random.default_rng(1)
    bound = 1.0 if family == "sims" else 3.0
    labels = np.round(rng.uniform(-bound, bound, 200) * 5) / 5  # includes exact zeros and class edges
    preds = (labels + rng.normal(0, 0.4 * bound, 200)).astype(np.float32)
    expected = regression_metrics(preds, labels.astype(np.float32), family)
    for key in METRIC_KEYS[family]:
        value = statistics.metric_function(family, key)(preds, labels.astype(np.float32))
        assert value == pytest.approx(expected[key], abs=1e-12), key


def test_resamples_are_fixed_by_the_seed():
    assert np.array_equal(statistics.resample_indices(50, 20), statistics.resample_indices(50, 20))
    assert not np.array_equal(statistics.resample_indices(50, 20), statistics.resample_indices(50, 20, seed=7))


def test_predictions_are_found_in_the_results_folder_and_averaged_over_seeds(tmp_path):
    store = ResultStore(tmp_path)
    for seed, pred in ((1111, 0.2), (1112, 0.6)):
        frame = pd.DataFrame({"split": ["test", "valid"], "condition": "L", "id": ["x", "x"], "label": 1.0,
                              "pred": [pred, 9.0]})
        save_run(store, f"r{seed}", "ae", seed, {("L", "acc2_non0"): 1.0}, predictions=frame)
    source = statistics.Predictions(tmp_path)
    runs = {1111: ("r1111", "/moved/elsewhere"), 1112: ("r1112", "")}
    averaged = source.averaged(runs, (1111, 1112), ("L",))
    assert averaged["pred"].tolist() == pytest.approx([0.4])  # valid rows never enter
    assert source.averaged({1111: ("missing", "")}, (1111,), ("L",)) is None


def candidate(label, values):
    return statistics.Candidate(label, dict(enumerate(values)))


def test_seed_t_test_decides_without_predictions():
    column = [candidate("good", [0.90, 0.91, 0.92]), candidate("twin_a", [0.70, 0.72, 0.71]),
              candidate("twin_b", [0.71, 0.71, 0.71]), candidate("floor", [0.50, 0.50, 0.50])]
    marks = statistics.mark_column(column, "acc2_non0", True, statistics.Bootstrap("mosi"))
    assert marks.marks == {"good": "best"} and marks.tests == {statistics.T_TEST}
    assert marks.against_best["floor"].test == statistics.T_TEST
    assert statistics.mark_column(column, "train_s", None, statistics.Bootstrap("mosi")).marks == {}


def test_one_clearly_better_method_is_marked_and_two_indistinguishable_ones_are_not(tmp_path):
    (table,) = layout_tables(ranked_store(tmp_path, twins=True), "patterns", metrics=["acc2_non0"],
                             significance=True)
    marks = table.marks["L ACC2 (Non0)"]
    assert marks["strong"] == "best"
    assert marks["twin_a"] == "" and marks["twin_b"] == ""  # 75 % both: not marked as different
    assert "paired bootstrap over test samples" in table.caption and "alpha = 0.05" in table.caption
    cells = {r["label"]: r for r in table.records if r["condition"] == "L"}
    assert cells["twin_b"]["p_vs_best_bootstrap"] < 0.05 and cells["twin_b"]["test_vs_best"] == statistics.BOOTSTRAP
    assert cells["strong"]["mark"] == "best" and cells["strong"]["p_vs_best_bootstrap"] is None


def test_the_second_best_is_marked_when_it_differs_from_the_third(tmp_path):
    (table,) = layout_tables(ranked_store(tmp_path, twins=False), "patterns", metrics=["acc2_non0"],
                             significance=True)
    assert table.marks["L ACC2 (Non0)"].to_dict() == {"mean": "", "fusion": "", "strong": "best",
                                                       "twin_a": "second", "twin_b": ""}


def test_no_marks_without_significance(tmp_path):
    (table,) = layout_tables(ranked_store(tmp_path, twins=False), "patterns", metrics=["acc2_non0"])
    assert set(table.marks.to_numpy().ravel()) == {""}
    assert "--significance" in table.caption
