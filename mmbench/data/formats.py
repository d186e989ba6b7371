"""Readers of the field's feature pickles: MMSA (``aligned_50.pkl``, ``unaligned_50.pkl``,
``unaligned_39.pkl``) and MulT/CMU (``mosi_data.pkl``, ``mosei_senti_data.pkl``).

The format is told by the file's content, never its name. Both are a dict ``{train, valid, test}`` of
dicts of arrays:

- MMSA (thuiar/MMSA): ``raw_text, audio, vision, id, text, text_bert, audio_lengths, vision_lengths,
  annotations, classification_labels, regression_labels`` (CH-SIMS adds ``regression_labels_T/A/V``).
  ``text`` holds BERT features (N, T, 768); ``text_bert`` (N, 3, T) token ids / attention mask /
  segment ids, whose mask sum is the text length. Audio ``-inf`` becomes 0, as MMSA's loader does.
- MulT (yaohungt/Multimodal-Transformer): ``text`` (300-d GloVe), ``vision``, ``audio``, ``labels``
  (N, 1, 1) and ``id`` ((N,) or (N, k) strings, joined with ``_``). No lengths are stored: a time step
  is valid unless it is a trailing all-zero row of that modality (at least one step is kept).

Malformed input raises :class:`DataFormatError` naming the file, the split and the field; so do labels
outside the dataset's label range (``[-3, 3]`` for a file read without a registry entry) by more than
``LABEL_TOLERANCE``: such a file holds another scale or another dataset, and training on it would give
results that look valid. A file that reads but disagrees with the registry (dims, sequence lengths,
split sizes) only warns. What is repaired rather than refused (non-finite features set to 0, lengths
clipped into [1, T], labels within the tolerance clipped into the range) warns and is counted in the
bundle's ``quality`` (see :class:`mmbench.data.types.DatasetBundle`).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.constants import MODALITIES, MODALITY_FIELDS, SPLITS
from mmbench.data.files import file_sha256
from mmbench.data.registry import DatasetSpec
from mmbench.data.safe_pickle import DataFormatError, safe_load
from mmbench.data.types import DatasetBundle, SplitData

__all__ = ["DataFormatError", "DataFormatWarning", "LABEL_TOLERANCE", "detect_format", "read_feature_file",
           "parse_split", "gather_quality", "check_consistency", "check_against_spec", "make_bundle"]

FORMATS = ("mmsa", "mult")
#: MMSA's per-split keys, in MMSA's order; CH-SIMS files add the unimodal label keys below.
MMSA_KEYS = ("raw_text", "audio", "vision", "id", "text", "text_bert", "audio_lengths", "vision_lengths",
             "annotations", "classification_labels", "regression_labels")
MMSA_UNIMODAL_KEYS = {"L": "regression_labels_T", "A": "regression_labels_A", "V": "regression_labels_V"}
MULT_KEYS = ("text", "vision", "audio", "labels", "id")
_CHUNK = 1024  # samples per chunk when scanning big arrays, so no full-size temporary is made
#: Labels at most this far outside the range are float rounding (3.0000002 from a float32 round trip) and
#: are clipped and counted; anything further is refused. Far below every label grid step (0.2, 1/3).
LABEL_TOLERANCE = 1e-4
DEFAULT_LABEL_RANGE = (-3.0, 3.0)  # MOSI/MOSEI's, for a file read without a registry entry


class DataFormatWarning(UserWarning):
    """A file that reads but disagrees with the registry or needed repair (clipped lengths, NaN features)."""


def _fail(path: Path, split: str, field: str, problem: str) -> DataFormatError:
    return DataFormatError(f"{path}: split {split!r}, field {field!r}: {problem}")


def _warn(message: str) -> None:
    warnings.warn(message, DataFormatWarning, stacklevel=3)


def detect_format(obj: Any, path: str | Path) -> str:
    """``"mmsa"`` or ``"mult"``, from the keys of the unpickled object.

    Raises:
        DataFormatError: not a dict of the three splits, or a split matches neither format.
    """
    if not isinstance(obj, dict):
        raise DataFormatError(f"{path}: expected a dict with splits {list(SPLITS)}, found {type(obj).__name__}")
    missing = [s for s in SPLITS if s not in obj]
    if missing:
        raise DataFormatError(f"{path}: missing split(s) {missing}; found keys {sorted(map(str, obj))}")
    keys = obj["train"].keys() if isinstance(obj["train"], dict) else ()
    if {"regression_labels", "text_bert", "annotations"} & set(keys):
        return "mmsa"
    if "labels" in keys:
        return "mult"
    raise DataFormatError(
        f"{path}: split 'train' matches neither format; found keys {sorted(map(str, keys))}; MMSA files "
        f"have {list(MMSA_KEYS)}, MulT files have {list(MULT_KEYS)}")


# --------------------------------------------------------------------------------------------- reading

def _labels(value: Any, path: Path, split: str, field: str, n: int | None = None) -> np.ndarray:
    """(N,) float32 labels from (N,), (N, 1) or (N, 1, 1); NaN labels are an error."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiub":
        raise _fail(path, split, field, f"expected numeric labels, found dtype {arr.dtype}")
    if arr.ndim == 0 or any(d != 1 for d in arr.shape[1:]):
        raise _fail(path, split, field, f"expected shape (N,), (N, 1) or (N, 1, 1), found {arr.shape}")
    arr = arr.reshape(len(arr)).astype(np.float32)
    if n is not None and len(arr) != n:
        raise _fail(path, split, field, f"has {len(arr)} samples but the labels have {n}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise _fail(path, split, field, f"{bad.size} NaN/inf label(s), first at sample {bad[0]}")
    return arr


def _features(value: Any, path: Path, split: str, field: str, n: int) -> tuple[np.ndarray, int]:
    """(N, T, D) float32 features and the count of repaired values.

    ``-inf`` audio becomes 0 silently (MMSA's loader does the same: it is how the files mark silence);
    other non-finite values become 0 with a warning, and are what the count holds.
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiub":
        raise _fail(path, split, field, f"expected numeric features, found dtype {arr.dtype}")
    if arr.ndim != 3:
        raise _fail(path, split, field, f"expected a 3-d array (N, T, D), found shape {arr.shape}")
    if arr.shape[0] != n:
        raise _fail(path, split, field, f"has {arr.shape[0]} samples but the labels have {n}")
    if arr.shape[1] < 1:
        raise _fail(path, split, field, f"has no time steps (shape {arr.shape})")
    arr = np.ascontiguousarray(arr, dtype=np.float32)  # no copy when the file already holds float32
    n_fixed = 0
    for start in range(0, n, _CHUNK):
        chunk = arr[start:start + _CHUNK]
        bad = ~np.isfinite(chunk)
        if not bad.any():
            continue
        if not arr.flags.writeable:  # copy only when a repair is needed
            arr = arr.copy()
            chunk = arr[start:start + _CHUNK]
        expected = chunk == -np.inf if field == "audio" else np.zeros_like(bad)
        n_fixed += int(bad.sum() - expected.sum())
        chunk[bad] = 0.0
    if n_fixed:
        _warn(f"{path}: split {split!r}, field {field!r}: {n_fixed} NaN/inf value(s) replaced by 0")
    return arr, n_fixed


def _infer_lengths(features: np.ndarray) -> np.ndarray:
    """Valid steps = up to the last row that is not all zero (at least 1), as files without lengths imply."""
    n, steps = features.shape[:2]
    lengths = np.empty(n, dtype=np.int64)
    for start in range(0, n, _CHUNK):
        nonzero = np.any(features[start:start + _CHUNK] != 0, axis=2)  # (chunk, T)
        last = steps - np.argmax(nonzero[:, ::-1], axis=1)
        lengths[start:start + _CHUNK] = np.where(nonzero.any(axis=1), last, 1)
    return lengths


def _lengths(value: Any, path: Path, split: str, field: str, n: int, steps: int) -> tuple[np.ndarray, int]:
    """(N,) int64 lengths, clipped into [1, T] with a warning (padding-only samples keep one step), and
    the count of clipped lengths."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiub" or arr.ndim == 0 or any(d != 1 for d in arr.shape[1:]):
        raise _fail(path, split, field, f"expected (N,) integer lengths, found {arr.dtype} {arr.shape}")
    arr = arr.reshape(len(arr))
    if len(arr) != n:
        raise _fail(path, split, field, f"has {len(arr)} entries but the labels have {n}")
    arr = np.round(arr).astype(np.int64)
    outside = int(np.sum((arr < 1) | (arr > steps)))
    if outside:
        _warn(f"{path}: split {split!r}, field {field!r}: {outside} length(s) outside [1, {steps}] clipped")
    return np.clip(arr, 1, steps), outside


def _text_bert(value: Any, path: Path, split: str, n: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiub" or arr.ndim != 3 or arr.shape[:2] != (n, 3):
        raise _fail(path, split, "text_bert", f"expected numeric (N={n}, 3, T) ids/mask/segments, "
                                              f"found {arr.dtype} {arr.shape}")
    return arr.astype(np.int64)


def _ids(value: Any, path: Path, split: str, n: int) -> np.ndarray:
    """(N,) str ids; MulT's (N, k) id rows are joined with ``_``."""
    arr = np.asarray(value)
    if arr.ndim not in (1, 2) or len(arr) != n:
        raise _fail(path, split, "id", f"expected (N={n},) or (N={n}, k) ids, found shape {arr.shape}")
    as_text = np.vectorize(lambda x: x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x),
                           otypes=[object])
    parts = as_text(arr) if arr.size else arr.astype(object)
    joined = ["_".join(row) for row in parts] if arr.ndim == 2 else list(parts)
    return np.array(joined, dtype=str)


def _raw_text(value: Any, path: Path, split: str, n: int) -> list[str] | None:
    if value is None:
        return None
    texts = [x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in np.asarray(value).ravel()]
    if len(texts) != n:
        raise _fail(path, split, "raw_text", f"has {len(texts)} entries but the labels have {n}")
    return None if not any(texts) else texts  # an all-empty column is what writers leave when there is none


def _require(raw: Any, keys: tuple[str, ...], path: Path, split: str, fmt: str) -> None:
    if not isinstance(raw, dict):
        raise DataFormatError(f"{path}: split {split!r}: expected a dict of arrays, found {type(raw).__name__}")
    missing = [k for k in keys if k not in raw]
    if missing:
        raise _fail(path, split, missing[0], f"missing key(s) {missing} of the {fmt} format; "
                                             f"found {sorted(map(str, raw))}")


def parse_split(raw: dict, fmt: str, path: str | Path, split: str) -> tuple[SplitData, dict]:
    """One split of an unpickled MMSA or MulT file as a :class:`SplitData`, and what was repaired.

    Returns:
        ``(data, findings)``; findings holds the non-zero repair counts per modality letter,
        ``{"nan_replaced": {"V": 12}, "lengths_clipped": {"A": 2}}`` (empty when nothing was repaired).

    Raises:
        DataFormatError: a key is missing, an array has the wrong rank or sample count, labels are NaN.
    """
    path = Path(path)
    if fmt == "mmsa":
        _require(raw, ("text", "vision", "audio", "id", "regression_labels"), path, split, fmt)
        labels = _labels(raw["regression_labels"], path, split, "regression_labels")
    elif fmt == "mult":
        _require(raw, MULT_KEYS, path, split, fmt)
        labels = _labels(raw["labels"], path, split, "labels")
    else:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    n = len(labels)
    features, replaced = {}, {}
    for modality, field in MODALITY_FIELDS.items():
        features[modality], replaced[modality] = _features(raw[field], path, split, field, n)
    text_bert = _text_bert(raw["text_bert"], path, split, n) if raw.get("text_bert") is not None else None
    lengths, clipped = {}, {}
    for modality, field in MODALITY_FIELDS.items():
        steps = features[modality].shape[1]
        if modality == "L" and text_bert is not None:
            lengths[modality], clipped[modality] = _lengths(text_bert[:, 1].sum(axis=1), path, split, "text_bert",
                                                            n, steps)
        elif fmt == "mmsa" and raw.get(f"{field}_lengths") is not None:
            lengths[modality], clipped[modality] = _lengths(raw[f"{field}_lengths"], path, split,
                                                            f"{field}_lengths", n, steps)
        else:
            lengths[modality], clipped[modality] = _infer_lengths(features[modality]), 0
    unimodal = {m: _labels(raw[key], path, split, key, n)
                for m, key in MMSA_UNIMODAL_KEYS.items() if fmt == "mmsa" and key in raw}
    data = SplitData(ids=_ids(raw["id"], path, split, n), features=features, lengths=lengths, labels=labels,
                     raw_text=_raw_text(raw.get("raw_text"), path, split, n), text_bert=text_bert,
                     unimodal_labels=unimodal)
    findings = {finding: nonzero for finding, counts in (("nan_replaced", replaced), ("lengths_clipped", clipped))
                if (nonzero := {m: int(c) for m, c in counts.items() if c})}
    return data, findings


def gather_quality(findings: dict[str, dict]) -> dict:
    """split -> finding -> what -> count (as :func:`parse_split` gives them) regrouped as the bundle's
    ``quality``: finding -> split -> what -> count."""
    quality: dict[str, dict] = {}
    for split, per_finding in findings.items():
        for finding, counts in per_finding.items():
            quality.setdefault(finding, {})[split] = dict(counts)
    return quality


def check_consistency(splits: dict[str, SplitData], path: str | Path) -> None:
    """Feature dims must agree across splits (a model is built once); ids should be unique."""
    dims = splits["train"].dims()
    for split in SPLITS[1:]:
        for modality, dim in splits[split].dims().items():
            if dim != dims[modality]:
                raise _fail(Path(path), split, MODALITY_FIELDS[modality],
                            f"feature dim {dim} differs from split 'train' ({dims[modality]})")
    all_ids = np.concatenate([splits[s].ids for s in SPLITS])
    n_dup = len(all_ids) - len(np.unique(all_ids))
    if n_dup:
        _warn(f"{path}: {n_dup} duplicate sample id(s) across splits; masks are keyed by id")


def _pick_variant(spec: DatasetSpec, path: Path, fmt: str, variant: str | None) -> str | None:
    if variant is not None:
        return variant if variant in spec.variants else None
    named = [v for v, fv in spec.variants.items() if path.name in fv.files]
    same_fmt = [v for v, fv in spec.variants.items() if fv.fmt == fmt]
    return (named or same_fmt or [spec.default_variant or None])[0]


def check_against_spec(splits: dict[str, SplitData], *, path: str | Path, fmt: str, spec: DatasetSpec,
                       variant: str | None = None) -> None:
    """Warn (never fail) on each field where the file disagrees with the registry entry ``spec``."""
    path, label = Path(path), spec.name.upper()
    for split, expected in spec.split_sizes.items():
        if split in splits and len(splits[split]) != expected:
            _warn(f"{path}: split {split!r} has {len(splits[split])} samples, expected {expected} ({label})")
    variant = _pick_variant(spec, path, fmt, variant)
    if variant is not None and variant in spec.variants:
        expected_variant = spec.variants[variant]
        if expected_variant.fmt != fmt:
            _warn(f"{path}: is a {fmt} file, but variant {variant!r} of {label} expects {expected_variant.fmt}")
        train = splits["train"]
        for what, found, wanted in (("feature dim", train.dims(), expected_variant.dims),
                                    ("sequence length", train.seq_lens(), expected_variant.seq_lens)):
            for modality in MODALITIES:
                if modality in wanted and found[modality] != wanted[modality]:
                    _warn(f"{path}: {what} of {modality} ({MODALITY_FIELDS[modality]}) is {found[modality]}, "
                          f"expected {wanted[modality]} ({label} {variant})")


def _label_fields(data: SplitData, fmt: str) -> dict[str, np.ndarray]:
    """The split's label arrays under the names the file gives them."""
    fields = {"regression_labels" if fmt == "mmsa" else "labels": data.labels}
    fields.update({MMSA_UNIMODAL_KEYS[m]: values for m, values in data.unimodal_labels.items()})
    return fields


def _refuse_out_of_range_labels(splits: dict[str, SplitData], *, path: Path, fmt: str,
                                label_range: tuple[float, float], dataset: str) -> None:
    """One :class:`DataFormatError` listing every (split, field) with labels beyond the tolerance."""
    low, high = label_range
    problems = []
    for split, data in splits.items():
        for field, values in _label_fields(data, fmt).items():
            rows = np.flatnonzero((values < low - LABEL_TOLERANCE) | (values > high + LABEL_TOLERANCE))
            if rows.size:
                examples = ", ".join(f"{float(values[i]):g} (sample {i})" for i in rows[:3])
                problems.append(f"split {split!r}, field {field!r}: {rows.size} value(s) out of range, "
                                f"e.g. {examples}")
    if problems:
        more = f"; and {len(problems) - 3} more split/field(s)" if len(problems) > 3 else ""
        raise DataFormatError(f"{path}: labels outside the label range [{low:g}, {high:g}] ({dataset}): "
                              + "; ".join(problems[:3]) + more
                              + " (is this the right dataset, or were the labels rescaled?)")


def _clip_labels(data: SplitData, *, path: Path, split: str, fmt: str,
                 label_range: tuple[float, float]) -> dict[str, int]:
    """Clip rounding excess (within LABEL_TOLERANCE, already checked) into the range; count per field."""
    low, high = label_range
    counts = {field: int(np.sum((values < low) | (values > high)))
              for field, values in _label_fields(data, fmt).items()}
    counts = {field: count for field, count in counts.items() if count}
    if counts:
        _warn(f"{path}: split {split!r}: labels within {LABEL_TOLERANCE:g} outside [{low:g}, {high:g}] clipped "
              f"into it ({', '.join(f'{field} {count}' for field, count in counts.items())})")
        data.labels = np.clip(data.labels, low, high).astype(np.float32)  # a copy: cached labels are read-only
        data.unimodal_labels = {m: np.clip(v, low, high).astype(np.float32) for m, v in data.unimodal_labels.items()}
    return counts


def _guess_language(splits: dict[str, SplitData]) -> str:
    texts = splits["train"].raw_text or []
    return "zh" if any("\u4e00" <= ch <= "\u9fff" for text in texts[:50] for ch in text) else "en"


def make_bundle(splits: dict[str, SplitData], *, path: str | Path, fmt: str, sha256: str,
                spec: DatasetSpec | None = None, variant: str | None = None,
                name: str | None = None, quality: dict | None = None) -> DatasetBundle:
    """Check ``splits`` (against ``spec`` when given) and wrap them as a real :class:`DatasetBundle`.

    ``quality`` holds the parse-time repairs (:func:`gather_quality`); the labels clipped here are added.

    Raises:
        DataFormatError: feature dims differ between splits, or labels lie outside the label range.
    """
    path = Path(path)
    check_consistency(splits, path)
    label_range = tuple(spec.label_range) if spec else DEFAULT_LABEL_RANGE
    _refuse_out_of_range_labels(splits, path=path, fmt=fmt, label_range=label_range,
                                dataset=spec.name.upper() if spec else "no dataset given: MOSI/MOSEI's")
    if spec is not None:
        check_against_spec(splits, path=path, fmt=fmt, spec=spec, variant=variant)
    clipped = {split: counts for split, data in splits.items()
               if (counts := _clip_labels(data, path=path, split=split, fmt=fmt, label_range=label_range))}
    return DatasetBundle(
        name=name or (spec.name if spec else path.stem), splits=splits, provenance="real",
        source_sha256=sha256, source=f"{path} ({fmt} format)", label_range=label_range,
        language=spec.language if spec else _guess_language(splits),
        quality={**(quality or {}), **({"labels_clipped": clipped} if clipped else {})},
    )


def read_feature_file(path: str | Path, *, spec: DatasetSpec | None = None, variant: str | None = None,
                      name: str | None = None) -> DatasetBundle:
    """Read an MMSA or MulT feature pickle (told apart by content) through the restricted unpickler.

    Args:
        path: the pickle.
        spec: the registry entry to check the file against (warnings name each disagreeing field).
        variant: the spec's variant to check dims and sequence lengths against; default: by file name.
        name: the bundle's name; default ``spec.name`` or the file's stem.

    Returns:
        A bundle with provenance ``"real"``, ``source_sha256`` the file's sha256 and ``quality`` what
        was repaired.

    Raises:
        DataFormatError: unreadable, unsafe or malformed file, or labels outside the label range (the
            message names file, split, field).
    """
    path = Path(path)
    obj = safe_load(path, encoding="latin1")  # latin1 only matters for Python-2 pickles (numpy's advice)
    fmt = detect_format(obj, path)
    parsed = {split: parse_split(obj[split], fmt, path, split) for split in SPLITS}
    splits = {split: data for split, (data, _) in parsed.items()}
    quality = gather_quality({split: findings for split, (_, findings) in parsed.items()})
    return make_bundle(splits, path=path, fmt=fmt, sha256=file_sha256(path), spec=spec, variant=variant,
                       name=name, quality=quality)
