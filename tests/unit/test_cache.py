"""The memory-mappable feature cache and the memoised file sha256."""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings

import numpy as np
import pytest

import mmbench.data.cache as cache
import mmbench.data.files as files
from mmbench.constants import MODALITIES, SPLITS
from mmbench.data.cache import CACHE_VERSION, load_feature_file_cached
from mmbench.data.files import file_sha256
from mmbench.data.formats import DataFormatError, DataFormatWarning, read_feature_file
from mmbench.data.writers import write_mmsa_pickle
from mmbench.data.registry import get_spec
from mmbench.data.safe_pickle import UnsafePickleError
from mmbench.data.types import DatasetBundle, SplitData


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path / "mmbench-data"))


def make_bundle(seed: int = 0) -> DatasetBundle:
    rng = np.random.default_rng(seed)
    splits = {}
    for split, n in (("train", 12), ("valid", 5), ("test", 6)):
        features = {m: rng.normal(size=(n, 4 + i, 3 + i)).astype(np.float32) for i, m in enumerate(MODALITIES)}
        lengths = {m: rng.integers(1, features[m].shape[1] + 1, n).astype(np.int64) for m in MODALITIES}
        splits[split] = SplitData(
            ids=np.array([f"{split}{i}" for i in range(n)]), features=features, lengths=lengths,
            labels=rng.uniform(-1, 1, n).astype(np.float32), raw_text=[f"这是 {i}" for i in range(n)],
            unimodal_labels={"L": rng.uniform(-1, 1, n).astype(np.float32)})
    return DatasetBundle("toy", splits, "synthetic", "0" * 64, "unit test", (-1.0, 1.0))


@pytest.fixture
def feature_file(tmp_path):
    path = tmp_path / "unaligned_39.pkl"
    write_mmsa_pickle(make_bundle(), path)
    return path


def _entries(cache_dir):
    features = cache_dir / "features"
    return sorted(p.name for p in features.iterdir()) if features.is_dir() else []


# ----------------------------------------------------------------------------------------------- sha256

def test_file_sha256_is_the_streamed_digest_and_is_memoised(tmp_path, monkeypatch):
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    monkeypatch.setattr(files, "_HASH_CHUNK", 1024 * 1024)  # several chunks
    memo_dir = tmp_path / "memo"
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_sha256(path, memo_dir=memo_dir) == expected
    (memo_file,) = memo_dir.iterdir()
    memo = json.loads(memo_file.read_text())
    assert memo["sha256"] == expected and memo["size"] == path.stat().st_size and "mtime_ns" in memo
    # A memo for the same path, size and mtime is trusted (no rehash of a multi-GB file) ...
    memo_file.write_text(json.dumps({**memo, "sha256": "a" * 64}))
    assert file_sha256(path, memo_dir=memo_dir) == "a" * 64
    # ... and ignored once the file changes.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert file_sha256(path, memo_dir=memo_dir) == expected


def test_file_sha256_works_when_the_memo_cannot_be_written(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"abc")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert file_sha256(path, memo_dir=blocker / "memo") == hashlib.sha256(b"abc").hexdigest()


# ------------------------------------------------------------------------------------------------ cache

def test_first_load_converts_and_later_loads_are_read_only_memmaps_without_unpickling(
        tmp_path, feature_file, monkeypatch):
    cache_dir = tmp_path / "cache"
    direct = read_feature_file(feature_file)
    first = load_feature_file_cached(feature_file, cache_dir=cache_dir)
    assert _entries(cache_dir) == [f"{direct.source_sha256}-v{CACHE_VERSION}"]

    def no_unpickling(*args, **kwargs):
        raise AssertionError("a cached load must not unpickle the file")

    monkeypatch.setattr(cache, "safe_load", no_unpickling)
    later = load_feature_file_cached(feature_file, cache_dir=cache_dir)
    for bundle in (first, later):
        assert bundle.source_sha256 == direct.source_sha256 and bundle.provenance == "real"
        for split in SPLITS:
            got, want = bundle.splits[split], direct.splits[split]
            for modality in MODALITIES:
                array = got.features[modality]
                assert isinstance(array, np.memmap) and not array.flags.writeable
                np.testing.assert_array_equal(array, want.features[modality])
                np.testing.assert_array_equal(got.lengths[modality], want.lengths[modality])
            np.testing.assert_array_equal(got.labels, want.labels)
            np.testing.assert_array_equal(got.text_bert, want.text_bert)
            np.testing.assert_array_equal(got.unimodal_labels["L"], want.unimodal_labels["L"])
            assert list(got.ids) == list(want.ids) and got.raw_text == want.raw_text


def test_cache_holds_no_pickled_objects(tmp_path, feature_file):
    cache_dir = tmp_path / "cache"
    load_feature_file_cached(feature_file, cache_dir=cache_dir)
    arrays = list((cache_dir / "features").rglob("*.npy"))
    assert len(arrays) >= 3 * 8
    for array_file in arrays:
        np.load(array_file, allow_pickle=False)  # raises if an object array slipped in


def test_registry_warnings_are_given_on_cached_loads_too(tmp_path, feature_file):
    cache_dir = tmp_path / "cache"
    for _ in range(2):
        with pytest.warns(DataFormatWarning) as record:
            bundle = load_feature_file_cached(feature_file, cache_dir=cache_dir, spec=get_spec("sims"),
                                              name="sims")
        messages = [str(w.message) for w in record]
        assert f"{feature_file}: split 'train' has 12 samples, expected 1368 (SIMS)" in messages
        assert any("feature dim of V (vision) is 4, expected 709 (SIMS unaligned)" in m for m in messages)
        assert bundle.name == "sims" and bundle.label_range == (-1.0, 1.0)


def test_a_failed_conversion_leaves_no_half_cache(tmp_path, feature_file, monkeypatch):
    cache_dir = tmp_path / "cache"
    real_save = cache._save_split

    def save_then_die(data, folder):
        if folder.name == "valid":
            raise KeyboardInterrupt("killed during conversion")
        return real_save(data, folder)

    monkeypatch.setattr(cache, "_save_split", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        load_feature_file_cached(feature_file, cache_dir=cache_dir)
    assert _entries(cache_dir) == []  # neither an entry nor its temporary folder
    monkeypatch.setattr(cache, "_save_split", real_save)
    bundle = load_feature_file_cached(feature_file, cache_dir=cache_dir)
    assert len(bundle.splits["valid"]) == 5 and len(_entries(cache_dir)) == 1


def test_a_killed_conversions_temporary_folder_is_never_read_and_is_cleaned_when_stale(tmp_path, feature_file):
    cache_dir = tmp_path / "cache"
    sha256 = file_sha256(feature_file, memo_dir=cache_dir / "sha256")
    stale = cache_dir / "features" / f".tmp-{sha256[:16]}-killed"
    (stale / "train").mkdir(parents=True)
    (stale / "train" / "labels.npy").write_bytes(b"half written")
    old = time.time() - 2 * cache._STALE_TMP_SECONDS
    os.utime(stale, (old, old))
    bundle = load_feature_file_cached(feature_file, cache_dir=cache_dir)
    assert len(bundle.splits["train"]) == 12
    assert not stale.exists() and _entries(cache_dir) == [f"{sha256}-v{CACHE_VERSION}"]


def test_an_unsafe_file_leaves_no_cache_entry(tmp_path):
    import pickle

    target = tmp_path / "created.txt"

    class Evil:
        def __reduce__(self):
            return (open, (str(target), "w"))

    path = tmp_path / "aligned_50.pkl"
    path.write_bytes(pickle.dumps({"train": Evil()}))
    cache_dir = tmp_path / "cache"
    with pytest.raises(UnsafePickleError):
        load_feature_file_cached(path, cache_dir=cache_dir)
    assert not target.exists() and _entries(cache_dir) == []


def test_malformed_file_error_passes_through_the_cache(tmp_path, feature_file):
    feature_file.write_bytes(feature_file.read_bytes()[:200])
    with pytest.raises(DataFormatError, match="truncated"):
        load_feature_file_cached(feature_file, cache_dir=tmp_path / "cache")


def test_an_unwritable_cache_falls_back_to_a_direct_read_with_a_warning(tmp_path, feature_file):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.warns(DataFormatWarning, match="cannot write the feature cache"):
        bundle = load_feature_file_cached(feature_file, cache_dir=blocker / "cache")
    assert len(bundle.splits["test"]) == 6
    assert not isinstance(bundle.splits["test"].features["L"], np.memmap)


def test_a_changed_file_gets_a_new_entry(tmp_path, feature_file):
    cache_dir = tmp_path / "cache"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = load_feature_file_cached(feature_file, cache_dir=cache_dir)
    write_mmsa_pickle(make_bundle(seed=1), feature_file)
    stat = feature_file.stat()
    os.utime(feature_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    second = load_feature_file_cached(feature_file, cache_dir=cache_dir)
    assert first.source_sha256 != second.source_sha256 and len(_entries(cache_dir)) == 2
    assert not np.array_equal(first.splits["train"].labels, second.splits["train"].labels)
