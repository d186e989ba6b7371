import json

import pytest

from mmbench.reports.aggregate import aggregate
from mmbench.reports.leaderboard import format_cell, render
from mmbench.results import MetricRow, ResultStore, RunRecord
from mmbench.results.keys import config_id, key_hash


def record(run_id, method, seed, values, *, status="finished", selection="valid", dataset="mosi-synth",
           protocol="fixed", condition="all", ended="2026-01-01T00:00:00", **key_changes):
    """A stored run whose key is built like the runner's (mmbench.results.keys)."""
    metrics = [MetricRow("test", c, metric, value) for (c, metric), value in values.items()]
    metrics.append(MetricRow("valid", "L", "acc2_non0", 0.0))  # validation rows never enter tables
    key = {"dataset": dataset, "method": method, "protocol": protocol, "condition": condition, "seed": seed,
           "train_setting": "complete", "selection": selection, "profile": "paper", "limit": None,
           "budget": {"max_epochs": 30, "early_stop_patience": 10}, "method_config": {"lr": 0.001},
           "data_sha256": "d" * 64, "mmbench_version": "0.2.0", "method_version": "1", **key_changes}
    return RunRecord(run_id=run_id, config_hash=key_hash(key), dataset=dataset, data_sha256="", method=method,
                     protocol=protocol, condition=condition, train_setting="complete", selection=selection,
                     seed=seed, mask_sha256="", status=status, started_at=ended, ended_at=ended,
                     synthetic=dataset.endswith("synth"), package_version="0", git_commit=None, config=key,
                     config_id=config_id(key), n_test=300, metrics=metrics)


@pytest.fixture()
def store(tmp_path):
    store = ResultStore(tmp_path)
    store.save(record("a1", "fusion", 1111, {("L", "acc2_non0"): 0.80, ("L", "mae"): 1.0}))
    store.save(record("a2", "fusion", 1112, {("L", "acc2_non0"): 0.90, ("L", "mae"): 1.2}))
    store.save(record("a3", "fusion", 1113, {}, status="failed"))
    store.save(record("b1", "mean", 1111, {("L", "acc2_non0"): 0.5, ("L", "mae"): 1.5}))
    store.save(record("o1", "fusion", 1111, {("L", "acc2_non0"): 0.99}, selection="test-oracle"))
    return store


def test_mean_std_over_seeds_with_failed_runs_only_counted(store):
    rows = aggregate(store).set_index(["method", "metric"])
    fusion = rows.loc[("fusion", "acc2_non0")]
    assert fusion["mean"] == pytest.approx(0.85)
    assert fusion["std"] == pytest.approx(0.0707107, rel=1e-4)  # ddof = 1
    assert fusion["n_seeds"] == 2 and fusion["n_failed"] == 1
    assert rows.loc[("mean", "acc2_non0")]["std"] is None  # one seed: no std


def test_oracle_rows_appear_only_when_asked(store):
    assert "test-oracle" not in set(aggregate(store)["selection"])
    with_oracle = aggregate(store, include_oracle=True)
    assert "test-oracle" in set(with_oracle["selection"])
    text = render(with_oracle, "md")
    assert "TEST-ORACLE" in text


def test_markdown_table_is_percent_and_says_synthetic_and_non0(store):
    text = render(aggregate(store), "md", ["acc2_non0", "mae"])
    assert "SYNTHETIC" in text and "test N = 300" in text
    assert "L ACC2 (Non0)" in text
    assert "85.0 ± 7.1" in text  # percent, one decimal
    assert "1.100 ± 0.141" in text  # MAE plain


def test_json_rows_have_the_pinned_keys(store):
    rows = json.loads(render(aggregate(store), "json"))
    keys = {"dataset", "method", "protocol", "condition", "train_setting", "selection", "metric", "mean", "std",
            "n_seeds", "n_failed", "synthetic", "config_id", "train_condition"}
    assert rows and all(keys <= set(row) for row in rows)
    fusion = next(r for r in rows if r["method"] == "fusion" and r["metric"] == "acc2_non0")
    assert fusion["mean"] == pytest.approx(0.85) and fusion["synthetic"] is True and fusion["n_failed"] == 1


def test_format_cell():
    assert format_cell("acc7", 0.4567, None) == "45.7"
    assert format_cell("corr", 0.4567, 0.01) == "0.457 ± 0.010"


def test_mmsa_style_pairs_has0_and_non0_in_one_cell(tmp_path):
    store = ResultStore(tmp_path)
    store.save(record("m1", "fusion", 1111, {("L", "acc2_has0"): 0.801, ("L", "acc2_non0"): 0.823,
                                             ("L", "acc7"): 0.3}))
    text = render(aggregate(store), "md", style="mmsa")
    assert "L ACC2 (Has0/Non0)" in text and "80.1/82.3" in text and "L ACC7" in text


# -- item 1: a cell averages one configuration's seeds only ---------------------------------------
def test_quick_and_full_runs_of_one_seed_are_separate_rows_never_one_cell(tmp_path):
    store = ResultStore(tmp_path)
    store.save(record("q", "fusion", 1111, {("L", "mae"): 0.60}, profile="quick",
                      budget={"max_epochs": 3, "early_stop_patience": 10}))
    store.save(record("f", "fusion", 1111, {("L", "mae"): 0.80}))
    store.save(record("e", "fusion", 1111, {("L", "mae"): 0.70}, budget={"max_epochs": 5, "early_stop_patience": 10}))
    rows = aggregate(store)
    assert sorted(rows["mean"]) == pytest.approx([0.60, 0.70, 0.80])  # never averaged into 0.70 over 2 seeds
    assert set(rows["n_seeds"]) == {1} and rows["config_id"].nunique() == 3
    labels = set(rows["label"])
    assert any(label.startswith("fusion [") and "quick" in label for label in labels)
    assert any("max_epochs=5" in label for label in labels)
    text = render(rows, "md", ["mae"])
    assert text.count("| fusion [") == 3


def test_two_finished_runs_of_one_key_and_seed_count_once_the_newest(tmp_path):
    store = ResultStore(tmp_path)
    store.save(record("old", "fusion", 1111, {("L", "mae"): 0.9}, ended="2026-01-01T00:00:00"))
    store.save(record("new", "fusion", 1111, {("L", "mae"): 0.5}, ended="2026-01-02T00:00:00"))
    store.save(record("s2", "fusion", 1112, {("L", "mae"): 0.7}))
    row = aggregate(store, metrics=["mae"]).iloc[0]
    assert row["n_seeds"] == 2 and row["mean"] == pytest.approx(0.6)
    assert row["n_superseded"] == 1
    assert "only the newest counted" in render(aggregate(store), "md", ["mae"])


def test_a_failure_replaced_by_a_later_finished_run_is_not_counted(tmp_path):
    store = ResultStore(tmp_path)
    store.save(record("bad", "fusion", 1111, {}, status="failed", ended="2026-01-01T00:00:00"))
    store.save(record("good", "fusion", 1111, {("L", "mae"): 0.5}, ended="2026-01-02T00:00:00"))
    assert aggregate(store, metrics=["mae"]).iloc[0]["n_failed"] == 0


def test_a_failed_rate_counts_on_its_own_condition_only(tmp_path):
    store = ResultStore(tmp_path)
    for rate in ("0.1", "0.3"):
        store.save(record(f"ok{rate}", "fusion", 1111, {(rate, "mae"): 0.5}, protocol="random", condition=rate))
    store.save(record("bad", "fusion", 1112, {}, status="failed", protocol="random", condition="0.3"))
    rows = aggregate(store, metrics=["mae"]).set_index("condition")
    assert rows.loc["0.3", "n_failed"] == 1 and rows.loc["0.1", "n_failed"] == 0
    assert rows["config_id"].nunique() == 1  # the rates are the columns of one row


# -- item 9: results of an older code version are stale ---------------------------------------------
def test_runs_of_an_older_method_version_are_kept_but_left_out(tmp_path):
    store = ResultStore(tmp_path)
    store.save(record("v1", "fusion", 1111, {("L", "mae"): 0.9}, ended="2026-01-01T00:00:00"))
    store.save(record("v2", "fusion", 1111, {("L", "mae"): 0.5}, method_version="2", ended="2026-01-02T00:00:00"))
    rows = aggregate(store, metrics=["mae"])
    assert len(rows) == 1 and rows.iloc[0]["mean"] == pytest.approx(0.5) and rows.iloc[0]["n_stale"] == 1
    assert len(store.runs()) == 2  # the old row stays in the store
