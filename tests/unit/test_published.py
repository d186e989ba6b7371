"""Reported vs reproduced: the committed published numbers, their validation, and the comparison."""
import json

import pandas as pd
import pytest

from mmbench.cli import main
from mmbench.constants import TABLE_PATTERN_ORDER
from mmbench.reports import published as published_module
from mmbench.reports.aggregate import aggregate
from mmbench.reports.published import (COLUMNS, MEAN_INCOMPLETE, PublishedTableError, compare, load_published,
                                       render_comparison)
from mmbench.results import ResultStore
from tests.unit.test_leaderboard import record

KEY = ["source", "dataset", "method", "protocol", "condition", "metric"]


def paper_row(**changes) -> dict:
    """One published row in the CSV's columns (a made-up paper on MOSI, ae, fixed L, ACC2 Non0 = 80 %)."""
    row = {"source": "paper-x", "citation": "X et al. A paper. 2024", "dataset": "mosi", "method": "ae",
           "protocol": "fixed", "condition": "L", "metric": "acc2_non0", "has0_non0": "non0", "value": 0.80,
           "features": "bc-LSTM utterance features", "feature_set": "bc-lstm", "selection": "valid",
           "notes": "", "page_table": "Table 9"}
    return {**row, **changes}


def store_of(tmp_path, dataset: str, values: dict[int, dict]) -> pd.DataFrame:
    """Aggregate rows of ``ae`` on ``dataset``: ``values`` = seed -> {(condition, metric): value}."""
    store = ResultStore(tmp_path)
    for seed, metrics in values.items():
        store.save(record(f"r{seed}", "ae", seed, metrics, dataset=dataset))
    return aggregate(store)


def test_committed_table_loads_and_every_row_cites_its_source():
    table = load_published()
    assert not table.duplicated(KEY).any()
    assert table["citation"].str.strip().ne("").all() and table["page_table"].str.strip().ne("").all()
    omg_fixed = table[(table["source"] == "omg-agent") & (table["protocol"] == "fixed")]
    assert len(omg_fixed) == 2 * 16 * 7 * 3  # 2 datasets x 16 methods x 7 patterns x ACC2/F1/ACC7
    ours = omg_fixed.set_index(["dataset", "method", "condition", "metric"])["value"]
    assert ours[("mosi", "omg-agent", "LVA", "acc2")] == pytest.approx(0.892)  # printed 89.2
    bclstm = table[table["method"] == "bc-lstm"].iloc[0]
    assert (bclstm["metric"], bclstm["value"], bclstm["selection"]) == ("acc2_has0", 0.803, "test")
    assert table.loc[table["notes"].str.contains("SMCSMA"), "method"].eq("smcmsa").all()


@pytest.mark.parametrize(("change", "field"), [({"value": "80.3"}, "value"), ({"citation": ""}, "citation"),
                                                ({"dataset": "cmu-mosi"}, "dataset"), ({"metric": "acc"}, "metric")])
def test_a_bad_row_names_the_file_line_and_field(tmp_path, change, field):
    path = tmp_path / "published.csv"
    pd.DataFrame([paper_row(), paper_row(condition="LV", **change)]).to_csv(path, index=False)
    with pytest.raises(PublishedTableError) as error:
        load_published(path)
    assert str(path) in str(error.value) and "line 3" in str(error.value) and repr(field) in str(error.value)


def test_a_missing_column_is_named(tmp_path):
    path = tmp_path / "published.csv"
    pd.DataFrame([paper_row()]).drop(columns=["selection"]).to_csv(path, index=False)
    with pytest.raises(PublishedTableError, match="selection"):
        load_published(path)
    assert set(COLUMNS) <= set(paper_row())


def test_synthetic_data_is_always_flagged_even_when_all_else_matches(tmp_path):
    rows = store_of(tmp_path, "mosi-synth", {1111: {("L", "acc2_non0"): 0.9}, 1112: {("L", "acc2_non0"): 0.7}})
    table = compare(rows, pd.DataFrame([paper_row()]))
    assert len(table) == 1
    assert table.loc[0, "synthetic"] and not table.loc[0, "like_for_like"]
    assert table.loc[0, "caveats"].startswith("SYNTHETIC data")
    assert "SYNTHETIC" in render_comparison(table, "md")
    assert json.loads(render_comparison(table, "json"))[0]["synthetic"] is True


def test_difference_is_in_the_stored_unit_and_printed_in_points(tmp_path, monkeypatch):
    monkeypatch.setattr(published_module, "SAME_FEATURES_NOTES", {})  # nothing else differs: like for like
    rows = store_of(tmp_path, "mosi-bclstm", {1111: {("L", "acc2_non0"): 0.75}, 1112: {("L", "acc2_non0"): 0.77}})
    table = compare(rows, pd.DataFrame([paper_row()]))
    assert table.loc[0, "mean"] == pytest.approx(0.76)
    assert table.loc[0, "difference"] == pytest.approx(-0.04)  # fractions, as stored
    assert table.loc[0, "like_for_like"] and table.loc[0, "caveats"] == ""
    text = render_comparison(table, "md")
    assert "| 80.0 | 76.0 ± 1.4 | -4.0 |" in text


def test_each_reason_that_is_not_like_for_like_is_named(tmp_path):
    rows = store_of(tmp_path, "mosi-bclstm", {1111: {("L", "acc2_has0"): 0.7, ("L", "acc2_non0"): 0.72}})
    paper = paper_row(metric="acc2", has0_non0="unknown", selection="test", feature_set="bert-facet-covarep",
                      features="BERT + Facet + COVAREP")
    table = compare(rows, pd.DataFrame([paper]))
    assert list(table["metric"]) == ["acc2_has0", "acc2_non0"]  # unknown variant: both, each flagged
    for caveats in table["caveats"]:
        assert "other features" in caveats and "test-set selection" in caveats and "Has0/Non0 unknown" in caveats
    assert not table["like_for_like"].any()


def test_an_average_over_the_incomplete_patterns_is_compared_with_the_mean_of_means(tmp_path):
    values = {(p, "f1_non0"): 0.5 + 0.05 * i for i, p in enumerate(TABLE_PATTERN_ORDER)}  # LVA (0.8) left out
    rows = store_of(tmp_path, "mosi-bclstm", {1111: values})
    paper = paper_row(metric="f1", has0_non0="unknown", condition=MEAN_INCOMPLETE, value=0.70)
    table = compare(rows, pd.DataFrame([paper]))
    row = table[table["metric"] == "f1_non0"].iloc[0]
    assert row["mean"] == pytest.approx(0.625) and row["difference"] == pytest.approx(-0.075)
    assert "mean of its 6 incomplete-pattern means" in row["caveats"]


def test_leaderboard_compare_published_prints_the_committed_rows(tmp_path, capsys):
    store = ResultStore(tmp_path)
    store.save(record("s1", "ae", 1111, {("L", "acc2_non0"): 0.8, ("L", "acc7"): 0.3}, dataset="mosi-synth"))
    assert main(["leaderboard", "--results", str(tmp_path), "--compare-published", "--format", "json"]) == 0
    pairs = json.loads(capsys.readouterr().out)
    assert {(p["paper_metric"], p["metric"]) for p in pairs} == {("acc2", "acc2_non0"), ("acc7", "acc7")}
    assert all(p["synthetic"] and not p["like_for_like"] for p in pairs)
    assert {p["published"] for p in pairs if p["metric"] == "acc7"} == {0.285}  # OMG-Agent Table 1, AE, L
