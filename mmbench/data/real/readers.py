"""One reader per format of the real MOSI / MOSEI / CH-SIMS v2 source files (``../shared/data``).

Each reader checks the columns, types and shapes its format promises and returns plain pandas / numpy
objects; ids are always ``str`` (MOSEI has numeric-looking video ids, CH-SIMS zero-padded clip ids).
A file that breaks its format raises :class:`DataFormatError` naming the file, the field, what was
expected and what was found. The byte layouts are documented in ``shared/data/README.md``.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mmbench.data.safe_pickle import DataFormatError, safe_load

#: Columns of OpinionLevelSentiment.csv (the original CMU-MOSI label file has no header).
OPINION_COLUMNS = ("start_sec", "end_sec", "video_id", "segment_index", "sentiment")
TRANSCRIPT_COLUMNS = ("utterance_id", "text", "video_index", "binary_label")
SIMS2_COLUMNS = ("video_id", "clip_id", "y_true", "mode", "label_T", "label_A", "label_V")
MOSEI_LABEL_COLUMNS = ("video_id", "clip_id", "text", "label", "mode")
MMSA_LABEL_COLUMNS = ("id", "text", "label", "mode")
P2FA_COLUMNS = ("video_id", "segment", "start", "end", "p2fa")
STD_FOLD_NAMES = ("standard_train_fold", "standard_valid_fold", "standard_test_fold")


def _fail(path: Path, message: str) -> DataFormatError:
    return DataFormatError(f"{path}: {message}")


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise _fail(path, f"missing column(s) {missing}; expected {list(columns)}, found {list(frame.columns)}")


def _require_float(frame: pd.DataFrame, columns: tuple[str, ...], path: Path,
                   bounds: tuple[float, float] | None = None) -> None:
    """Columns numeric, finite and (optionally) inside ``bounds``."""
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        if bounds is not None:
            bad |= (values < bounds[0]) | (values > bounds[1])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            expected = "a finite number" + (f" in [{bounds[0]}, {bounds[1]}]" if bounds else "")
            raise _fail(path, f"field {column!r}, row {row}: expected {expected}, found {frame[column].iloc[row]!r}")
        frame[column] = values.astype(np.float64)


def _require_values(frame: pd.DataFrame, column: str, allowed: tuple[str, ...], path: Path) -> None:
    unknown = sorted(set(frame[column]) - set(allowed))
    if unknown:
        raise _fail(path, f"field {column!r}: expected values in {list(allowed)}, found {unknown[:5]}")


def _str_frame(path: Path, **kwargs) -> pd.DataFrame:
    """``pd.read_csv`` with every column as str (ids keep their zeros), empty fields as ''."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise _fail(path, f"not a readable CSV/TSV table: {err}") from err


# ---------------------------------------------------------------- label / transcript tables


def read_opinion_labels_csv(path: Path) -> pd.DataFrame:
    """CMU-MOSI ``OpinionLevelSentiment.csv`` (no header): one row per opinion segment.

    Returns:
        Columns ``start_sec, end_sec, video_id, segment_index, sentiment`` plus ``id`` =
        ``f"{video_id}_{segment_index}"`` (the segment id used by the SDK and bc-LSTM).
    """
    frame = _str_frame(path, header=None)
    if frame.shape[1] != len(OPINION_COLUMNS):
        raise _fail(path, f"expected {len(OPINION_COLUMNS)} columns {list(OPINION_COLUMNS)}, found {frame.shape[1]}")
    frame.columns = list(OPINION_COLUMNS)
    _require_float(frame, ("start_sec", "end_sec"), path)
    _require_float(frame, ("sentiment",), path, bounds=(-3.0, 3.0))
    if not frame["segment_index"].str.fullmatch(r"\d+").all():
        raise _fail(path, "field 'segment_index': expected positive integers")
    frame["id"] = frame["video_id"] + "_" + frame["segment_index"]
    _require_unique(frame, "id", path)
    return frame


def read_bclstm_transcripts(path: Path) -> pd.DataFrame:
    """bc-LSTM ``data/transcripts.csv`` (no header): utterance id, upper-case text, video index, 0/1.

    Returns:
        Columns ``utterance_id, text, video_index (int), binary_label (int)``; text keeps its bytes.
    """
    frame = _str_frame(path, header=None)
    if frame.shape[1] != len(TRANSCRIPT_COLUMNS):
        raise _fail(path, f"expected {len(TRANSCRIPT_COLUMNS)} columns {list(TRANSCRIPT_COLUMNS)}, "
                          f"found {frame.shape[1]}")
    frame.columns = list(TRANSCRIPT_COLUMNS)
    for column in ("video_index", "binary_label"):
        if not frame[column].str.fullmatch(r"\d+").all():
            raise _fail(path, f"field {column!r}: expected non-negative integers")
        frame[column] = frame[column].astype(np.int64)
    _require_values(frame.astype({"binary_label": str}), "binary_label", ("0", "1"), path)
    _require_unique(frame, "utterance_id", path)
    return frame


def read_mosei_label_table(path: Path) -> pd.DataFrame:
    """MOSEI ``label.csv`` (MMSA columns ``video_id, clip_id, text, label, mode``); ``id`` added."""
    frame = _str_frame(path)
    _require_columns(frame, MOSEI_LABEL_COLUMNS, path)
    _require_float(frame, ("label",), path, bounds=(-3.0, 3.0))
    _require_values(frame, "mode", ("train", "valid", "test"), path)
    frame["id"] = frame["video_id"] + "_" + frame["clip_id"]
    _require_unique(frame, "id", path)
    return frame


def read_mmsa_label_table(path: Path) -> pd.DataFrame:
    """An MMSA-derived ``label.csv`` with columns ``id, text, label, mode`` (MOSI, MMCPanda)."""
    frame = _str_frame(path)
    _require_columns(frame, MMSA_LABEL_COLUMNS, path)
    _require_float(frame, ("label",), path, bounds=(-3.0, 3.0))
    _require_values(frame, "mode", ("train", "dev", "valid", "test"), path)
    _require_unique(frame, "id", path)
    return frame


def read_text_label_tsv(path: Path) -> pd.DataFrame:
    """Cross-Modal-BERT ``{train,dev,test}.tsv``: header ``text<TAB>label``, no quoting, no ids."""
    frame = _str_frame(path, sep="\t", quoting=csv.QUOTE_NONE)
    _require_columns(frame, ("text", "label"), path)
    _require_float(frame, ("label",), path, bounds=(-3.0, 3.0))
    return frame


def read_sims2_table(path: Path) -> pd.DataFrame:
    """CH-SIMS v2(s) clip table: multimodal ``y_true``, unimodal ``label_T/A/V``, official ``mode``.

    Returns:
        The table with the label columns as float and ``id`` = ``f"{video_id}_{clip_id}"``; the
        author's prediction columns (``pred_*``) are left as they are and never used.
    """
    frame = _str_frame(path)
    _require_columns(frame, SIMS2_COLUMNS, path)
    _require_float(frame, ("y_true", "label_T", "label_A", "label_V"), path, bounds=(-1.0, 1.0))
    _require_values(frame, "mode", ("train", "valid", "test"), path)
    frame["id"] = frame["video_id"] + "_" + frame["clip_id"]
    _require_unique(frame, "id", path)
    return frame


def read_p2fa_csv(path: Path) -> pd.DataFrame:
    """Old SDK ``CMU_MOSI_p2fa.csv``: one row per segment; the type row under the header is skipped."""
    frame = _str_frame(path, skiprows=[1])
    _require_columns(frame, P2FA_COLUMNS, path)
    _require_float(frame, ("start", "end"), path)
    frame["id"] = frame["video_id"] + "_" + frame["segment"]
    _require_unique(frame, "id", path)
    return frame


def _require_unique(frame: pd.DataFrame, column: str, path: Path) -> None:
    duplicated = frame[column][frame[column].duplicated()]
    if len(duplicated):
        raise _fail(path, f"field {column!r}: ids must be unique, {duplicated.iloc[0]!r} repeats")


# ---------------------------------------------------------------- folds


def read_std_folds(path: Path) -> dict[str, list[str]]:
    """CMU-SDK standard folds as JSON ``{fold_name: [video_id, ...]}`` (train / valid / test)."""
    try:
        folds = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _fail(path, f"not valid JSON: {err}") from err
    if not isinstance(folds, dict):
        raise _fail(path, f"expected a JSON object of folds, found {type(folds).__name__}")
    missing = [name for name in STD_FOLD_NAMES if name not in folds]
    if missing:
        raise _fail(path, f"missing fold(s) {missing}; found {list(folds)}")
    for name in STD_FOLD_NAMES:
        if not isinstance(folds[name], list) or not all(isinstance(v, str) for v in folds[name]):
            raise _fail(path, f"field {name!r}: expected a list of video id strings")
    return {name: list(folds[name]) for name in STD_FOLD_NAMES}


# ---------------------------------------------------------------- bc-LSTM features


def read_bclstm_text_features(path: Path, dim: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """bc-LSTM ``data/text_{train,test}.csv``: column 0 indexes transcripts.csv, then ``dim`` features.

    Returns:
        (row_index (N,) int64, features (N, dim) float64).
    """
    values = _numeric_matrix(path, dim + 1)
    index = values[:, 0]
    if not np.array_equal(index, np.round(index)) or (index < 0).any():
        raise _fail(path, "field 'column 0' (row index into transcripts.csv): expected non-negative integers")
    return index.astype(np.int64), values[:, 1:]


def read_bclstm_feature_csv(path: Path, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """bc-LSTM ``{text,audio,video}_{train,test}0.csv``: ``dim`` features then a 0/1 label column.

    Returns:
        (features (N, dim) float64, binary_label (N,) int64).
    """
    values = _numeric_matrix(path, dim + 1)
    label = values[:, dim]
    if not np.isin(label, (0.0, 1.0)).all():
        raise _fail(path, f"field 'column {dim}' (binary label): expected 0/1, found {np.unique(label)[:5]}")
    return values[:, :dim], label.astype(np.int64)


def _numeric_matrix(path: Path, n_columns: int) -> np.ndarray:
    try:
        frame = pd.read_csv(path, header=None, dtype=np.float64)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise _fail(path, f"expected a headerless numeric CSV with {n_columns} columns: {err}") from err
    if frame.shape[1] != n_columns:
        raise _fail(path, f"expected {n_columns} columns, found {frame.shape[1]}")
    values = frame.to_numpy()
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise _fail(path, f"row {row}: expected finite numbers, found NaN/inf")
    return values


@dataclass
class BcLstmAudioPickle:
    """bc-LSTM ``input/audio.pickle``: per-video zero-padded utterance features (video ids not stored)."""

    train_x: np.ndarray  # (62, 63, 73)
    train_y: np.ndarray  # (62, 63), 0 at padding
    test_x: np.ndarray  # (31, 63, 73)
    test_y: np.ndarray  # (31, 63)
    max_len: int
    train_lengths: list[int]
    test_lengths: list[int]


def read_bclstm_audio_pickle(path: Path) -> BcLstmAudioPickle:
    """The Python-2 ``audio.pickle`` 7-tuple, through the restricted unpickler (latin-1 strings)."""
    loaded = safe_load(path, encoding="latin1")
    if not isinstance(loaded, tuple) or len(loaded) != 7:
        raise _fail(path, f"expected a 7-tuple (train_X, train_Y, test_X, test_Y, max_len, train_lengths, "
                          f"test_lengths), found {type(loaded).__name__} of length {len(loaded)}")
    result = BcLstmAudioPickle(*loaded)
    for name in ("train_x", "test_x"):
        array = getattr(result, name)
        if not isinstance(array, np.ndarray) or array.ndim != 3 or array.shape[1] != result.max_len:
            raise _fail(path, f"field {name!r}: expected (videos, {result.max_len}, D), found "
                              f"{getattr(array, 'shape', type(array).__name__)}")
    for x_name, len_name in (("train_x", "train_lengths"), ("test_x", "test_lengths")):
        lengths = getattr(result, len_name)
        if len(lengths) != len(getattr(result, x_name)) or max(lengths) > result.max_len:
            raise _fail(path, f"field {len_name!r}: expected one length <= {result.max_len} per video")
    return result


# ---------------------------------------------------------------- CMU-SDK computational sequences


@dataclass
class ComputationalSequence:
    """A CMU-SDK ``.csd`` file: per video, features (n, D) and intervals (n, 2) in seconds."""

    root: str
    features: dict[str, np.ndarray]
    intervals: dict[str, np.ndarray]
    metadata: dict[str, str]


def read_csd(path: Path) -> ComputationalSequence:
    """A CMU-SDK computational sequence (HDF5: ``<root>/data/<video>/{features,intervals}``, metadata).

    Raises:
        DataFormatError: not HDF5, not exactly one root group, or a video whose arrays disagree.
    """
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise _fail(path, f"not a readable HDF5 computational sequence: {err}") from err
    with handle:
        roots = list(handle.keys())
        if len(roots) != 1 or "data" not in handle[roots[0]]:
            raise _fail(path, f"expected one root group holding 'data' and 'metadata', found {roots}")
        group = handle[roots[0]]
        features, intervals = {}, {}
        for video, entry in group["data"].items():
            if "features" not in entry or "intervals" not in entry:
                raise _fail(path, f"field 'data/{video}': expected 'features' and 'intervals', found {list(entry)}")
            features[video], intervals[video] = entry["features"][()], entry["intervals"][()]
            if intervals[video].shape != (len(features[video]), 2):
                raise _fail(path, f"field 'data/{video}/intervals': expected shape ({len(features[video])}, 2), "
                                  f"found {intervals[video].shape}")
        metadata = {key: _metadata_text(value[()]) for key, value in group.get("metadata", {}).items()}
    return ComputationalSequence(roots[0], features, intervals, metadata)


def _metadata_text(value: object) -> str:
    """SDK metadata entries are scalar or 1-element arrays of bytes; return them as text."""
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def csd_segment_labels(sequence: ComputationalSequence) -> dict[str, float]:
    """Segment id ``f"{video}_{k}"`` (k 1-based, row k-1) -> the first feature (the sentiment score)."""
    return {f"{video}_{row + 1}": float(values[row, 0])
            for video, values in sequence.features.items() for row in range(len(values))}
