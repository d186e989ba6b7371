"""The paper layouts (--layout patterns|rates) on constructed stores whose cells are known."""
import json

import numpy as np
import pandas as pd
import pytest

from mmbench.cli import main
from mmbench.constants import TABLE_PATTERN_ORDER
from mmbench.metrics import regression_metrics
from mmbench.reports.layouts import INCOMPLETE_PATTERNS, layout_tables, render_layout
from mmbench.reports.leaderboard import COST_FORMATS, format_cell
from mmbench.results import ResultStore
from tests.unit.test_leaderboard import record

N_TEST = 120


def save_run(store, run_id, method, seed, values, *, protocol="fixed", condition="all", predictions=None):
    """A finished run of ``values`` {(condition, metric): value}, with its saved predictions if given."""
    store.save(record(run_id, method, seed, values, protocol=protocol, condition=condition))
    if predictions is not None:
        folder = store.results_dir / "runs" / run_id
        folder.mkdir(parents=True)
        predictions.to_csv(folder / "predictions.csv.gz", index=False)


def labels_of_test_set() -> np.ndarray:
    """Labels that are never 0 (so ACC2 Non0 counts every sample), half positive."""
    return np.where(np.arange(N_TEST) % 2 == 0, 1.4, -1.2)


def run_with_errors(store, run_id, method, seed, wrong, condition="L"):
    """A fixed-protocol run whose predictions get exactly the samples ``wrong`` wrong, its metric stored to match."""
    labels = labels_of_test_set()
    preds = np.where(np.isin(np.arange(N_TEST), list(wrong)), -labels, labels)
    frame = pd.DataFrame({"split": "test", "condition": condition, "id": [f"te{i}" for i in range(N_TEST)],
                          "label": labels, "pred": preds})
    value = regression_metrics(preds, labels, "mosi")["acc2_non0"]
    save_run(store, run_id, method, seed, {(condition, "acc2_non0"): value}, predictions=frame)


def ranked_store(tmp_path, twins: bool) -> ResultStore:
    """strong (95 %) above either two indistinguishable methods (75 %, one sample swapped) or two distinct
    ones (75 % and 60 %), with fusion at 55 % and the mean floor at 50 %; three seeds each."""
    store = ResultStore(tmp_path)
    rng = np.random.default_rng(0)
    for seed in (1111, 1112, 1113):
        shared = set(rng.choice(N_TEST, 30, replace=False).tolist())
        swapped = (shared - {min(shared)}) | {next(i for i in range(N_TEST) if i not in shared)}
        other = swapped if twins else set(rng.choice(N_TEST, 48, replace=False).tolist())
        run_with_errors(store, f"s{seed}", "strong", seed, set(rng.choice(N_TEST, 6, replace=False).tolist()))
        run_with_errors(store, f"a{seed}", "twin_a", seed, shared)
        run_with_errors(store, f"b{seed}", "twin_b", seed, other)
        run_with_errors(store, f"f{seed}", "fusion", seed, set(range(0, N_TEST, 2)) - set(range(0, 12, 2)))
        run_with_errors(store, f"m{seed}", "mean", seed, set(range(1, N_TEST, 2)))
    return store


@pytest.fixture()
def pattern_store(tmp_path):
    """ae over two seeds: the incomplete patterns average 0.6 (seed 1111) and 0.7 (seed 1112); LVA 0.9 / 0.95."""
    store = ResultStore(tmp_path)
    for seed, shift, full in ((1111, 0.0, 0.90), (1112, 0.1, 0.95)):
        values = {(p, "acc2_non0"): v + shift for p, v in zip(INCOMPLETE_PATTERNS, (0.5, 0.6, 0.7, 0.5, 0.6, 0.7))}
        values[("LVA", "acc2_non0")] = full
        save_run(store, f"ae{seed}", "ae", seed, values)
    return store


def test_patterns_layout_has_the_paper_columns_and_an_avg_taken_per_seed(pattern_store):
    (table,) = layout_tables(pattern_store, "patterns", metrics=["acc2_non0"])
    expected = [f"{p} ACC2 (Non0)" for p in TABLE_PATTERN_ORDER] + ["Avg ACC2 (Non0)"]
    assert list(table.table.columns) == expected
    # per seed 0.6 and 0.7 -> 65.0 ± 7.1; pooling the 12 values would give a std of 10.4
    assert table.table.loc["ae", "Avg ACC2 (Non0)"] == "65.0 ± 7.1"
    assert table.table.loc["ae", "LVA ACC2 (Non0)"] == "92.5 ± 3.5"  # LVA is not in the average
    assert "Non0" in render_layout([table], "md").splitlines()[2]


def test_default_metrics_are_acc2_f1_acc7_non0(pattern_store):
    (table,) = layout_tables(pattern_store, "patterns")
    assert list(table.table.columns[:3]) == ["A ACC2 (Non0)", "A F1 (Non0)", "A ACC7"]


def test_mean_and_fusion_rows_are_printed_when_not_run_in_every_format(pattern_store):
    tables = layout_tables(pattern_store, "patterns", metrics=["acc2_non0"])
    assert list(tables[0].table.index) == ["mean", "fusion", "ae"]
    assert set(tables[0].table.loc["fusion"]) == {"—"}
    for fmt in ("md", "csv", "latex", "html"):
        text = render_layout(tables, fmt)
        assert "mean: not run" in text and "fusion: not run" in text, fmt
    not_run = [r for r in json.loads(render_layout(tables, "json")) if r.get("note") == "not run"]
    assert {r["method"] for r in not_run} == {"mean", "fusion"}


def test_json_cells_carry_the_pinned_keys_and_a_t_interval(pattern_store):
    records = json.loads(render_layout(layout_tables(pattern_store, "patterns", metrics=["acc2_non0"]), "json"))
    avg = next(r for r in records if r.get("condition") == "Avg")
    assert {"dataset", "method", "protocol", "train_setting", "selection", "metric", "mean", "std", "n_seeds",
            "n_failed", "synthetic", "config_id", "train_condition"} <= set(avg)
    assert avg["mean"] == pytest.approx(0.65) and avg["n_seeds"] == 2
    # t(0.975, 1) = 12.706; s / sqrt(2) = 0.05
    assert avg["ci95_low"] == pytest.approx(0.65 - 12.7062 * 0.05, abs=1e-4)


def rate_store(tmp_path) -> ResultStore:
    store = ResultStore(tmp_path)
    curves = {"ae": (0.80, 0.70, 0.60, 0.50), "fusion": (0.85, 0.70, 0.55, 0.40), "mean": (0.5, 0.5, 0.5, 0.5)}
    for method, curve in curves.items():
        for seed, shift in ((1111, 0.0), (1112, 0.02 if method == "ae" else 0.0)):
            for rate, value in zip(("0.0", "0.3", "0.5", "0.7"), curve):
                save_run(store, f"{method}{seed}{rate}", method, seed, {(rate, "acc2_non0"): value + shift},
                         protocol="random", condition=rate)
    return store


def test_rates_layout_then_its_robustness_summary(tmp_path):
    rates, summary = layout_tables(rate_store(tmp_path), "rates", metrics=["acc2_non0"])
    assert list(rates.table.columns) == [f"{r} ACC2 (Non0)" for r in ("0.0", "0.3", "0.5", "0.7")]
    assert rates.table.loc["ae", "0.0 ACC2 (Non0)"] == "81.0 ± 1.4"
    row = summary.table.loc["ae"]
    assert row["ACC2 (Non0) AUC"] == "67.4 ± 1.4"  # (0.225 + 0.13 + 0.11) / 0.7 = 0.6643, +0.02 for seed 2
    assert row["ACC2 (Non0) Drop"] == "30.0 ± 0.0"
    assert row["ACC2 (Non0) EffRob"] == "30.0 ± 0.0"  # 0 + 0.05 + 0.10 + 0.15 against fusion
    assert row["ACC2 (Non0) RelRob"] == "1.000" and summary.table.loc["mean", "ACC2 (Non0) RelRob"] == "0.000"
    assert summary.table.loc["fusion", "ACC2 (Non0) RelRob"] == "0.840"  # (0.4525 - 0.35) / (0.472 - 0.35)
    assert summary.table.loc["fusion", "ACC2 (Non0) EffRob"] == "0.0 ± 0.0"  # against itself


def test_a_layout_refuses_a_protocol_it_does_not_show(pattern_store):
    with pytest.raises(ValueError, match="fixed"):
        layout_tables(pattern_store, "patterns", protocol="random")


def test_cost_metrics_print_as_plain_numbers_without_marks(tmp_path, capsys):
    store = ResultStore(tmp_path)
    for seed in (1111, 1112):
        costs = {"train_s": 123.4 + seed - 1111, "params": 1234567.0, "infer_ms": 0.012345, "peak_mem_mb": 812.6}
        save_run(store, f"c{seed}", "ae", seed, {(p, m): v for p in TABLE_PATTERN_ORDER for m, v in costs.items()})
    assert main(["leaderboard", "--results", str(tmp_path), "--layout", "patterns", "--significance",
                 "--metric", "train_s,params,infer_ms,peak_mem_mb"]) == 0
    text = capsys.readouterr().out
    assert "124 ± 1" in text and "1,234,567 ± 0" in text and "0.0123 ± 0" in text and "813 ± 0" in text
    assert "**" not in text


def test_format_cell_of_every_cost_metric():
    assert format_cell("train_s", 3600.4, None) == "3600"
    assert format_cell("infer_ms", 1.23456, 0.01) == "1.23 ± 0.0100"
    assert format_cell("params", 2500000.0, None) == "2,500,000"
    assert format_cell("peak_mem_mb", 1024.4, 10.6) == "1024 ± 11"
    assert set(COST_FORMATS) == {"train_s", "infer_ms", "params", "peak_mem_mb"}


def test_marks_in_every_format(tmp_path):
    tables = layout_tables(ranked_store(tmp_path, twins=False), "patterns", metrics=["acc2_non0"], significance=True)
    assert "**95.0 ± 0.0**" in render_layout(tables, "md") and "_75.0 ± 0.0_" in render_layout(tables, "md")
    latex = render_layout(tables, "latex")
    assert r"\textbf{95.0 $\pm$ 0.0}" in latex and r"\underline{75.0 $\pm$ 0.0}" in latex
    assert "twin\\_a" in latex  # escaped
    assert "<b>95.0 ± 0.0</b>" in render_layout(tables, "html")
    assert "95.0 ± 0.0 [best]" in render_layout(tables, "csv")
    assert "paired bootstrap over test samples" in tables[0].caption
