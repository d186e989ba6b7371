"""Data quality: out-of-range labels are refused, repairs (NaN features, clipped lengths and labels) are
recorded in ``bundle.quality``, survive the feature cache and are printed by ``mmbench data inspect``."""
from __future__ import annotations

import json
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from mmbench.cli import main
from mmbench.data.cache import load_feature_file_cached
from mmbench.data.formats import LABEL_TOLERANCE, DataFormatError, DataFormatWarning, read_feature_file
from mmbench.data.inspect import describe_bundle
from mmbench.data.registry import get_spec
from mmbench.data.safe_pickle import safe_load
from mmbench.data.writers import write_mmsa_pickle, write_mult_pickle
from tests.helpers import tiny_bundle


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path, monkeypatch):
    """Keep sha256 memos out of the user's ~/.cache."""
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path / "mmbench-data"))


def _mmsa_content(tmp_path: Path) -> dict:
    path = tmp_path / "source.pkl"
    write_mmsa_pickle(tiny_bundle(), path)
    return safe_load(path)


def _dump(content: object, path: Path) -> Path:
    with open(path, "wb") as handle:
        pickle.dump(content, handle, protocol=4)
    return path


@pytest.fixture
def nan_file(tmp_path) -> Path:
    """An MMSA pickle with 3 NaN vision values in train, 1 inf audio value in test, 2 bad vision lengths."""
    content = _mmsa_content(tmp_path)
    content["train"]["vision"][0, 0, :3] = np.nan
    content["test"]["audio"][1, 0, 0] = np.inf
    content["valid"]["vision_lengths"][:2] = [0, 999]
    return _dump(content, tmp_path / "aligned_50.pkl")


EXPECTED = {"nan_replaced": {"train": {"V": 3}, "test": {"A": 1}}, "lengths_clipped": {"valid": {"V": 2}}}


# ---------------------------------------------------------------------------------------- label range

def test_labels_outside_the_range_are_refused_naming_file_split_field_count_and_examples(tmp_path):
    content = _mmsa_content(tmp_path)
    content["valid"]["regression_labels"][[2, 5, 6]] = [42.0, -9.0, 7.5]
    path = _dump(content, tmp_path / "aligned_50.pkl")
    with pytest.raises(DataFormatError) as caught:
        read_feature_file(path, spec=get_spec("mosi"))
    message = str(caught.value)
    assert str(path) in message and "[-3, 3]" in message and "\n" not in message
    assert re.search(r"split 'valid', field 'regression_labels': 3 value\(s\) out of range, e\.g\. 42 \(sample 2\), "
                     r"-9 \(sample 5\), 7\.5 \(sample 6\)", message)
    assert "'train'" not in message and "'test'" not in message  # only the offending split is named


def test_refusal_holds_for_mult_files_cached_loads_and_unimodal_labels(tmp_path):
    bundle = tiny_bundle()
    bundle.splits["test"].labels[0] = 4.0
    mult = tmp_path / "mosi_data.pkl"
    write_mult_pickle(bundle, mult)
    with pytest.raises(DataFormatError, match=r"split 'test', field 'labels': 1 value\(s\) out of range, e\.g\. 4 "):
        load_feature_file_cached(mult, cache_dir=tmp_path / "cache")

    sims = tiny_bundle()  # labels in [-3, 3]: CH-SIMS's range is [-1, 1]
    sims.splits["train"].labels[:] = np.clip(sims.splits["train"].labels, -1, 1)
    for split in ("valid", "test"):
        sims.splits[split].labels[:] = 0.5
    sims.splits["train"].unimodal_labels = {m: np.full(len(sims.splits["train"]), 0.5, np.float32) for m in "LVA"}
    sims.splits["train"].unimodal_labels["A"][4] = -2.0
    path = tmp_path / "unaligned_39.pkl"
    write_mmsa_pickle(sims, path)
    with pytest.raises(DataFormatError, match=r"split 'train', field 'regression_labels_A': 1 value\(s\) out of range"):
        read_feature_file(path, spec=get_spec("sims"))


def test_rounding_excess_is_clipped_and_counted_not_refused(tmp_path):
    content = _mmsa_content(tmp_path)
    labels = content["train"]["regression_labels"]
    labels[:2] = [np.nextafter(np.float32(3), np.float32(4)), np.float32(-3 - LABEL_TOLERANCE / 2)]
    path = _dump(content, tmp_path / "aligned_50.pkl")
    with pytest.warns(DataFormatWarning, match=r"split 'train': labels within .* clipped .*regression_labels 2"):
        loaded = read_feature_file(path)  # no dataset given: MOSI/MOSEI's range [-3, 3]
    np.testing.assert_array_equal(loaded.splits["train"].labels[:2], [3.0, -3.0])
    assert loaded.splits["train"].labels.dtype == np.float32
    assert loaded.quality == {"labels_clipped": {"train": {"regression_labels": 2}}}


# ---------------------------------------------------------------------------------------- repairs

def test_nan_features_and_clipped_lengths_are_recorded_on_a_direct_read(nan_file):
    with pytest.warns(DataFormatWarning):
        bundle = read_feature_file(nan_file)
    assert bundle.quality == EXPECTED
    assert bundle.splits["train"].features["V"][0, 0, :3].tolist() == [0, 0, 0]
    json.dumps(bundle.quality)  # stored with every run record


def test_audio_minus_inf_is_mmsas_convention_not_a_finding(tmp_path):
    content = _mmsa_content(tmp_path)
    content["train"]["audio"][0, 0, :2] = -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_feature_file(_dump(content, tmp_path / "inf.pkl")).quality == {}


def test_findings_survive_the_cache_and_a_cache_hit_still_warns(tmp_path, nan_file):
    cache_dir = tmp_path / "cache"
    with pytest.warns(DataFormatWarning):
        first = load_feature_file_cached(nan_file, cache_dir=cache_dir)
    with pytest.warns(DataFormatWarning, match=r"repaired when first read: .*nan_replaced train V 3"):
        again = load_feature_file_cached(nan_file, cache_dir=cache_dir)
    assert first.quality == again.quality == EXPECTED
    assert isinstance(again.splits["train"].features["V"], np.memmap)  # really a cache hit


def test_a_clean_file_has_empty_quality_and_inspect_says_clean(tmp_path):
    path = tmp_path / "aligned_50.pkl"
    write_mmsa_pickle(tiny_bundle(), path)
    bundle = load_feature_file_cached(path, cache_dir=tmp_path / "cache")
    assert bundle.quality == {}
    assert "data quality: clean" in describe_bundle(bundle).splitlines()


def test_data_inspect_prints_the_findings(nan_file, capsys):
    with pytest.warns(DataFormatWarning):
        assert main(["data", "inspect", str(nan_file)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("data quality:"))
    assert line == "data quality: nan_replaced train V 3, test A 1; lengths_clipped valid V 2"
