"""Writers of the field's feature pickles (MMSA and MulT layouts), for the synthetic datasets and tests.

Writing is a plain ``pickle.dump`` (safe); only reading goes through the restricted unpickler, in
:mod:`mmbench.data.formats`.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.constants import MODALITIES, MODALITY_FIELDS, SPLITS
from mmbench.data.formats import MMSA_UNIMODAL_KEYS
from mmbench.data.types import DatasetBundle, SplitData


def _text_array(values: Any) -> np.ndarray:
    """A numpy object array of Python str, as MMSA stores ``id`` and ``raw_text``."""
    out = np.empty(len(values), dtype=object)
    out[:] = [str(v) for v in values]
    return out


def _plausible_text_bert(lengths: np.ndarray, steps: int, seed: int) -> np.ndarray:
    """BERT-style (N, 3, T) ids/mask/segments: [CLS]=101 first, [SEP]=102 at length-1, random word ids."""
    rng = np.random.default_rng(seed)
    n = len(lengths)
    valid = np.arange(steps)[None, :] < lengths[:, None]  # (N, T)
    token_ids = rng.integers(1000, 30000, size=(n, steps)) * valid
    token_ids[:, 0] = 101
    has_sep = lengths >= 2  # a one-token text is [CLS] alone
    token_ids[np.flatnonzero(has_sep), lengths[has_sep] - 1] = 102
    return np.stack([token_ids, valid, np.zeros_like(token_ids)], axis=1).astype(np.int64)


def _mmsa_split(data: SplitData, seed: int) -> dict[str, Any]:
    labels = np.asarray(data.labels, dtype=np.float32)
    text_bert = data.text_bert
    if text_bert is None:
        text_bert = _plausible_text_bert(np.asarray(data.lengths["L"]), data.features["L"].shape[1], seed)
    out: dict[str, Any] = {
        "raw_text": _text_array(data.raw_text if data.raw_text is not None else [""] * len(labels)),
        "audio": np.asarray(data.features["A"], dtype=np.float32),
        "vision": np.asarray(data.features["V"], dtype=np.float32),
        "id": _text_array(data.ids),
        "text": np.asarray(data.features["L"], dtype=np.float32),
        "text_bert": np.asarray(text_bert, dtype=np.int64),
        "audio_lengths": np.asarray(data.lengths["A"], dtype=np.int64),
        "vision_lengths": np.asarray(data.lengths["V"], dtype=np.int64),
        "annotations": _text_array(np.where(labels > 0, "Positive", np.where(labels < 0, "Negative", "Neutral"))),
        "classification_labels": np.sign(labels).astype(np.float32) + 1,  # 0 neg, 1 neu, 2 pos (MMSA)
        "regression_labels": labels,
    }
    for modality, key in MMSA_UNIMODAL_KEYS.items():
        if modality in data.unimodal_labels:
            out[key] = np.asarray(data.unimodal_labels[modality], dtype=np.float32)
    return out


def write_mmsa_pickle(bundle: DatasetBundle, path: str | Path, *, protocol: int = 4) -> None:
    """Write ``bundle`` with exactly MMSA's keys, dtypes and layout (plain pickle.dump: writing is safe).

    Args:
        bundle: the dataset; a missing ``text_bert`` is made up from the text lengths (seeded).
        path: destination file.
        protocol: pickle protocol; 4 like the circulating files, 5 writes large arrays without a copy.
    """
    content = {split: _mmsa_split(bundle.splits[split], seed=index) for index, split in enumerate(SPLITS)}
    with open(path, "wb") as handle:
        pickle.dump(content, handle, protocol=protocol)


def write_mult_pickle(bundle: DatasetBundle, path: str | Path, *, protocol: int = 4) -> None:
    """Write ``bundle`` in MulT's layout: ``text, vision, audio`` (N, T, D), ``labels`` (N, 1, 1), ``id``.

    MulT stores no lengths, raw text or unimodal labels; features past each length should be zero so that
    a reader recovers the lengths from the trailing zero rows.
    """
    content = {}
    for split in SPLITS:
        data = bundle.splits[split]
        content[split] = {MODALITY_FIELDS[m]: np.asarray(data.features[m], dtype=np.float32) for m in MODALITIES}
        content[split]["labels"] = np.asarray(data.labels, dtype=np.float32).reshape(-1, 1, 1)
        content[split]["id"] = _text_array(data.ids)
    with open(path, "wb") as handle:
        pickle.dump(content, handle, protocol=protocol)
