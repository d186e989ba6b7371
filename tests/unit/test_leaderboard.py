import json

import pytest

from mmbench.reports.aggregate import aggregate
from mmbench.reports.leaderboard import format_cell, render
from mmbench.results import MetricRow, ResultStore, RunRecord


def record(run_id, method, seed, values, *, status="finished", selection="valid", dataset="mosi-synth",
           protocol="fixed"):
    metrics = [MetricRow("test", condition, metric, value) for (condition, metric), value in values.items()]
    metrics.append(MetricRow("valid", "L", "acc2_non0", 0.0))  # validation rows never enter tables
    return RunRecord(run_id=run_id, config_hash=run_id, dataset=dataset, data_sha256="", method=method,
                     protocol=protocol, condition="all", train_setting="complete", selection=selection, seed=seed,
                     mask_sha256="", status=status, started_at="t", synthetic=dataset.endswith("synth"),
                     package_version="0", git_commit=None, config={}, n_test=300, metrics=metrics)


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
            "n_seeds", "n_failed", "synthetic"}
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
