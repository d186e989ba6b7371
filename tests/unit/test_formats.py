"""MMSA / MulT feature pickles: content detection, round trips, registry warnings, clear errors, inspect."""
from __future__ import annotations

import hashlib
import pickle
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mmbench.constants import MODALITIES, SPLITS
from mmbench.data.formats import (
    MMSA_KEYS,
    DataFormatError,
    DataFormatWarning,
    detect_format,
    read_feature_file,
)
from mmbench.data.writers import write_mmsa_pickle, write_mult_pickle
from mmbench.data.inspect import describe_bundle, known_copy_status
from mmbench.data.registry import KnownCopy, get_spec
from mmbench.data.safe_pickle import UnsafePickleError, safe_load
from mmbench.data.types import DatasetBundle, SplitData

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
DIMS = {"L": 12, "V": 6, "A": 4}
SEQ = {"L": 8, "V": 10, "A": 12}
SIZES = {"train": 20, "valid": 7, "test": 9}


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path, monkeypatch):
    """Keep sha256 memos out of the user's ~/.cache."""
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path / "mmbench-data"))


def make_split(n: int, rng: np.random.Generator, prefix: str, *, unimodal: bool = False) -> SplitData:
    """Features zero past each length, the last valid row non-zero (so MulT lengths are recoverable)."""
    features, lengths = {}, {}
    for modality in MODALITIES:
        lengths[modality] = rng.integers(1, SEQ[modality] + 1, n).astype(np.int64)
        valid = np.arange(SEQ[modality])[None, :] < lengths[modality][:, None]
        values = rng.normal(size=(n, SEQ[modality], DIMS[modality])) + 5.0
        features[modality] = (values * valid[..., None]).astype(np.float32)
    labels = (np.round(rng.uniform(-3, 3, n) * 3) / 3).astype(np.float32)
    labels[:2] = 0.0  # MMSA labels are often exactly 0
    return SplitData(
        ids=np.array([f"{prefix}vid$_${i}" for i in range(n)]), features=features, lengths=lengths,
        labels=labels, raw_text=[f"{prefix} sentence {i}" for i in range(n)],
        unimodal_labels={m: np.clip(labels + m_index, -3, 3).astype(np.float32)
                         for m_index, m in enumerate("LAV")} if unimodal else {},
    )


def make_bundle(*, seed: int = 0, unimodal: bool = False) -> DatasetBundle:
    rng = np.random.default_rng(seed)
    splits = {split: make_split(n, rng, split[:2], unimodal=unimodal) for split, n in SIZES.items()}
    return DatasetBundle("toy", splits, "synthetic", "0" * 64, "unit test", (-3.0, 3.0))


def _mmsa_dict(bundle: DatasetBundle, tmp_path: Path) -> dict:
    path = tmp_path / "source.pkl"
    write_mmsa_pickle(bundle, path)
    return safe_load(path)


def _dump(content: object, path: Path) -> Path:
    with open(path, "wb") as handle:
        pickle.dump(content, handle, protocol=4)
    return path


def _assert_same_splits(loaded: DatasetBundle, original: DatasetBundle, *, mult: bool = False) -> None:
    for split in SPLITS:
        got, want = loaded.splits[split], original.splits[split]
        np.testing.assert_array_equal(got.ids, want.ids)
        np.testing.assert_array_equal(got.labels, want.labels)
        for modality in MODALITIES:
            np.testing.assert_array_equal(got.features[modality], want.features[modality])
            assert got.features[modality].dtype == np.float32
            np.testing.assert_array_equal(got.lengths[modality], want.lengths[modality])
            assert got.lengths[modality].dtype == np.int64
        assert got.raw_text == (None if mult else want.raw_text)


# ----------------------------------------------------------------------------------------- round trips

def test_mmsa_round_trip_keeps_every_array_and_records_the_file_sha256(tmp_path):
    bundle = make_bundle()
    path = tmp_path / "aligned_50.pkl"
    write_mmsa_pickle(bundle, path)
    loaded = read_feature_file(path)
    _assert_same_splits(loaded, bundle)
    assert loaded.provenance == "real" and loaded.label_range == (-3.0, 3.0)
    assert loaded.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.name == "aligned_50" and read_feature_file(path, name="mine").name == "mine"
    assert loaded.splits["train"].text_bert.shape == (SIZES["train"], 3, SEQ["L"])


def test_mmsa_writer_uses_exactly_mmsa_keys_dtypes_and_layout(tmp_path):
    bundle = make_bundle()
    content = _mmsa_dict(bundle, tmp_path)
    assert set(content) == set(SPLITS)
    train, labels = content["train"], bundle.splits["train"].labels
    assert set(train) == set(MMSA_KEYS)
    assert train["text"].dtype == np.float32 and train["text"].shape == (20, SEQ["L"], DIMS["L"])
    assert train["audio"].shape == (20, SEQ["A"], DIMS["A"]) and train["vision"].dtype == np.float32
    assert train["id"].dtype == object and train["raw_text"].dtype == object
    assert isinstance(train["id"][0], str) and train["id"][0] == "trvid$_$0"
    assert train["text_bert"].shape == (20, 3, SEQ["L"]) and train["text_bert"].dtype.kind == "i"
    expected_class = np.where(labels > 0, 2, np.where(labels < 0, 0, 1))
    np.testing.assert_array_equal(train["classification_labels"], expected_class)
    expected_annotation = np.where(labels > 0, "Positive", np.where(labels < 0, "Negative", "Neutral"))
    assert list(train["annotations"]) == list(expected_annotation)
    np.testing.assert_array_equal(train["audio_lengths"], bundle.splits["train"].lengths["A"])


def test_made_up_text_bert_is_plausible_and_its_mask_gives_the_text_length(tmp_path):
    bundle = make_bundle()
    text_bert = _mmsa_dict(bundle, tmp_path)["train"]["text_bert"]
    token_ids, mask, segments = text_bert[:, 0], text_bert[:, 1], text_bert[:, 2]
    lengths = bundle.splits["train"].lengths["L"]
    np.testing.assert_array_equal(mask.sum(axis=1), lengths)
    assert (token_ids[:, 0] == 101).all() and (segments == 0).all()
    for row, length in enumerate(lengths):
        if length >= 2:
            assert token_ids[row, length - 1] == 102
            inner = token_ids[row, 1:length - 1]
            assert ((inner >= 1000) & (inner < 30000)).all()
        assert (token_ids[row, length:] == 0).all()


def test_sims_unimodal_labels_round_trip(tmp_path):
    bundle = make_bundle(unimodal=True)
    path = tmp_path / "unaligned_39.pkl"
    write_mmsa_pickle(bundle, path)
    content = safe_load(path)
    assert {"regression_labels_T", "regression_labels_A", "regression_labels_V"} <= set(content["test"])
    loaded = read_feature_file(path)
    for modality in MODALITIES:
        np.testing.assert_array_equal(loaded.splits["test"].unimodal_labels[modality],
                                      bundle.splits["test"].unimodal_labels[modality])


def test_mult_round_trip_recovers_lengths_from_trailing_zero_rows(tmp_path):
    bundle = make_bundle()
    path = tmp_path / "mosi_data.pkl"
    write_mult_pickle(bundle, path)
    content = safe_load(path)
    assert set(content["valid"]) == {"text", "vision", "audio", "labels", "id"}
    assert content["valid"]["labels"].shape == (SIZES["valid"], 1, 1)
    _assert_same_splits(read_feature_file(path), bundle, mult=True)


def test_mult_all_zero_sample_keeps_one_step_and_two_column_ids_are_joined(tmp_path):
    content = {split: {
        "text": np.zeros((2, 4, 3), np.float32), "vision": np.ones((2, 5, 2), np.float64),
        "audio": np.ones((2, 6, 2), np.float32), "labels": np.array([[[1.0]], [[-2.0]]]),
        "id": np.array([[f"{split}A", "3"], [f"{split}B", "7"]]),
    } for split in SPLITS}
    content["train"]["text"][1, :2] = 1.0
    loaded = read_feature_file(_dump(content, tmp_path / "mosei_senti_data.pkl"))
    train = loaded.splits["train"]
    assert list(train.ids) == ["trainA_3", "trainB_7"]
    assert list(train.lengths["L"]) == [1, 2]  # all-zero sample keeps one step
    assert list(train.lengths["V"]) == [5, 5] and train.features["V"].dtype == np.float32
    np.testing.assert_array_equal(train.labels, [1.0, -2.0])


def test_format_is_detected_by_content_not_by_file_name(tmp_path):
    bundle = make_bundle()
    mult_named_like_mmsa = tmp_path / "aligned_50.pkl"
    write_mult_pickle(bundle, mult_named_like_mmsa)
    assert detect_format(safe_load(mult_named_like_mmsa), mult_named_like_mmsa) == "mult"
    mmsa_named_like_mult = tmp_path / "mosi_data.pkl"
    write_mmsa_pickle(bundle, mmsa_named_like_mult)
    assert detect_format(safe_load(mmsa_named_like_mult), mmsa_named_like_mult) == "mmsa"
    assert read_feature_file(mmsa_named_like_mult).source.endswith("(mmsa format)")


def test_audio_minus_inf_becomes_zero_silently_and_nan_features_warn(tmp_path):
    content = _mmsa_dict(make_bundle(), tmp_path)
    content["train"]["audio"][0, 0, :2] = -np.inf
    path = _dump(content, tmp_path / "inf.pkl")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # -inf audio is MMSA's known artefact: no warning
        loaded = read_feature_file(path)
    assert (loaded.splits["train"].features["A"][0, 0, :2] == 0).all()
    content["valid"]["vision"][1, 0, 0] = np.nan
    with pytest.warns(DataFormatWarning, match=r"split 'valid', field 'vision': 1 NaN"):
        loaded = read_feature_file(_dump(content, tmp_path / "nan.pkl"))
    assert loaded.splits["valid"].features["V"][1, 0, 0] == 0


# ------------------------------------------------------------------------------------ registry checks

def test_disagreement_with_the_registry_warns_naming_each_field(tmp_path):
    path = tmp_path / "aligned_50.pkl"
    write_mmsa_pickle(make_bundle(), path)
    with pytest.warns(DataFormatWarning) as record:
        loaded = read_feature_file(path, spec=get_spec("mosi"))
    messages = [str(w.message) for w in record]
    assert f"{path}: split 'train' has 20 samples, expected 1284 (MOSI)" in messages
    assert any("feature dim of V (vision) is 6, expected 20 (MOSI aligned)" in m for m in messages)
    assert any("sequence length of A (audio) is 12, expected 50" in m for m in messages)
    assert loaded.name == "mosi" and loaded.language == "en"


def test_a_file_matching_the_registry_gives_no_warning(tmp_path):
    spec = get_spec("mosi")
    fake_spec = replace(spec, split_sizes=dict(SIZES), variants={
        "aligned": replace(spec.variants["aligned"], dims=dict(DIMS), seq_lens=dict(SEQ))})
    path = tmp_path / "aligned_50.pkl"
    write_mmsa_pickle(make_bundle(), path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_feature_file(path, spec=fake_spec)


def test_a_file_read_as_sims_takes_its_label_range_and_language(tmp_path):
    bundle = make_bundle(unimodal=True)
    for data in bundle.splits.values():  # into CH-SIMS's [-1, 1]; out-of-range labels are refused
        data.labels = data.labels / 3
        data.unimodal_labels = {m: v / 3 for m, v in data.unimodal_labels.items()}
    path = tmp_path / "unaligned_39.pkl"
    write_mmsa_pickle(bundle, path)
    with pytest.warns(DataFormatWarning):  # sizes and dims differ from the registry's
        loaded = read_feature_file(path, spec=get_spec("sims"))
    assert loaded.label_range == (-1.0, 1.0) and loaded.language == "zh"


# ------------------------------------------------------------------------------------------- bad input

def _break(field_change):
    def apply(content):
        field_change(content["valid"])
        return content
    return apply


BAD_INPUTS = {
    "missing key": (_break(lambda split: split.pop("audio")), "'audio'", "missing key"),
    "wrong rank": (_break(lambda split: split.update(vision=split["vision"][:, 0])), "'vision'", "3-d array"),
    "nan labels": (_break(lambda split: split["regression_labels"].__setitem__(3, np.nan)),
                   "'regression_labels'", "NaN"),
    "modalities disagree": (_break(lambda split: split.update(text=split["text"][:-1])), "'text'",
                            "6 samples but the labels have 7"),
    "lengths count": (_break(lambda split: split.update(audio_lengths=split["audio_lengths"][:3])),
                      "'audio_lengths'", "3 entries"),
    "bad text_bert": (_break(lambda split: split.update(text_bert=split["text_bert"][:, :2])), "'text_bert'",
                      "(N=7, 3, T)"),
    "ids count": (_break(lambda split: split.update(id=split["id"][:2])), "'id'", "ids"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_names_the_file_the_split_and_the_field(tmp_path, case):
    change, field, problem = BAD_INPUTS[case]
    path = _dump(change(_mmsa_dict(make_bundle(), tmp_path)), tmp_path / "bad.pkl")
    with pytest.raises(DataFormatError) as caught:
        read_feature_file(path)
    message = str(caught.value)
    assert str(path) in message and "split 'valid'" in message and field in message and problem in message
    assert not isinstance(caught.value, KeyError)


def test_truncated_feature_file_is_a_data_format_error(tmp_path):
    path = tmp_path / "aligned_50.pkl"
    write_mmsa_pickle(make_bundle(), path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataFormatError, match="truncated"):
        read_feature_file(path)


def test_missing_split_and_unknown_layout_are_clear_errors(tmp_path):
    content = _mmsa_dict(make_bundle(), tmp_path)
    del content["test"]
    with pytest.raises(DataFormatError, match=r"missing split\(s\) \['test'\]"):
        read_feature_file(_dump(content, tmp_path / "no_test.pkl"))
    odd = {split: {"features": np.zeros((2, 3, 4))} for split in SPLITS}
    with pytest.raises(DataFormatError, match="matches neither format"):
        read_feature_file(_dump(odd, tmp_path / "odd.pkl"))


def test_real_python2_pickle_is_not_a_feature_file():
    audio_pickle = (SHARED_DATA / "mosi" / "declare-lab_contextual-utterance-level-multimodal-sentiment-analysis"
                    / "input" / "audio.pickle")
    assert audio_pickle.is_file(), f"real data file missing: {audio_pickle}"
    with pytest.raises(DataFormatError, match="expected a dict with splits"):
        read_feature_file(audio_pickle)


def test_dims_that_differ_between_splits_are_an_error(tmp_path):
    content = _mmsa_dict(make_bundle(), tmp_path)
    content["test"]["vision"] = content["test"]["vision"][:, :, :3]
    with pytest.raises(DataFormatError, match=r"split 'test', field 'vision': feature dim 3 differs"):
        read_feature_file(_dump(content, tmp_path / "dims.pkl"))


def test_lengths_outside_the_sequence_are_clipped_with_a_warning(tmp_path):
    content = _mmsa_dict(make_bundle(), tmp_path)
    content["train"]["vision_lengths"][:3] = [0, SEQ["V"] + 5, 2]
    with pytest.warns(DataFormatWarning, match=r"field 'vision_lengths': 2 length\(s\) outside \[1, 10\]"):
        loaded = read_feature_file(_dump(content, tmp_path / "lengths.pkl"))
    assert list(loaded.splits["train"].lengths["V"][:3]) == [1, SEQ["V"], 2]


def test_a_crafted_feature_file_is_refused_before_anything_runs(tmp_path):
    target = tmp_path / "created.txt"

    class Evil:
        def __reduce__(self):
            return (open, (str(target), "w"))

    path = _dump({"train": {"regression_labels": Evil()}}, tmp_path / "aligned_50.pkl")
    with pytest.raises(UnsafePickleError, match="aligned_50.pkl"):
        read_feature_file(path)
    assert not target.exists()


# ---------------------------------------------------------------------------------------------- inspect

def _spec_with_copy(path: Path, *, file: str, size: int | None = None, sha256: str | None = None):
    content = path.read_bytes()
    copy = KnownCopy(file, size if size is not None else len(content),
                     sha256 or hashlib.sha256(content).hexdigest(), "a test repository")
    return replace(get_spec("mosi"), known_copies=(copy,))


def test_known_copy_status_matches_differs_or_has_none(tmp_path):
    path = tmp_path / "aligned_50.pkl"
    write_mmsa_pickle(make_bundle(), path)
    assert "matches the public copy aligned_50.pkl" in known_copy_status(path, _spec_with_copy(path, file=path.name))
    with pytest.warns(DataFormatWarning, match="differs from the public copy"):
        status = known_copy_status(path, _spec_with_copy(path, file=path.name, sha256="f" * 64))
    assert status.startswith("aligned_50.pkl: differs") and "sha256" in status
    with pytest.warns(DataFormatWarning, match="size"):
        assert "differs" in known_copy_status(path, _spec_with_copy(path, file=path.name, size=12))
    assert "no known public copy" in known_copy_status(path, get_spec("mosei"))
    other_name = _spec_with_copy(path, file="unaligned_50.pkl", size=12)
    assert "no known public copy" in known_copy_status(path, other_name)


def test_describe_bundle_reports_sizes_dims_label_statistics_and_sha(tmp_path):
    path = tmp_path / "aligned_50.pkl"
    write_mmsa_pickle(make_bundle(unimodal=True), path)
    bundle = read_feature_file(path)
    text = describe_bundle(bundle)
    labels = bundle.splits["valid"].labels
    assert bundle.source_sha256 in text and "provenance: real" in text
    assert "feature dims: L 12, V 6, A 4" in text and "sequence lengths: L 8, V 10, A 12" in text
    valid_row = next(line for line in text.splitlines() if line.strip().startswith("valid "))
    numbers = [float(x) for x in valid_row.split()[1:]]
    assert numbers[0] == 7
    assert numbers[1] == pytest.approx(labels.mean(), abs=1e-3)
    assert numbers[-1] == pytest.approx(np.mean(labels == 0), abs=1e-3)
    assert "unimodal labels LVA" in text
