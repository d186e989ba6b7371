"""A memory-mappable cache of feature pickles, so multi-GB files are unpickled once.

The first load of a feature file unpickles it (restricted), parses it split by split and writes each
array as a ``.npy`` file under ``<cache_dir>/features/<sha256>-v<version>/``; later loads open those with
``np.load(mmap_mode="r")`` and take seconds, with the data left in the page cache rather than copied
into the process. What parsing repaired (NaN features set to 0, clipped lengths) is recorded in the
entry, so every later load carries the same ``bundle.quality`` and repeats the warning in one line.
The entry is written in a temporary folder and renamed into place last, so a killed
conversion leaves no half cache. The file's sha256 is memoised in a small JSON (path, size, mtime) so a
later load does not rehash several GB.

Layout of one entry::

    meta.json                         source path, sha256, format, per-split sample counts and contents,
                                      quality (what parsing repaired: the bundle's ``quality``)
    <split>/features_<M>.npy          (N, T, D) float32, M in L, V, A
    <split>/lengths_<M>.npy           (N,) int64
    <split>/labels.npy, ids.npy       (N,) float32, (N,) unicode (no pickled objects anywhere)
    <split>/text_bert.npy             (N, 3, T) int64, when the file has it
    <split>/unimodal_<M>.npy          (N,) float32, when the file has them
    <split>/raw_text.json             list of N str, when the file has it
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from mmbench.constants import MODALITIES, SPLITS
from mmbench.data.files import file_sha256
from mmbench.data.formats import (DataFormatWarning, detect_format, gather_quality, make_bundle, parse_split,
                                  read_feature_file)
from mmbench.data.registry import DatasetSpec
from mmbench.data.safe_pickle import safe_load
from mmbench.data.types import DatasetBundle, SplitData, quality_summary

#: Bump when the entry layout or the parsing changes: old entries are then ignored, not misread.
#: 2: meta.json records the parse-time repairs (``quality``); a v1 entry would read as clean.
CACHE_VERSION = 2
_STALE_TMP_SECONDS = 24 * 3600


def _save_split(data: SplitData, folder: Path) -> dict:
    """Write one split's arrays as .npy files; returns what the entry's meta.json records for it."""
    folder.mkdir(parents=True)
    arrays = {"labels": data.labels, "ids": np.asarray(data.ids, dtype=str)}
    for modality in MODALITIES:
        arrays[f"features_{modality}"] = data.features[modality]
        arrays[f"lengths_{modality}"] = data.lengths[modality]
    for modality, labels in data.unimodal_labels.items():
        arrays[f"unimodal_{modality}"] = labels
    if data.text_bert is not None:
        arrays["text_bert"] = data.text_bert
    for stem, array in arrays.items():
        np.save(folder / f"{stem}.npy", np.asarray(array), allow_pickle=False)
    if data.raw_text is not None:
        (folder / "raw_text.json").write_text(json.dumps(data.raw_text, ensure_ascii=False), encoding="utf-8")
    return {"n": len(data), "raw_text": data.raw_text is not None, "text_bert": data.text_bert is not None,
            "unimodal": sorted(data.unimodal_labels)}


def _remove_stale_tmp(features_dir: Path) -> None:
    """Remove temporary folders of conversions that were killed long ago (a live one is recent)."""
    for tmp in features_dir.glob(".tmp-*"):
        try:
            if time.time() - tmp.stat().st_mtime > _STALE_TMP_SECONDS:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass


def _convert(path: Path, entry: Path, sha256: str, tmp: Path) -> None:
    """Unpickle ``path`` and write the entry into ``tmp``, then rename it to ``entry``.

    Each split is parsed, written and dropped before the next, so memory holds the unpickled file plus
    at most one split's converted copy (none when the file is already float32).
    """
    raw = safe_load(path, encoding="latin1")
    fmt = detect_format(raw, path)
    meta = {"version": CACHE_VERSION, "source": str(path), "sha256": sha256, "format": fmt, "splits": {}}
    findings = {}
    for split in SPLITS:
        data, findings[split] = parse_split(raw.pop(split), fmt, path, split)
        meta["splits"][split] = _save_split(data, tmp / split)
    del raw
    meta["quality"] = gather_quality(findings)
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")  # written last: marks complete
    try:
        os.rename(tmp, entry)
    except OSError:
        if not (entry / "meta.json").is_file():
            raise
        # Another process finished the same conversion first; its entry is identical.


def _open_entry(entry: Path) -> tuple[dict[str, SplitData], str, dict]:
    """The splits of a finished cache entry (every array a read-only memmap), its format and quality."""
    meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    splits = {}
    for split in SPLITS:
        folder, info = entry / split, meta["splits"][split]

        def load(stem: str, folder: Path = folder) -> np.ndarray:
            return np.load(folder / f"{stem}.npy", mmap_mode="r", allow_pickle=False)

        raw_text = json.loads((folder / "raw_text.json").read_text(encoding="utf-8")) if info["raw_text"] else None
        splits[split] = SplitData(
            ids=load("ids"), labels=load("labels"),
            features={m: load(f"features_{m}") for m in MODALITIES},
            lengths={m: load(f"lengths_{m}") for m in MODALITIES},
            raw_text=raw_text, text_bert=load("text_bert") if info["text_bert"] else None,
            unimodal_labels={m: load(f"unimodal_{m}") for m in info["unimodal"]},
        )
    return splits, meta["format"], meta["quality"]


def load_feature_file_cached(path: str | Path, *, cache_dir: str | Path, spec: DatasetSpec | None = None,
                             variant: str | None = None, name: str | None = None) -> DatasetBundle:
    """Read a feature pickle through the memory-mappable cache (converting it on first use).

    Args:
        path: an MMSA or MulT feature pickle.
        cache_dir: root of the cache (entries under ``features/``, sha256 memos under ``sha256/``).
        spec, variant, name: as for :func:`mmbench.data.formats.read_feature_file`; the registry checks
            run on every load, so their warnings are not lost once a file is cached.

    Returns:
        The same bundle :func:`read_feature_file` gives (``quality`` included), with read-only memmapped
        arrays. When the cache
        cannot be written, a warning is given and the file is read directly.

    Raises:
        DataFormatError: the file is unsafe or malformed (then no cache entry is left behind).
    """
    path, cache_dir = Path(path), Path(cache_dir)
    sha256 = file_sha256(path, memo_dir=cache_dir / "sha256")
    features_dir = cache_dir / "features"
    entry = features_dir / f"{sha256}-v{CACHE_VERSION}"
    hit = (entry / "meta.json").is_file()
    if not hit:
        try:
            features_dir.mkdir(parents=True, exist_ok=True)
            _remove_stale_tmp(features_dir)
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{sha256[:16]}-", dir=features_dir))
        except OSError as err:
            warnings.warn(f"{features_dir}: cannot write the feature cache ({err}); reading {path} directly",
                          DataFormatWarning, stacklevel=2)
            return read_feature_file(path, spec=spec, variant=variant, name=name)
        try:
            _convert(path, entry, sha256, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone after a rename; removes a failed half entry
    splits, fmt, quality = _open_entry(entry)
    if hit and quality:  # the per-field warnings were given when the entry was made; repeat their sum
        warnings.warn(f"{path}: repaired when first read: {quality_summary(quality)}", DataFormatWarning,
                      stacklevel=2)
    return make_bundle(splits, path=path, fmt=fmt, sha256=sha256, spec=spec, variant=variant, name=name,
                       quality=quality)
