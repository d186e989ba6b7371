"""The ``imbalanced`` protocol: per-modality rates, the all-missing rule, ids, hashes, the store and reports."""
import json
import os
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mmbench.constants import ALL_PROTOCOLS, IMBALANCED_CONDITIONS, MODALITIES
from mmbench.missing import MaskSet, make_mask_set, parse_imbalanced
from mmbench.missing.imbalanced import imbalanced_available, keep_one_modality, missing_counts, restore_counts
from mmbench.reports.aggregate import aggregate
from mmbench.reports.leaderboard import JSON_KEYS, render
from mmbench.results import MetricRow, ResultStore, RunRecord
from mmbench.results import store as store_module
from mmbench.results.keys import config_id, key_hash
from mmbench.sweep import SweepOptions, expand, protocol_conditions

N = 2000
IDS = np.array([f"vid{i:05d}" for i in range(N)])


def draw(condition: str, seed: int = 1111, ids: np.ndarray = IDS, split: str = "test") -> MaskSet:
    return make_mask_set("mosi", split, ids, None, None, "imbalanced", condition, seed)


# ---------------------------------------------------------------- generation and tolerance
def test_default_grid_is_the_six_orderings_with_mean_rate_one_half():
    triples = [tuple(parse_imbalanced(c)[0].values()) for c in IMBALANCED_CONDITIONS]
    assert len(set(triples)) == 6 and {tuple(sorted(t)) for t in triples} == {(0.3, 0.5, 0.7)}
    assert all(np.isclose(np.mean(t), 0.5) for t in triples)
    assert "imbalanced" not in ALL_PROTOCOLS  # --protocol all keeps meaning fixed, random, frame


@pytest.mark.parametrize("condition", IMBALANCED_CONDITIONS)
def test_achieved_rates_match_targets_within_half_a_sample_on_2000(condition):
    mask = draw(condition)
    targets = parse_imbalanced(condition)[0]
    missing_share = (~mask.available).mean(axis=0)
    for index, modality in enumerate(MODALITIES):
        assert mask.achieved_rates[modality] == pytest.approx(missing_share[index])
        assert abs(mask.achieved_rates[modality] - targets[modality]) <= 1 / (2 * N)  # the stated tolerance
    assert mask.achieved_rate == pytest.approx(np.mean(list(mask.achieved_rates.values())))
    assert mask.target_rate == pytest.approx(0.5) and mask.achieved_rate == pytest.approx(0.5)
    assert mask.available.any(axis=1).all()  # nobody loses every modality


def test_rates_summing_to_two_leave_every_sample_exactly_one_modality():
    # k = (480, 480, 412) on N = 686: 2N removals, so step 3 must use its hand-over
    available, achieved = imbalanced_available(686, {"L": 0.7, "V": 0.7, "A": 0.6}, np.random.default_rng(3))
    assert (available.sum(axis=1) == 1).all()
    assert (~available).sum(axis=0).tolist() == [480, 480, 412]
    assert achieved == {"L": 480 / 686, "V": 480 / 686, "A": 412 / 686}


def test_rounding_past_2n_gives_one_removal_back_within_one_sample():
    counts = missing_counts(5, {"L": 0.7, "V": 0.7, "A": 0.6})  # 3.5, 3.5, 3.0 round to 4, 4, 3: 11 > 10
    assert counts.sum() == 10 and np.all(np.abs(counts - np.array([3.5, 3.5, 3.0])) <= 1)
    available, _ = imbalanced_available(5, {"L": 0.7, "V": 0.7, "A": 0.6}, np.random.default_rng(0))
    assert available.any(axis=1).all() and ((~available).sum(axis=0) == counts).all()


def test_zero_rates_remove_nothing_and_one_rate_hits_only_its_modality():
    available, achieved = imbalanced_available(40, {"L": 0.0, "V": 0.5, "A": 0.0}, np.random.default_rng(1))
    assert available[:, [0, 2]].all() and (~available[:, 1]).sum() == 20
    assert achieved == {"L": 0.0, "V": 0.5, "A": 0.0}


# ---------------------------------------------------------------- the all-missing rule
def test_all_missing_samples_keep_one_modality_drawn_in_proportion_to_its_availability():
    rates = {"L": 0.3, "V": 0.5, "A": 0.7}
    missing = np.ones((30000, 3), dtype=bool)
    missing[:100] = [True, False, True]  # not all missing: left as they are
    kept = keep_one_modality(missing, rates, np.random.default_rng(0))
    assert (missing[100:].sum(axis=1) == 2).all() and len(kept) == 29900
    assert (missing[:100] == [True, False, True]).all()
    shares = np.bincount(kept, minlength=3) / len(kept)
    assert shares == pytest.approx(np.array([0.7, 0.5, 0.3]) / 1.5, abs=0.015)  # ∝ 1 - p_m, ~5 std


def test_restoring_counts_hands_over_a_modality_when_no_sample_can_simply_lose_one():
    # L must be missing 3 times; the only sample with L already misses V and A, one sample misses only L
    missing = np.array([[False, True, True], [True, False, False], [True, False, True]])
    restore_counts(missing, np.array([3, 1, 2]), np.random.default_rng(0))
    assert missing.sum(axis=0).tolist() == [3, 1, 2]
    assert (missing.sum(axis=1) == 2).all()  # every sample still keeps one


# ---------------------------------------------------------------- ids: parsing and refusal
def test_condition_ids_are_canonicalised():
    assert parse_imbalanced("L0.30-V0.5-A0.7") == ({"L": 0.3, "V": 0.5, "A": 0.7}, "L0.3-V0.5-A0.7")
    assert draw("L0.30-V0.5-A0.7").condition == "L0.3-V0.5-A0.7"
    assert draw("L0.30-V0.5-A0.7", ids=IDS[:50]).sha256() == draw("L0.3-V0.5-A0.7", ids=IDS[:50]).sha256()


@pytest.mark.parametrize("condition, message", [
    ("L0.9-V0.1-A0.1", "the rate of L must be one of 0.0..0.7"),
    ("L0.25-V0.5-A0.5", "got '0.25'"),
    ("L0.3-V-0.5-A0.7", "expected three rates in L, V, A order"),
    ("V0.3-L0.5-A0.7", "expected three rates in L, V, A order"),
    ("L0.3-V0.5", "expected three rates"),
    ("0.5", "expected three rates"),
    ("Lx-V0.5-A0.5", "got 'x'"),
    ("L0.7-V0.7-A0.7", "sum to 2.1 > 2"),
])
def test_malformed_or_off_grid_ids_are_refused_in_one_line_naming_the_id(condition, message):
    with pytest.raises(ValueError) as error:
        parse_imbalanced(condition)
    text = str(error.value)
    assert message in text and repr(condition) in text and "\n" not in text
    with pytest.raises(ValueError, match="--rates: imbalanced condition"):
        SweepOptions(datasets=("mosi-synth",), methods=("fusion",), protocols=("imbalanced",), rates=(condition,))


def test_cli_refuses_an_off_grid_id_before_anything_runs(tmp_path, capsys):
    from mmbench.cli import main

    code = main(["run", "--dataset", "mosi-synth", "--method", "fusion", "--protocol", "imbalanced", "--rates",
                 "L0.3-V0.8-A0.5", "--seeds", "1111", "--results", str(tmp_path / "runs"), "--data-dir",
                 str(tmp_path / "data"), "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "'L0.3-V0.8-A0.5'" in err and "rate of V" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs" / "mmbench.sqlite").exists()


def test_one_rates_list_serves_random_and_imbalanced():
    rates = ("0.5", "L0.7-V0.5-A0.3")
    assert protocol_conditions("random", rates) == ("0.5",)
    assert protocol_conditions("imbalanced", rates) == ("L0.7-V0.5-A0.3",)
    with pytest.raises(ValueError, match="is not a number"):
        protocol_conditions("random", ("L0.7-V0.5-A0.3",))


def test_sweep_runs_the_six_conditions_per_seed_trained_under_same():
    specs = expand(SweepOptions(datasets=("mosi-synth",), methods=("fusion",), protocols=("imbalanced",),
                                seeds=(1111, 1112)))
    assert len(specs) == 12 and {s.train_setting for s in specs} == {"same"}
    assert [s.condition for s in specs if s.seed == 1111] == list(IMBALANCED_CONDITIONS)


def test_dry_run_lists_six_runs_per_seed(tmp_path, monkeypatch):
    from mmbench.runner import Runner
    from tests.helpers import tiny_bundle

    monkeypatch.setattr(Runner, "bundle", lambda self, dataset: tiny_bundle())
    options = SweepOptions(datasets=("mosi-synth",), methods=("fusion",), protocols=("imbalanced",),
                           seeds=(1111, 1112), results_dir=tmp_path / "runs")
    entries = Runner(options).dry_run()
    assert len(entries) == 12
    for seed in (1111, 1112):
        assert sorted(e["condition"] for e in entries if e["seed"] == seed) == sorted(IMBALANCED_CONDITIONS)
    assert {e["status"] for e in entries} == {"new"} and {e["train_setting"] for e in entries} == {"same"}


def test_training_masks_under_same_use_the_test_condition(tmp_path):
    from mmbench.masks import run_masks
    from tests.helpers import tiny_bundle

    bundle = tiny_bundle(n_train=40, n_eval=20)
    train, valid, test = run_masks(tmp_path, "mosi-synth", bundle.splits, "imbalanced", "L0.5-V0.3-A0.7", 1111,
                                   "same")
    assert train.condition == "L0.5-V0.3-A0.7" and train.achieved_rates == {"L": 0.5, "V": 0.3, "A": 0.7}
    assert list(valid) == list(test) == ["L0.5-V0.3-A0.7"]
    assert run_masks(tmp_path, "mosi-synth", bundle.splits, "imbalanced", "L0.5-V0.3-A0.7", 1111,
                     "complete")[0] is None


# ---------------------------------------------------------------- hashes and files
_CHILD = textwrap.dedent("""
    import numpy as np
    from mmbench.missing import make_mask_set
    ids = np.array([f"vid{i:05d}" for i in range(300)])
    print(make_mask_set("mosi", "test", ids, None, None, "imbalanced", "L0.7-V0.3-A0.5", 1111).sha256())
""")


def test_hash_is_stable_across_processes_and_id_order_and_changes_with_the_key():
    ids = IDS[:300]
    first = draw("L0.7-V0.3-A0.5", ids=ids)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    child = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, env=env, check=True)
    assert child.stdout.split() == [first.sha256()]
    order = np.random.default_rng(9).permutation(len(ids))
    shuffled = draw("L0.7-V0.3-A0.5", ids=ids[order])
    assert shuffled.sha256() == first.sha256() and np.array_equal(shuffled.available, first.available[order])
    others = [draw("L0.7-V0.3-A0.5", seed=1112, ids=ids), draw("L0.7-V0.5-A0.3", ids=ids),
              draw("L0.7-V0.3-A0.5", ids=ids, split="valid")]
    assert len({first.sha256(), *(o.sha256() for o in others)}) == 4


def test_mask_file_round_trips_the_rates(tmp_path):
    mask = draw("L0.3-V0.7-A0.5", ids=IDS[:100])
    loaded = MaskSet.load(mask.save(tmp_path / "mask.npz"))
    assert loaded.sha256() == mask.sha256() and loaded.condition == "L0.3-V0.7-A0.5"
    assert loaded.achieved_rates == mask.achieved_rates == {"L": 0.3, "V": 0.7, "A": 0.5}
    assert list(loaded.achieved_rates) == list(MODALITIES)  # the file's JSON is sorted; L, V, A again
    assert loaded.achieved_rate == pytest.approx(0.5) and loaded.target_rate == pytest.approx(0.5)
    random = make_mask_set("mosi", "test", IDS[:100], None, None, "random", "0.3", 1111)
    assert MaskSet.load(random.save(tmp_path / "random.npz")).achieved_rates is None


def test_a_mask_file_written_before_achieved_rates_still_loads(tmp_path):
    mask = make_mask_set("mosi", "test", IDS[:20], None, None, "random", "0.3", 1111)
    path = mask.save(tmp_path / "old.npz")
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    meta = json.loads(str(arrays["meta"][0]))
    del meta["achieved_rates"]
    arrays["meta"] = np.array([json.dumps(meta)])
    np.savez(path, **arrays)
    loaded = MaskSet.load(path)
    assert loaded.achieved_rates is None and loaded.sha256() == mask.sha256()


# ---------------------------------------------------------------- store, export and leaderboard
def _record(run_id: str, seed: int, rates: dict | None, protocol: str = "imbalanced",
            condition: str = "L0.3-V0.5-A0.7", acc: float = 0.7) -> RunRecord:
    key = {"dataset": "mosi-synth", "method": "fusion", "protocol": protocol, "condition": condition,
           "seed": seed, "train_setting": "same", "selection": "valid", "profile": "paper", "limit": None,
           "budget": {"max_epochs": 30, "early_stop_patience": 10}, "method_config": {"lr": 0.001},
           "data_sha256": "d" * 64, "mmbench_version": "0.2.0", "method_version": "1"}
    mean = float(np.mean(list(rates.values()))) if rates else 0.5
    metrics = [MetricRow(split, condition, metric, acc, mean, "m" * 64, achieved_rates=rates)
               for split in ("valid", "test") for metric in ("acc2_non0", "mae")]
    return RunRecord(run_id=run_id, config_hash=key_hash(key), dataset="mosi-synth", data_sha256="d" * 64,
                     method="fusion", protocol=protocol, condition=condition, train_setting="same",
                     selection="valid", seed=seed, mask_sha256="m" * 64, status="finished",
                     started_at=f"2026-01-0{seed - 1110}T00:00:00", ended_at=f"2026-01-0{seed - 1110}T00:01:00",
                     synthetic=True, package_version="0", git_commit=None, config=key, config_id=config_id(key),
                     n_test=100, metrics=metrics)


@pytest.fixture()
def store(tmp_path):
    store = ResultStore(tmp_path / "runs")
    store.save(_record("i1", 1111, {"L": 0.30, "V": 0.50, "A": 0.70}, acc=0.8))
    store.save(_record("i2", 1112, {"L": 0.32, "V": 0.48, "A": 0.70}, acc=0.6))
    store.save(_record("r1", 1111, None, protocol="random", condition="0.5"))
    return store


def test_store_round_trips_achieved_rates(store):
    rows = store.metric_rows("i1")
    assert all(list(r.achieved_rates.items()) == [("L", 0.3), ("V", 0.5), ("A", 0.7)] for r in rows)
    assert all(r.achieved_rates is None for r in store.metric_rows("r1"))
    table = store.long_table()
    imbalanced = table[table["protocol"] == "imbalanced"]
    assert json.loads(imbalanced["achieved_rates"].iloc[0]) in ({"L": 0.3, "V": 0.5, "A": 0.7},
                                                                 {"L": 0.32, "V": 0.48, "A": 0.7})
    assert table.loc[table["protocol"] == "random", "achieved_rates"].isna().all()


def test_an_older_store_gains_the_column_and_reads_null_when_read_only(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    with sqlite3.connect(old / store_module.DB_NAME) as conn:
        conn.executescript(store_module._SCHEMA.replace(", achieved_rates TEXT", ""))
    assert ResultStore(old, readonly=True).long_table()["achieved_rates"].tolist() == []
    store = ResultStore(old)  # opened for writing: migrated
    store.save(_record("i1", 1111, {"L": 0.3, "V": 0.5, "A": 0.7}))
    assert store.metric_rows("i1")[0].achieved_rates == {"L": 0.3, "V": 0.5, "A": 0.7}


def test_export_carries_achieved_rates_and_reads_back(store, tmp_path):
    from mmbench.cli import main
    from mmbench.results.exported import open_results, read_export

    out = tmp_path / "export.csv"
    assert main(["export", "--results", str(store.results_dir), "--format", "csv", "--out", str(out)]) == 0
    table = read_export(out)
    rates = table.loc[(table["run_id"] == "i2") & (table["metric"] == "mae"), "achieved_rates"]
    assert json.loads(rates.iloc[0]) == {"L": 0.32, "V": 0.48, "A": 0.7}
    again = open_results(out).metric_rows("i2")
    assert again[0].achieved_rates == {"L": 0.32, "V": 0.48, "A": 0.7}


def test_leaderboard_json_rows_carry_the_mean_rates_over_seeds(store):
    assert "achieved_rates" in JSON_KEYS
    rows = json.loads(render(aggregate(store, metrics=["acc2_non0"]), "json"))
    imbalanced = next(r for r in rows if r["protocol"] == "imbalanced")
    assert imbalanced["n_seeds"] == 2 and imbalanced["mean"] == pytest.approx(0.7)
    assert imbalanced["achieved_rates"] == pytest.approx({"L": 0.31, "V": 0.49, "A": 0.7})
    assert list(imbalanced["achieved_rates"]) == list(MODALITIES)
    assert imbalanced["condition"] == imbalanced["train_condition"] == "L0.3-V0.5-A0.7"
    assert next(r for r in rows if r["protocol"] == "random")["achieved_rates"] is None


def test_markdown_table_orders_imbalanced_conditions(store):
    store.save(_record("i3", 1111, {"L": 0.7, "V": 0.5, "A": 0.3}, condition="L0.7-V0.5-A0.3"))
    text = render(aggregate(store, protocol="imbalanced"), "md", ["acc2_non0"])
    assert text.index("L0.3-V0.5-A0.7 ACC2") < text.index("L0.7-V0.5-A0.3 ACC2")


def test_docstring_examples_run():
    import doctest

    import mmbench.missing.imbalanced
    import mmbench.sweep

    for module in (mmbench.missing.imbalanced, mmbench.sweep):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0
