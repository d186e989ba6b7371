"""The four datasets built from real source files: ``mosi-bclstm``, ``mosi-text``, ``mosei-text``, ``sims2-synth``.

``mosi-bclstm`` (provenance ``real``): the utterance-level features of bc-LSTM (Poria et al., ACL 2017)
for all 2,199 MOSI segments: text 100-d (CNN), audio 73-d (openSMILE), video 100-d (3D-CNN), one time
step each, so features are (N, 1, D). Labels are the continuous sentiment in [-3, 3] of the official
``OpinionLevelSentiment.csv``, joined by segment id (the feature CSVs only hold binary labels; we check
that they equal ``label >= 0`` and that the ``.csd`` labels agree with the CSV). The split is the
features' own speaker-independent one, 62 training and 31 test videos: the features were learned on
that training split, so re-splitting by the SDK folds would leak test information into them.
Validation = the 10 training videos whose ids have the smallest ``sha1(video_id).hexdigest()``
(``VALID_VIDEOS``); deterministic and video-disjoint. Sizes: train 1,182 / valid 265 / test 752 (52 / 10 / 31 videos).
Because the extractors saw the training videos, the features shift on test (text variance per
dimension halves: 0.072 against 0.143 on train), which docs/datasets.md spells out.

``mosi-text`` / ``mosei-text`` (``semi-synthetic``): real transcripts, labels and official splits
(MOSI: ``transcripts.csv`` + ``OpinionLevelSentiment.csv`` + SDK folds, 1,284/229/686; MOSEI:
``label.csv`` whose ``mode`` is checked against the SDK folds, 16,274/1,861/4,653). Language is
``raw_text`` plus its all-MiniLM-L6-v2 embedding, (N, 1, 384). Vision and audio are drawn by the
synthetic generator's model (``mmbench.data.synthetic.synthesize_features``) from the real label, in
the dims of the family's MMSA ``aligned_50.pkl`` (MOSI V 20 / A 5, MOSEI V 35 / A 74) with T = 50, so
sequence models still see sequences; the shared style factor is mostly per video, as in the generator.

``sims2-synth`` (``semi-synthetic``): CH-SIMS v2(s) labels (multimodal ``y_true`` and unimodal
``label_T/A/V``) and the official split (2,722/647/1,034); the table has no features and no text, so
each modality is drawn from its own real unimodal label (T drives L), and modalities disagree where
the annotators' unimodal labels do. Dims are those of SIMS ``unaligned_39.pkl`` (L 768, V 709, A 33);
the padded lengths are cut from (39, 55, 400) to ``SIMS2_SEQ_LENS`` = (8, 10, 16), keeping their order
L < V < A, because the full lengths would take about 1.5 GB for 4,403 clips; at (8, 10, 16) it is 0.24 GB.

Every builder returns float32 labels, unique str ids and disjoint splits (checked). ``source_sha256``
is the sha256 of the lines ``"{relpath}:{sha256}\\n"`` of the source files, sorted by relative path.
The semi-synthetic features are fixed data: their Generator seed (``SEMI_SYNTHETIC_SEEDS``) does not
depend on the run's seed. No transcript here is drawn from a label (the generator's rule: a transcript
knows no more than the L features): the ``-text`` transcripts are real and L is their embedding;
``sims2-synth`` has none.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from mmbench.constants import MODALITIES, SPLITS
from mmbench.data import text_encoder
from mmbench.data.files import sha256_file
from mmbench.data.real import sources as src
from mmbench.data.real.readers import (csd_segment_labels, read_bclstm_feature_csv, read_bclstm_text_features,
                                       read_bclstm_transcripts, read_csd, read_mosei_label_table,
                                       read_opinion_labels_csv, read_sims2_table, read_std_folds)
from mmbench.data.registry import get_spec
from mmbench.data.safe_pickle import DataFormatError
from mmbench.data.synthetic import synthesize_features
from mmbench.data.types import DatasetBundle, SplitData

VALID_VIDEOS = 10  # mosi-bclstm: training videos moved to validation
SEMI_SYNTHETIC_SEQ_LEN = 50  # V/A padded length of mosi-text / mosei-text (MMSA aligned_50)
SIMS2_SEQ_LENS: dict[str, int] = {"L": 8, "V": 10, "A": 16}
SEMI_SYNTHETIC_SEEDS: dict[str, int] = {"mosi-text": 20240601, "mosei-text": 20240602, "sims2-synth": 20240603}
BCLSTM_DIMS: dict[str, int] = {"L": 100, "V": 100, "A": 73}
LABEL_TOLERANCE = 1e-5  # .csd vs .csv labels (float32 vs decimal text)
_FOLD_SPLIT = {"standard_train_fold": "train", "standard_valid_fold": "valid", "standard_test_fold": "test"}


def build_real(name: str, root: Path, *, cache_dir: Path) -> DatasetBundle:
    """Build the real dataset ``name`` from the source files under ``root``.

    Args:
        name: ``mosi-bclstm`` | ``mosi-text`` | ``mosei-text`` | ``sims2-synth``.
        root: the folder in the layout of ``shared/data`` (``<root>/mosi/<owner>_<repo>/...``),
            e.g. ``fetched_root(name, cache_dir)``.
        cache_dir: where computed artefacts (sentence embeddings) are cached.

    Returns:
        The DatasetBundle (splits train / valid / test).

    Raises:
        DataFormatError: a source file breaks its format, or an id does not join (names file and field).
        FileNotFoundError: a source file is absent under ``root``.
        KeyError: ``name`` is not a real dataset.
    """
    builders = {"mosi-bclstm": _build_mosi_bclstm, "mosi-text": _build_mosi_text,
                "mosei-text": _build_mosei_text, "sims2-synth": _build_sims2_synth}
    src.sources_of(name)  # unknown names fail here, listing the real datasets
    root = Path(root)
    splits, source = builders[name](root, Path(cache_dir))
    spec = get_spec(name)
    bundle = DatasetBundle(name=name, splits=splits, provenance=spec.provenance,  # type: ignore[arg-type]
                           source_sha256=source_sha256(name, root), source=source,
                           label_range=spec.label_range, language=spec.language)
    check_bundle(bundle)
    return bundle


def source_sha256(name: str, root: Path) -> str:
    """sha256 of ``"{relpath}:{sha256 of the file}\\n"`` over ``name``'s source files, sorted by relpath."""
    lines = [f"{s.relpath}:{sha256_file(_path(root, s.relpath))}\n" for s in src.sources_of(name)]
    return hashlib.sha256("".join(sorted(lines)).encode("utf-8")).hexdigest()


def check_bundle(bundle: DatasetBundle) -> None:
    """Ids unique across the dataset, labels float32, finite and in range, arrays aligned.

    Raises:
        DataFormatError: naming the dataset, split and field that break the contract.
    """
    seen: set[str] = set()
    low, high = bundle.label_range
    for split, data in bundle.splits.items():
        where = f"dataset {bundle.name!r}, split {split!r}"
        ids = set(data.ids.tolist())
        if len(ids) != len(data.ids) or ids & seen:
            raise DataFormatError(f"{where}, field 'ids': ids must be unique and splits disjoint")
        seen |= ids
        labels = data.labels
        if labels.dtype != np.float32 or not np.isfinite(labels).all() or labels.min() < low or labels.max() > high:
            raise DataFormatError(f"{where}, field 'labels': expected finite float32 in [{low}, {high}]")
        for m in MODALITIES:
            if data.features[m].dtype != np.float32 or len(data.features[m]) != len(labels):
                raise DataFormatError(f"{where}, field 'features[{m}]': expected ({len(labels)}, T, D) float32")


# ---------------------------------------------------------------- shared helpers


def _path(root: Path, relpath: str) -> Path:
    path = root / relpath
    if not path.is_file():
        raise FileNotFoundError(f"{path}: source file {relpath} not found under {root}; "
                                f"run `mmbench data fetch` for the dataset, or check --from / the data dir")
    return path


def video_of(segment_id: str) -> str:
    """The video id of a MOSI segment id ``<video>_<k>`` (video ids may themselves hold underscores).

    Not for MOSEI, whose clip ids hold an underscore too (``<video>_<start>_<frac>``).

    Example:
        >>> video_of("_dI--eQ6qVU_12")
        '_dI--eQ6qVU'
    """
    return segment_id.rsplit("_", 1)[0]


def validation_videos(train_videos: list[str], count: int = VALID_VIDEOS) -> list[str]:
    """The ``count`` videos whose ids have the smallest sha1 hex digest (deterministic, order-free).

    Example:
        >>> validation_videos(["b", "a", "c", "a"], count=2)  # sha1: c 84a5.., a 86f7.., b e9d7..
        ['c', 'a']
    """
    return sorted(set(train_videos), key=lambda v: hashlib.sha1(v.encode("utf-8")).hexdigest())[:count]


def _split_in_order(split: np.ndarray) -> np.ndarray:
    """Row order that makes each split contiguous (train, valid, test), keeping file order inside."""
    return np.concatenate([np.flatnonzero(split == s) for s in SPLITS])


def _slice_splits(data: SplitData, split: np.ndarray) -> dict[str, SplitData]:
    """Split ``data`` (rows already grouped by ``_split_in_order``) into views, no copies."""
    out, start = {}, 0
    for name in SPLITS:
        rows = slice(start, start + int((split == name).sum()))
        out[name] = SplitData(
            ids=data.ids[rows], features={m: data.features[m][rows] for m in MODALITIES},
            lengths={m: data.lengths[m][rows] for m in MODALITIES}, labels=data.labels[rows],
            raw_text=None if data.raw_text is None else data.raw_text[rows],
            unimodal_labels={m: v[rows] for m, v in data.unimodal_labels.items()})
        start = rows.stop
    return out


def _shared_factor(videos: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 3) style factor, mostly per video, variance 1 (the generator's speaker model)."""
    _, video_index = np.unique(videos, return_inverse=True)
    per_video = rng.standard_normal((int(video_index.max()) + 1, 3))
    return 0.8 * per_video[video_index] + 0.6 * rng.standard_normal((len(videos), 3))


def _synthetic(name: str, sentiment: dict[str, np.ndarray], dims: dict[str, int], seq_lens: dict[str, int],
               videos: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Features of the modalities in ``sentiment`` from the generator's model, fixed per dataset."""
    structure_rng, feature_rng = np.random.default_rng(SEMI_SYNTHETIC_SEEDS[name]).spawn(2)
    return synthesize_features(sentiment, {m: dims[m] for m in sentiment}, {m: seq_lens[m] for m in sentiment},
                               label_range=get_spec(name).label_range, rng=feature_rng,
                               shared_factor=_shared_factor(videos, structure_rng))


def _mosi_labels(root: Path, *, cross_check_csd: bool) -> dict[str, float]:
    """Segment id -> continuous sentiment from OpinionLevelSentiment.csv (optionally checked vs the .csd)."""
    table = read_opinion_labels_csv(_path(root, src.MOSI_OPINION_CSV))
    labels = dict(zip(table["id"], table["sentiment"].astype(float)))
    if cross_check_csd:
        csd_path = _path(root, src.MOSI_OPINION_CSD)
        csd = csd_segment_labels(read_csd(csd_path))
        if set(csd) != set(labels):
            extra = sorted(set(csd) ^ set(labels))[:3]
            raise DataFormatError(f"{csd_path}: segment ids differ from {src.MOSI_OPINION_CSV} (e.g. {extra})")
        worst = max(labels, key=lambda i: abs(labels[i] - csd[i]))
        if abs(labels[worst] - csd[worst]) > LABEL_TOLERANCE:
            raise DataFormatError(f"{csd_path}: field 'features' of segment {worst}: {csd[worst]} disagrees with "
                                  f"{src.MOSI_OPINION_CSV} 'sentiment' {labels[worst]}")
    return labels


def _join_labels(ids: list[str], labels: dict[str, float], ids_file: str, field: str) -> np.ndarray:
    missing = [i for i in ids if i not in labels]
    if missing:
        raise DataFormatError(f"{ids_file}: field {field!r}: id {missing[0]!r} (and {len(missing) - 1} more) "
                              f"has no label in {src.MOSI_OPINION_CSV}")
    return np.array([labels[i] for i in ids], dtype=np.float32)


# ---------------------------------------------------------------- mosi-bclstm


def _bclstm_split(root: Path, split: str, transcripts: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Ids and (N, D) features of one bc-LSTM split; the three CSVs' labels must agree row by row."""
    index, text = read_bclstm_text_features(_path(root, src.BCLSTM_TEXT[split]), BCLSTM_DIMS["L"])
    audio, audio_bin = read_bclstm_feature_csv(_path(root, src.BCLSTM_AUDIO[split]), BCLSTM_DIMS["A"])
    video, video_bin = read_bclstm_feature_csv(_path(root, src.BCLSTM_VIDEO[split]), BCLSTM_DIMS["V"])
    for relpath, rows in ((src.BCLSTM_AUDIO[split], len(audio)), (src.BCLSTM_VIDEO[split], len(video))):
        if rows != len(index):
            raise DataFormatError(f"{root / relpath}: expected {len(index)} rows (as {src.BCLSTM_TEXT[split]}), "
                                  f"found {rows}")
    if index.max() >= len(transcripts):
        raise DataFormatError(f"{root / src.BCLSTM_TEXT[split]}: field 'column 0': row index {index.max()} is "
                              f"beyond the {len(transcripts)} rows of {src.BCLSTM_TRANSCRIPTS}")
    binary = transcripts["binary_label"].to_numpy()[index]
    for relpath, found in ((src.BCLSTM_AUDIO[split], audio_bin), (src.BCLSTM_VIDEO[split], video_bin)):
        if not np.array_equal(found, binary):
            row = int(np.flatnonzero(found != binary)[0])
            raise DataFormatError(f"{root / relpath}: field 'binary label', row {row}: {found[row]} disagrees with "
                                  f"{src.BCLSTM_TRANSCRIPTS} ({binary[row]}); the rows are out of order")
    ids = transcripts["utterance_id"].to_numpy(dtype=str)[index]
    return ids, {"L": text, "V": video, "A": audio}


def _build_mosi_bclstm(root: Path, cache_dir: Path) -> tuple[dict[str, SplitData], str]:
    transcripts = read_bclstm_transcripts(_path(root, src.BCLSTM_TRANSCRIPTS))
    labels_by_id = _mosi_labels(root, cross_check_csd=True)
    parts = {split: _bclstm_split(root, split, transcripts) for split in ("train", "test")}
    ids = np.concatenate([parts["train"][0], parts["test"][0]])
    if len(set(ids.tolist())) != len(ids) or len(ids) != len(transcripts):
        raise DataFormatError(f"{root / src.BCLSTM_TEXT['train']} + test: expected each of the {len(transcripts)} "
                              f"utterances of {src.BCLSTM_TRANSCRIPTS} once, found {len(set(ids.tolist()))} distinct "
                              f"of {len(ids)} rows")
    labels = _join_labels(ids.tolist(), labels_by_id, src.BCLSTM_TEXT["train"], "column 0 (utterance id)")
    binary = transcripts.set_index("utterance_id").loc[ids, "binary_label"].to_numpy()
    if not np.array_equal(binary, (labels >= 0).astype(np.int64)):
        row = int(np.flatnonzero(binary != (labels >= 0))[0])
        raise DataFormatError(f"{root / src.BCLSTM_TRANSCRIPTS}: field 'binary_label' of {ids[row]} is {binary[row]} "
                              f"but its sentiment is {labels[row]} (expected 1 iff sentiment >= 0)")

    videos = np.array([video_of(i) for i in ids])
    split = np.array(["train"] * len(parts["train"][0]) + ["test"] * len(parts["test"][0]), dtype=object)
    train_videos = videos[split == "train"].tolist()
    if set(train_videos) & set(videos[split == "test"].tolist()):
        raise DataFormatError(f"{root / src.BCLSTM_TEXT['test']}: a video appears in both train and test")
    split[np.isin(videos, validation_videos(train_videos))] = "valid"
    order = _split_in_order(split)
    features = {m: np.concatenate([parts["train"][1][m], parts["test"][1][m]])[order][:, None, :].astype(np.float32)
                for m in MODALITIES}  # (N, 1, D)
    text = transcripts.set_index("utterance_id").loc[ids[order], "text"].str.strip().tolist()
    data = SplitData(ids=ids[order], features=features,
                     lengths={m: np.ones(len(ids), dtype=np.int64) for m in MODALITIES},
                     labels=labels[order], raw_text=text)
    source = (f"bc-LSTM utterance features (declare-lab, Poria et al. 2017) + OpinionLevelSentiment.csv labels "
              f"under {root}; train/test = bc-LSTM split, valid = {VALID_VIDEOS} sha1-smallest training videos")
    return _slice_splits(data, split[order]), source


# ---------------------------------------------------------------- mosi-text / mosei-text


def _fold_of_video(root: Path, relpath: str) -> dict[str, str]:
    """Video id -> train / valid / test from an SDK folds JSON (a video in two folds is an error)."""
    folds = read_std_folds(_path(root, relpath))
    split_of: dict[str, str] = {}
    for fold, videos in folds.items():
        for video in videos:
            if video in split_of:
                raise DataFormatError(f"{root / relpath}: video {video!r} is in two folds")
            split_of[video] = _FOLD_SPLIT[fold]
    return split_of


def _text_bundle(name: str, ids: np.ndarray, videos: np.ndarray, text: list[str], labels: np.ndarray,
                 split: np.ndarray, cache_dir: Path) -> dict[str, SplitData]:
    """Real text (MiniLM embedding, T = 1) + generated V/A in the family's MMSA aligned dims."""
    order = _split_in_order(split)
    ids, videos, labels, split = ids[order], videos[order], labels[order], split[order]
    text = [text[i] for i in order]
    spec = get_spec(get_spec(name).family)
    variant = spec.variants["aligned"]
    seq_lens = {m: SEMI_SYNTHETIC_SEQ_LEN for m in ("V", "A")}
    features, lengths = _synthetic(name, {"V": labels, "A": labels}, variant.dims, seq_lens, videos)
    features["L"] = text_encoder.encode_sentences(text, cache_dir=cache_dir)[:, None, :]  # (N, 1, 384)
    lengths["L"] = np.ones(len(ids), dtype=np.int64)
    data = SplitData(ids=ids, features=features, lengths=lengths, labels=labels, raw_text=text)
    return _slice_splits(data, split)


def _build_mosi_text(root: Path, cache_dir: Path) -> tuple[dict[str, SplitData], str]:
    transcripts = read_bclstm_transcripts(_path(root, src.BCLSTM_TRANSCRIPTS))
    ids = transcripts["utterance_id"].to_numpy(dtype=str)
    labels = _join_labels(ids.tolist(), _mosi_labels(root, cross_check_csd=False), src.BCLSTM_TRANSCRIPTS,
                          "utterance_id")
    split_of = _fold_of_video(root, src.MOSI_FOLDS)
    missing = sorted({video_of(i) for i in ids} - set(split_of))
    if missing:
        raise DataFormatError(f"{root / src.MOSI_FOLDS}: video {missing[0]!r} of {src.BCLSTM_TRANSCRIPTS} "
                              f"is in no fold")
    split = np.array([split_of[video_of(i)] for i in ids], dtype=object)
    text = transcripts["text"].str.strip().tolist()
    source = (f"MOSI transcripts.csv (bc-LSTM) + OpinionLevelSentiment.csv + SDK folds under {root}; "
              f"L = all-MiniLM-L6-v2 embeddings; V/A synthetic (seed {SEMI_SYNTHETIC_SEEDS['mosi-text']})")
    videos = np.array([video_of(i) for i in ids])
    return _text_bundle("mosi-text", ids, videos, text, labels, split, cache_dir), source


def _build_mosei_text(root: Path, cache_dir: Path) -> tuple[dict[str, SplitData], str]:
    path = _path(root, src.MOSEI_LABELS)
    table = read_mosei_label_table(path)
    split_of = _fold_of_video(root, src.MOSEI_FOLDS)
    fold = table["video_id"].map(split_of)
    disagree = fold.isna() | (fold != table["mode"])
    if disagree.any():
        row = int(np.flatnonzero(disagree.to_numpy())[0])
        raise DataFormatError(f"{path}: field 'mode', row {row} (video {table['video_id'].iloc[row]!r}): "
                              f"{table['mode'].iloc[row]!r} but the SDK folds ({src.MOSEI_FOLDS}) say "
                              f"{fold.iloc[row]!r}")
    source = (f"MOSEI label.csv (ailiwood/mme_0621) checked against the SDK folds under {root}; "
              f"L = all-MiniLM-L6-v2 embeddings; V/A synthetic (seed {SEMI_SYNTHETIC_SEEDS['mosei-text']})")
    # MOSEI clip ids hold '_' themselves (``82_7645``): take the video from its column, not from the id
    bundle = _text_bundle("mosei-text", table["id"].to_numpy(dtype=str), table["video_id"].to_numpy(dtype=str),
                          table["text"].str.strip().tolist(),
                          table["label"].to_numpy(dtype=np.float32), table["mode"].to_numpy(dtype=object), cache_dir)
    return bundle, source


# ---------------------------------------------------------------- sims2-synth


def _build_sims2_synth(root: Path, cache_dir: Path) -> tuple[dict[str, SplitData], str]:
    table = read_sims2_table(_path(root, src.SIMS2_TABLE))
    table = table.iloc[_split_in_order(table["mode"].to_numpy(dtype=object))].reset_index(drop=True)
    unimodal = {m: table[f"label_{'T' if m == 'L' else m}"].to_numpy(dtype=np.float32) for m in MODALITIES}
    dims = get_spec("sims").variants["unaligned"].dims
    features, lengths = _synthetic("sims2-synth", unimodal, dims, SIMS2_SEQ_LENS, table["video_id"].to_numpy(dtype=str))
    data = SplitData(ids=table["id"].to_numpy(dtype=str), features=features, lengths=lengths,
                     labels=table["y_true"].to_numpy(dtype=np.float32), raw_text=None, unimodal_labels=unimodal)
    source = (f"CH-SIMS v2(s) labels and split (spp72kimo/chsims_v2) under {root}; features synthetic from the "
              f"unimodal labels (seed {SEMI_SYNTHETIC_SEEDS['sims2-synth']}, seq lens {SIMS2_SEQ_LENS})")
    return _slice_splits(data, table["mode"].to_numpy(dtype=object)), source
