"""An export holds everything the tables need: reports read it like the store it came from."""
import pandas as pd
import pytest

from mmbench.reports.aggregate import aggregate
from mmbench.reports.leaderboard import render
from mmbench.results import ResultStore, StoreError
from mmbench.results.exported import export_table, open_results
from tests.unit.test_leaderboard import record


@pytest.fixture()
def store(tmp_path):
    store = ResultStore(tmp_path / "store")
    store.save(record("a1", "fusion", 1111, {("L", "acc2_non0"): 0.80, ("L", "mae"): 1.0}))
    store.save(record("a2", "fusion", 1112, {("L", "acc2_non0"): 0.90, ("L", "mae"): 1.2}))
    failed = record("a3", "fusion", 1113, {}, status="failed")
    failed.metrics = []  # it ended before any number
    store.save(failed)
    store.save(record("q1", "fusion", 1111, {("L", "acc2_non0"): 0.60}, profile="quick"))
    store.save(record("b1", "mean", 1111, {("L", "acc2_non0"): 0.5, ("L", "mae"): 1.5}, dataset="mosi-bclstm"))
    return store


@pytest.mark.parametrize("suffix", [".csv.gz", ".jsonl"])
def test_tables_from_an_export_equal_the_tables_from_the_store(store, tmp_path, suffix):
    path = tmp_path / f"long{suffix}"
    table = export_table(store)
    if suffix == ".jsonl":
        table.to_json(path, orient="records", lines=True)
    else:
        table.to_csv(path, index=False)
    original, rebuilt = aggregate(store), aggregate(open_results(path))
    columns = ["dataset", "label", "condition", "metric", "mean", "n_seeds", "n_failed", "synthetic", "config_id"]
    pd.testing.assert_frame_equal(original[columns].sort_values(columns[:4]).reset_index(drop=True),
                                  rebuilt[columns].sort_values(columns[:4]).reset_index(drop=True))
    assert render(original, "md") == render(rebuilt, "md")


def test_a_failed_run_survives_the_export_as_one_row_without_a_metric(store):
    table = export_table(store)
    failed = table[table["run_id"] == "a3"]
    assert len(failed) == 1 and failed["metric"].iloc[0] == "" and failed["status"].iloc[0] == "failed"


def test_a_file_that_is_not_an_export_is_refused_by_name(tmp_path):
    path = tmp_path / "other.csv"
    pd.DataFrame({"a": [1]}).to_csv(path, index=False)
    with pytest.raises(StoreError, match="other.csv.*missing"):
        open_results(path)
