"""Applying masks to features and BERT token ids (NumPy arrays or torch tensors alike)."""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from mmbench.constants import MODALITIES

#: [UNK] id of both bert-base-uncased and bert-base-chinese; MMSA / LNLN write it over dropped words.
UNK_ID = 100


class MaskLike(Protocol):
    """Anything with ``available`` (N, 3) bool and ``frames`` (letter -> (N, T_m) bool, or None)."""

    available: np.ndarray
    frames: dict[str, np.ndarray] | None


def _numpy(values) -> np.ndarray:
    return values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


def kept_entries(mask: MaskLike, modality: str, shape: tuple[int, ...]) -> np.ndarray:
    """(N, T) bool (or (N,) without frame masks): the entries of one modality the mask keeps.

    Args:
        mask: a :class:`~mmbench.missing.MaskSet` or anything with ``available`` and ``frames``.
        modality: ``L``, ``V`` or ``A``.
        shape: the shape of that modality's features, (N, T, D) (or (N, D) without frame masks).

    Example:
        >>> from types import SimpleNamespace
        >>> mask = SimpleNamespace(available=np.array([[True, False, True]]), frames={"L": np.array([[True, False]])})
        >>> kept_entries(mask, "L", (1, 2, 4))
        array([[ True, False]])
    """
    available = _numpy(mask.available).astype(bool)[:, MODALITIES.index(modality)]
    if available.shape[0] != shape[0]:
        raise ValueError(f"mask: modality {modality!r} has {shape[0]} samples, the mask {available.shape[0]}")
    frames = getattr(mask, "frames", None)
    if frames is None:
        return available
    steps = _numpy(frames[modality]).astype(bool)
    if len(shape) != 3 or steps.shape != tuple(shape[:2]):
        raise ValueError(f"mask: frame mask of {modality!r} is {steps.shape}, features are {tuple(shape)}; "
                         f"expected (N, T, D) features with matching N, T")
    return available[:, None] & steps


def apply_mask(features: dict, mask: MaskLike) -> dict:
    """A masked copy of ``features``: removed modalities and dropped time steps set to zero.

    Args:
        features: modality letter -> (N, T_m, D_m) (or (N, D_m) without frame masks), NumPy or
            torch; rows aligned with the mask's rows.
        mask: a :class:`~mmbench.missing.MaskSet` or anything with ``available`` and ``frames``.

    Returns:
        The same keys and types; the inputs are left untouched. Zeroing uses ``where``, so a NaN
        in a removed entry does not leak through as it would with a multiplication.

    Example:
        >>> from types import SimpleNamespace
        >>> mask = SimpleNamespace(available=np.array([[True, False, True]]),
        ...                        frames={m: np.array([[True, False]]) for m in "LVA"})
        >>> out = apply_mask({m: np.ones((1, 2, 1)) for m in "LVA"}, mask)
        >>> out["L"][0, :, 0], out["V"][0, :, 0]
        (array([1., 0.]), array([0., 0.]))
    """
    out = {}
    for modality in MODALITIES:
        if modality not in features:
            continue
        values = features[modality]
        keep = kept_entries(mask, modality, tuple(values.shape))
        keep = keep.reshape(keep.shape + (1,) * (values.ndim - keep.ndim))
        if isinstance(values, torch.Tensor):
            keep_t = torch.from_numpy(np.ascontiguousarray(keep)).to(values.device)
            out[modality] = torch.where(keep_t, values, torch.zeros((), dtype=values.dtype, device=values.device))
        else:
            out[modality] = np.where(keep, values, np.zeros((), dtype=values.dtype))
    return out


def mask_text_bert(text_bert, frames_L):
    """BERT ids with the dropped language steps replaced by [UNK] (id 100), as MMSA / LNLN do.

    The [CLS] (position 0) and [SEP] (position length - 1, length = attention-mask sum) tokens are
    always kept; the attention mask and segment ids are unchanged, so [UNK] is attended to.

    Args:
        text_bert: (N, 3, T) ids / attention mask / segment ids, NumPy or torch.
        frames_L: (N, T) bool, True = language step kept.

    Returns:
        A copy of ``text_bert`` (same type) with the replaced ids.

    Example:
        >>> bert = np.array([[[101, 7, 8, 102, 0], [1, 1, 1, 1, 0], [0, 0, 0, 0, 0]]])
        >>> mask_text_bert(bert, np.array([[False, False, True, False, False]]))[0, 0]
        array([101, 100,   8, 102,   0])
    """
    is_torch = isinstance(text_bert, torch.Tensor)
    ids, keep = _numpy(text_bert), _numpy(frames_L)
    if ids.ndim != 3 or ids.shape[1] != 3 or keep.shape != (ids.shape[0], ids.shape[2]):
        raise ValueError(f"mask_text_bert: expected text_bert (N, 3, T) and frames (N, T); got {ids.shape} "
                         f"and {keep.shape}")
    valid = ids[:, 1] > 0  # (N, T)
    position = np.arange(ids.shape[2])[None, :]
    ends = (position == 0) | (position == valid.sum(axis=1, keepdims=True) - 1)
    drop = valid & ~keep.astype(bool) & ~ends
    out = ids.copy()
    out[:, 0][drop] = UNK_ID
    return torch.from_numpy(out).to(text_bert.device) if is_torch else out


def mask_transcript(text: str, keep_L, length: int) -> str:
    """A transcript with the words of dropped language steps removed (the ``frame`` protocol).

    Word ``j`` of ``n`` belongs to step ``floor(j * length / n)`` of the ``length`` valid language
    steps: one word per step when they are as many (word-aligned features), spread evenly otherwise.
    A planner that reads the transcript then reads only the words whose features survived.

    Example:
        >>> mask_transcript("not bad at all", np.array([True, False, True, True]), 4)
        'not at all'
    """
    words = text.split()
    if not words or length <= 0:
        return text
    keep = _numpy(keep_L).astype(bool)
    steps = (np.arange(len(words)) * length) // len(words)
    return " ".join(w for w, step in zip(words, steps) if keep[step])
