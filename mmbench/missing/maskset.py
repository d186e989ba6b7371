"""``MaskSet``: the saved masks of one (dataset, split, protocol, condition, seed), and their hash.

A mask file is an ``.npz`` of plain arrays (loaded with ``allow_pickle=False``): ``ids``,
``available``, one ``frames_<m>`` per modality for the ``frame`` protocol, and ``meta``, a
one-element string array holding the JSON metadata (``achieved_rates`` for ``imbalanced``; files
written before it existed read back with None). Its identity is :meth:`MaskSet.sha256`, a hash
of the content in sample-id order, so re-saving, reordering rows or compressing differently leaves
it unchanged.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mmbench.constants import MODALITIES

#: Bumped when the file layout changes; load() refuses a newer one.
FILE_FORMAT = 1
_META_FIELDS = ("dataset", "split", "protocol", "condition", "seed", "target_rate", "achieved_rate", "achieved_rates")
#: Metadata added after the first files: absent from an older file means None.
_OPTIONAL_META = ("achieved_rates",)


@dataclass(eq=False)  # arrays make field-wise == ambiguous; compare sha256() instead
class MaskSet:
    """Which modalities (and, for ``frame``, which time steps) each sample of a split keeps.

    Attributes:
        dataset: registered dataset name.
        split: ``train``, ``valid`` or ``test``.
        protocol: ``fixed``, ``random``, ``frame`` or ``imbalanced``.
        condition: a pattern id (``fixed``; ``"mixed"`` for per-sample training patterns), a
            rate written as a string (``"0.3"``) or three per-modality rates (``"L0.3-V0.5-A0.7"``).
        seed: the run's seed the masks were drawn for.
        ids: (N,) sample ids (str), the row order of every array.
        available: (N, 3) bool, modality order L, V, A; True = the modality is given.
        frames: modality letter -> (N, T_m) bool, True = time step kept (False on padding), for
            the ``frame`` protocol; None otherwise.
        target_rate: the requested rate (``random`` / ``frame``; the mean of the three for
            ``imbalanced``), else None.
        achieved_rate: the realised rate of the set it was drawn for: MR for ``random``,
            ``imbalanced`` (the mean of ``achieved_rates``) and per-sample ``fixed`` training
            patterns, the fraction of valid time steps dropped for ``frame``; None for a single
            fixed pattern.
        achieved_rates: ``imbalanced`` only: modality letter -> the fraction of samples missing it.
    """

    dataset: str
    split: str
    protocol: str
    condition: str
    seed: int
    ids: np.ndarray
    available: np.ndarray
    frames: dict[str, np.ndarray] | None = None
    target_rate: float | None = None
    achieved_rate: float | None = None
    achieved_rates: dict[str, float] | None = None
    _row_of: dict[str, int] = field(default=None, init=False, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids).astype(str)
        self.available = np.asarray(self.available, dtype=bool)
        n = len(self.ids)
        where = f"mask set {self.dataset}/{self.split}/{self.protocol}/{self.condition}/seed {self.seed}"
        if self.ids.ndim != 1 or self.available.shape != (n, len(MODALITIES)):
            raise ValueError(f"{where}: expected ids (N,) and available (N, {len(MODALITIES)}); "
                             f"got {self.ids.shape} and {self.available.shape}")
        if len(set(self.ids.tolist())) != n:
            raise ValueError(f"{where}: sample ids are not unique")
        if self.frames is not None:
            self.frames = {m: np.asarray(self.frames[m], dtype=bool) for m in MODALITIES}
            bad = {m: f.shape for m, f in self.frames.items() if f.ndim != 2 or f.shape[0] != n}
            if bad:
                raise ValueError(f"{where}: frames must be (N={n}, T_m) per modality; got {bad}")
        if self.achieved_rates is not None:  # canonical L, V, A order (a file's JSON holds them sorted)
            self.achieved_rates = {m: float(self.achieved_rates[m]) for m in MODALITIES}
        self._row_of = {sample_id: row for row, sample_id in enumerate(self.ids.tolist())}

    def __len__(self) -> int:
        return len(self.ids)

    def sha256(self) -> str:
        """Content hash: the sorted ids, then the boolean arrays in sorted-id order.

        Example:
            >>> mask = MaskSet("mosi", "test", "fixed", "LV", 1, np.array(["b", "a"]), np.ones((2, 3), bool))
            >>> mask.subset(["a", "b"]).sha256() == mask.sha256()
            True

        The byte string is the ids joined by newlines (UTF-8), then ``\\0available\\0`` and the
        (N, 3) availability as uint8 in C order, then for each modality L, V, A of a frame set
        ``\\0frames_<m>\\0`` and its (N, T_m) uint8 array. Metadata is not part of it.
        """
        order = np.argsort(self.ids, kind="stable")
        digest = hashlib.sha256("\n".join(self.ids[order].tolist()).encode("utf-8"))
        digest.update(b"\0available\0" + np.ascontiguousarray(self.available[order], dtype=np.uint8).tobytes())
        for modality in MODALITIES if self.frames is not None else ():
            digest.update(f"\0frames_{modality}\0".encode())
            digest.update(np.ascontiguousarray(self.frames[modality][order], dtype=np.uint8).tobytes())
        return digest.hexdigest()

    def rows(self, ids) -> np.ndarray:
        """Row index of each of ``ids`` in this set (int64); KeyError naming the absent ones."""
        wanted = np.asarray(ids).astype(str).tolist()
        absent = [i for i in wanted if i not in self._row_of]
        if absent:
            raise KeyError(f"mask set {self.dataset}/{self.split}/{self.protocol}/{self.condition} has no entry for "
                           f"{len(absent)} of {len(wanted)} sample id(s), e.g. {absent[:3]}")
        return np.array([self._row_of[i] for i in wanted], dtype=np.int64)

    def subset(self, ids) -> "MaskSet":
        """The masks of ``ids``, in that order (rates are those of the full set, see the class doc)."""
        rows = self.rows(ids)
        frames = None if self.frames is None else {m: f[rows] for m, f in self.frames.items()}
        return replace(self, ids=self.ids[rows], available=self.available[rows], frames=frames)

    def save(self, path: str | Path) -> Path:
        """Write the ``.npz`` to exactly ``path`` (no suffix is added) and return it."""
        path = Path(path)
        meta = {"format": FILE_FORMAT, **{name: getattr(self, name) for name in _META_FIELDS}}
        arrays = {"ids": self.ids.astype(str), "available": self.available,
                  "meta": np.array([json.dumps(meta, sort_keys=True)])}
        for modality in MODALITIES if self.frames is not None else ():
            arrays[f"frames_{modality}"] = self.frames[modality]
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "MaskSet":
        """Read a file written by :meth:`save` (plain arrays only; pickled objects are refused)."""
        path = Path(path)
        with np.load(path, allow_pickle=False) as data:
            try:
                contents = {name: data[name] for name in data.files}
            except ValueError as error:  # an object (pickled) array: refused, never unpickled
                raise ValueError(f"{path}: not a plain-array mask file ({error})") from None
        for name in ("ids", "available", "meta"):
            if name not in contents:
                raise ValueError(f"{path}: not a mask file, field {name!r} is missing (found {sorted(contents)})")
        meta = json.loads(str(contents["meta"][0]))
        if meta.get("format", 0) > FILE_FORMAT:
            raise ValueError(f"{path}: mask file format {meta.get('format')} is newer than this mmbench "
                             f"understands ({FILE_FORMAT})")
        frame_keys = [f"frames_{m}" for m in MODALITIES]
        present = [k for k in frame_keys if k in contents]
        if present and len(present) != len(frame_keys):
            raise ValueError(f"{path}: frame masks for some modalities only: {present}")
        frames = {m: contents[f"frames_{m}"] for m in MODALITIES} if present else None
        missing_meta = [n for n in _META_FIELDS if n not in meta and n not in _OPTIONAL_META]
        if missing_meta:
            raise ValueError(f"{path}: mask metadata lacks {missing_meta} (found {sorted(meta)})")
        return cls(**{name: meta.get(name) for name in _META_FIELDS}, ids=contents["ids"],
                   available=contents["available"], frames=frames)
