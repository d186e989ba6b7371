"""The synthetic generator: MMSA shapes, label grids, determinism, and the signal structure that makes
the benchmark question meaningful (measured with ridge regressions on time-averaged features)."""
from __future__ import annotations

import hashlib
import inspect
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score

from mmbench.constants import MODALITIES, SPLITS
from mmbench.data.registry import get_spec
from mmbench.data.synthetic import (
    FAMILY_VARIANT,
    GENERATOR_VERSION,
    SMALL_SIZES,
    _NEGATIVE,
    _POSITIVE,
    generate_bundle,
    synth_sentence,
    synthesize_features,
)
from mmbench.data.types import DatasetBundle

FAMILIES = ("mosi", "mosei", "sims")
GRID_DEN = {"mosi": 5, "mosei": 3, "sims": 5}


@pytest.fixture(scope="module")
def bundles() -> dict[str, DatasetBundle]:
    return {family: generate_bundle(family) for family in FAMILIES}


def _digest(bundle: DatasetBundle) -> str:
    sha = hashlib.sha256()
    for split in SPLITS:
        data = bundle.splits[split]
        for m in MODALITIES:
            sha.update(data.features[m].tobytes())
            sha.update(data.lengths[m].tobytes())
        sha.update(data.labels.tobytes())
        sha.update(data.text_bert.tobytes())
        sha.update("\n".join(data.raw_text).encode())
        sha.update("\n".join(data.ids).encode())
    return sha.hexdigest()


def _time_average(features: np.ndarray, lengths: np.ndarray, start: float = 0.0, stop: float = 1.0) -> np.ndarray:
    """(N, D) mean over the valid steps in [start * l, stop * l) of each sample."""
    steps = np.arange(features.shape[1])[None, :]
    lo, hi = np.floor(start * lengths)[:, None], np.ceil(stop * lengths)[:, None]
    window = ((steps >= lo) & (steps < hi)).astype(np.float32)
    return (features * window[:, :, None]).sum(1) / window.sum(1, keepdims=True)


def _ridge_r2(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    model = RidgeCV(alphas=np.logspace(-1, 4, 6)).fit((x_train - mean) / std, y_train)
    return float(r2_score(y_test, model.predict((x_test - mean) / std), multioutput="variance_weighted"))


# ---------------------------------------------------------------- format


@pytest.mark.parametrize("family", FAMILIES)
def test_bundle_has_mmsa_dims_lengths_and_sizes(bundles, family):
    bundle = bundles[family]
    variant = get_spec(family).variants[FAMILY_VARIANT[family]]
    assert bundle.name == f"{family}-synth" and bundle.provenance == "synthetic"
    assert bundle.dims() == variant.dims and bundle.seq_lens() == variant.seq_lens
    assert bundle.label_range == get_spec(family).label_range
    for split in SPLITS:
        data = bundle.splits[split]
        assert len(data) == SMALL_SIZES[split]
        for m in MODALITIES:
            feats, lengths = data.features[m], data.lengths[m]
            assert feats.dtype == np.float32 and lengths.dtype == np.int64
            t_max = variant.seq_lens[m]
            assert lengths.min() >= (t_max + 1) // 2 and lengths.max() <= t_max
            assert len(np.unique(lengths)) > 5  # variable lengths, not all padded alike
            padding = np.arange(t_max)[None, :] >= lengths[:, None]
            assert not feats[padding].any(), f"{split}/{m}: non-zero padding"
            assert (np.abs(feats[~padding]).sum(-1) > 0).all(), f"{split}/{m}: zero valid step"


def test_aligned_families_share_lengths_and_sims_does_not(bundles):
    for family in ("mosi", "mosei"):
        lengths = bundles[family].splits["train"].lengths
        assert np.array_equal(lengths["L"], lengths["V"]) and np.array_equal(lengths["L"], lengths["A"])
    sims = bundles["sims"].splits["train"].lengths
    assert abs(np.corrcoef(sims["V"], sims["A"])[0, 1]) < 0.2  # unaligned: drawn per modality


@pytest.mark.parametrize("family", FAMILIES)
def test_labels_on_grid_in_range_with_zeros_and_symmetric(bundles, family):
    labels = np.concatenate([bundles[family].splits[s].labels for s in SPLITS])
    low, high = get_spec(family).label_range
    assert labels.dtype == np.float32 and labels.min() >= low and labels.max() <= high
    steps = labels.astype(np.float64) * GRID_DEN[family]
    assert np.allclose(steps, np.rint(steps), atol=1e-5), "labels off the family's grid"
    assert 0.03 <= np.mean(labels == 0) <= 0.13
    positive, negative = np.mean(labels > 0), np.mean(labels < 0)
    assert abs(positive - negative) < 0.08
    assert abs(float(np.median(labels))) <= high / 6
    assert len(np.unique(labels)) >= 2 * high * GRID_DEN[family] - 2  # the grid is used, not a few values


def test_sims_has_unimodal_labels_and_mosi_none(bundles):
    sims = bundles["sims"].splits["train"]
    assert set(sims.unimodal_labels) == set(MODALITIES)
    for m, uni in sims.unimodal_labels.items():
        assert uni.shape == sims.labels.shape and np.abs(uni).max() <= 1.0
        assert np.allclose(uni * 5, np.rint(uni * 5), atol=1e-5)
        assert 0.6 < np.corrcoef(uni, sims.labels)[0, 1] < 0.98, m
    assert bundles["mosi"].splits["train"].unimodal_labels == {}


def test_ids_are_video_grouped_and_videos_stay_in_one_split(bundles):
    bundle = bundles["mosi"]
    all_ids = np.concatenate([bundle.splits[s].ids for s in SPLITS])
    assert len(set(all_ids)) == len(all_ids)
    assert all(re.fullmatch(r"synth_v\d{4}\$_\$\d+", i) for i in all_ids)
    videos = {s: {i.split("$_$")[0] for i in bundle.splits[s].ids} for s in SPLITS}
    assert not videos["train"] & videos["valid"] and not videos["train"] & videos["test"]
    assert len(videos["train"]) < SMALL_SIZES["train"] / 5  # several segments per video


@pytest.mark.parametrize("family", FAMILIES)
def test_text_bert_follows_mmsa_layout(bundles, family):
    data = bundles[family].splits["valid"]
    ids, mask, segments = data.text_bert[:, 0], data.text_bert[:, 1], data.text_bert[:, 2]
    t_max = get_spec(family).variants[FAMILY_VARIANT[family]].seq_lens["L"]
    assert data.text_bert.shape == (len(data), 3, t_max) and data.text_bert.dtype == np.int64
    lengths = data.lengths["L"]
    rows = np.arange(len(data))
    assert (ids[:, 0] == 101).all() and (ids[rows, lengths - 1] == 102).all()
    assert np.array_equal(mask, (np.arange(t_max)[None, :] < lengths[:, None]).astype(np.int64))
    assert not segments.any() and not ids[mask == 0].any()
    inner = (np.arange(t_max)[None, :] >= 1) & (np.arange(t_max)[None, :] < lengths[:, None] - 1)
    assert ids[inner].min() >= 1000 and ids[inner].max() < 30000


def test_raw_text_sentiment_words_follow_the_label(bundles):
    data = bundles["mosi"].splits["train"]
    assert len(data.raw_text) == len(data) and all(isinstance(t, str) and t for t in data.raw_text)
    positive = set().union(*_POSITIVE)
    negative = set().union(*_NEGATIVE)

    def share(words: set[str], mask: np.ndarray) -> float:
        texts = [t for t, keep in zip(data.raw_text, mask) if keep]
        return np.mean([bool(words & set(t.split())) for t in texts])

    assert share(positive, data.labels >= 1.5) > 0.85 and share(negative, data.labels <= -1.5) > 0.85
    assert share(negative, data.labels >= 1.5) < 0.05 and share(positive, data.labels <= -1.5) < 0.05
    strong = {"really", "extremely", "incredibly", "so"}
    assert share(strong, np.abs(data.labels) >= 2.4) > 0.5 > share(strong, np.abs(data.labels) <= 0.6)


def test_synth_sentence_neutral_and_intensity():
    rng = np.random.default_rng(3)
    neutral = synth_sentence(0.0, (-1, 1), rng)
    assert not (set(neutral.split()) & set().union(*_POSITIVE, *_NEGATIVE))
    for _ in range(20):
        assert set(synth_sentence(-0.95, (-1, 1), rng).split()) & set(_NEGATIVE[2])
        assert set(synth_sentence(0.2, (-1, 1), rng).split()) & set(_POSITIVE[0])


# ---------------------------------------------------------------- determinism and provenance


def test_same_seed_same_bytes_in_another_process(bundles):
    code = ("from __future__ import annotations\nimport hashlib\nfrom mmbench.constants import MODALITIES, SPLITS\n"
            "from mmbench.data.synthetic import generate_bundle\n" + inspect.getsource(_digest)
            + "\nprint(_digest(generate_bundle('mosi')))\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}  # other threading, same bytes
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == _digest(bundles["mosi"])
    assert _digest(generate_bundle("mosi")) == _digest(bundles["mosi"])


def test_other_seed_other_data_and_hash(bundles):
    other = generate_bundle("mosi", seed=1)
    assert _digest(other) != _digest(bundles["mosi"])
    assert other.source_sha256 != bundles["mosi"].source_sha256
    assert re.fullmatch(r"[0-9a-f]{64}", other.source_sha256)
    assert f"v{GENERATOR_VERSION}" in other.source and "mosi" in other.source and "seed=1" in other.source
    hashes = {b.source_sha256 for b in bundles.values()}
    assert len(hashes) == len(FAMILIES)


def test_full_size_uses_registry_split_sizes(bundles):
    bundle = generate_bundle("mosi", size="full")
    assert {s: len(bundle.splits[s]) for s in SPLITS} == get_spec("mosi").split_sizes
    assert bundle.source_sha256 != bundles["mosi"].source_sha256


def test_bad_family_or_size_is_refused():
    with pytest.raises(ValueError, match="family"):
        generate_bundle("iemocap")
    with pytest.raises(ValueError, match="size"):
        generate_bundle("mosi", size="huge")


# ---------------------------------------------------------------- synthesize_features


def test_synthesize_features_returns_only_given_modalities_and_uses_given_lengths():
    n = 40
    sentiment = np.linspace(-3, 3, n)
    text_lengths = np.arange(n) % 50 + 1
    kwargs = dict(label_range=(-3, 3), shared_factor=np.random.default_rng(9).standard_normal((n, 2)),
                  lengths={"V": text_lengths})
    feats, lengths = synthesize_features({"V": sentiment, "A": sentiment}, {"V": 20, "A": 5},
                                         {"V": 50, "A": 50}, rng=np.random.default_rng(0), **kwargs)
    assert set(feats) == set(lengths) == {"V", "A"}
    assert feats["V"].shape == (n, 50, 20) and feats["A"].shape == (n, 50, 5)
    assert np.array_equal(lengths["V"], text_lengths)
    assert lengths["A"].min() >= 25
    again, _ = synthesize_features({"V": sentiment, "A": sentiment}, {"V": 20, "A": 5}, {"V": 50, "A": 50},
                                   rng=np.random.default_rng(0), **kwargs)
    assert all(np.array_equal(feats[m], again[m]) for m in feats)


def test_synthesize_features_rejects_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="subset"):
        synthesize_features({"X": np.zeros(3)}, {"X": 2}, {"X": 4}, label_range=(-1, 1), rng=rng)
    with pytest.raises(ValueError, match="dims and seq_lens"):
        synthesize_features({"V": np.zeros(3)}, {}, {"V": 4}, label_range=(-1, 1), rng=rng)
    with pytest.raises(ValueError, match="lengths"):
        synthesize_features({"V": np.zeros(3)}, {"V": 2}, {"V": 4}, label_range=(-1, 1), rng=rng,
                            lengths={"V": np.array([1, 5, 2])})


# ---------------------------------------------------------------- signal structure


@pytest.fixture(scope="module")
def averaged(bundles):
    """family -> split -> modality -> (N, D) time-averaged features."""
    return {family: {split: {m: _time_average(b.splits[split].features[m], b.splits[split].lengths[m])
                             for m in MODALITIES} for split in ("train", "test")}
            for family, b in bundles.items()}


@pytest.mark.parametrize("family", FAMILIES)
def test_language_leads_and_all_three_beat_any_single(bundles, averaged, family):
    train, test = averaged[family]["train"], averaged[family]["test"]
    y_train, y_test = bundles[family].splits["train"].labels, bundles[family].splits["test"].labels
    r2 = {m: _ridge_r2(train[m], y_train, test[m], y_test) for m in MODALITIES}
    r2["LVA"] = _ridge_r2(np.hstack([train[m] for m in MODALITIES]), y_train,
                          np.hstack([test[m] for m in MODALITIES]), y_test)
    # measured (seed 0, small): mosi L .62 V .31 A .23 LVA .70; mosei .36 .17 .18 .52; sims .63 .35 .29 .69
    assert r2["L"] > 0.3
    assert r2["L"] > max(r2["V"], r2["A"]) + 0.1
    assert min(r2["V"], r2["A"]) > 0.04  # weaker, not useless
    assert r2["LVA"] > max(r2["L"], r2["V"], r2["A"]) + 0.02


@pytest.mark.parametrize("family", FAMILIES)
def test_each_modality_is_partly_predictable_from_the_other_two(averaged, family):
    train, test = averaged[family]["train"], averaged[family]["test"]
    for m in MODALITIES:
        others = [k for k in MODALITIES if k != m]
        r2 = _ridge_r2(np.hstack([train[k] for k in others]), train[m],
                       np.hstack([test[k] for k in others]), test[m])
        # measured (seed 0, small): .27 to .45 depending on family and modality
        assert 0.1 < r2 < 0.9, f"{family}/{m}: cross-modal R^2 {r2:.3f}"


def test_sentiment_sits_mid_sequence(bundles):
    data = {s: bundles["mosi"].splits[s] for s in ("train", "test")}
    r2 = {}
    for name, window in {"middle": (0.35, 0.65), "start": (0.0, 0.15)}.items():
        x = {s: _time_average(d.features["L"], d.lengths["L"], *window) for s, d in data.items()}
        r2[name] = _ridge_r2(x["train"], data["train"].labels, x["test"], data["test"].labels)
    assert r2["middle"] > r2["start"] + 0.2  # measured: .62 vs .17


def _bag_of_words_r2(train_text: list[str], y_train: np.ndarray, test_text: list[str], y_test: np.ndarray) -> float:
    """Test R^2 of a ridge on word and word-pair counts: a reader of the transcript alone."""
    vocabulary = CountVectorizer(ngram_range=(1, 2), token_pattern=r"[a-z]+").fit(train_text)
    x_train, x_test = (vocabulary.transform(t).toarray().astype(np.float64) for t in (train_text, test_text))
    model = RidgeCV(alphas=np.logspace(-2, 3, 6)).fit(x_train, y_train)
    return float(r2_score(y_test, model.predict(x_test)))


@pytest.mark.parametrize("family", FAMILIES)
def test_transcript_knows_no_more_of_the_label_than_the_language_features(bundles, averaged, family):
    """Only OMG-Agent reads raw_text: a cleaner transcript would hand it a fourth modality."""
    train, test = bundles[family].splits["train"], bundles[family].splits["test"]
    features_r2 = _ridge_r2(averaged[family]["train"]["L"], train.labels, averaged[family]["test"]["L"], test.labels)
    transcript_r2 = _bag_of_words_r2(train.raw_text, train.labels, test.raw_text, test.labels)
    # measured (seed 0, small), transcript vs features: mosi .51 / .62, mosei .31 / .36, sims .56 / .63
    # (generator v1, whose transcript followed the label itself: .83, .65, .88)
    assert transcript_r2 <= features_r2 + 0.02, f"{family}: transcript {transcript_r2:.3f} > L {features_r2:.3f}"
    assert transcript_r2 > 0.15  # still something for a planner to read
