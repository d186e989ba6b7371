"""Plain containers the readers return; they know nothing of Lightning.

Every reader (MMSA pickle, MulT pickle, real tables, synthetic generator) produces a
:class:`DatasetBundle`; the DataModule and the masks are built from it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from mmbench.constants import MODALITIES, SPLITS

Provenance = Literal["real", "semi-synthetic", "synthetic"]


@dataclass
class SplitData:
    """One split of a dataset, arrays aligned on the first axis (N samples).

    Attributes:
        ids: (N,) sample ids as str, unique within the dataset.
        features: modality letter ("L", "V", "A") -> (N, T_m, D_m) float32, zero-padded in time.
        lengths: modality letter -> (N,) int64 number of valid time steps (1 <= length <= T_m).
        labels: (N,) float32 continuous sentiment in the dataset's label range.
        raw_text: N transcripts, or None where the dataset has none.
        text_bert: (N, 3, T_L) int64 BERT ids / attention mask / segment ids (MMSA), or None.
        unimodal_labels: modality letter -> (N,) float32 (CH-SIMS has them), possibly empty.
    """

    ids: np.ndarray
    features: dict[str, np.ndarray]
    lengths: dict[str, np.ndarray]
    labels: np.ndarray
    raw_text: list[str] | None = None
    text_bert: np.ndarray | None = None
    unimodal_labels: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def dims(self) -> dict[str, int]:
        return {m: int(self.features[m].shape[2]) for m in MODALITIES}

    def seq_lens(self) -> dict[str, int]:
        return {m: int(self.features[m].shape[1]) for m in MODALITIES}

    def subset(self, index: np.ndarray) -> "SplitData":
        """The samples at ``index`` (an int array), in that order."""
        return SplitData(
            ids=self.ids[index],
            features={m: self.features[m][index] for m in MODALITIES},
            lengths={m: self.lengths[m][index] for m in MODALITIES},
            labels=self.labels[index],
            raw_text=None if self.raw_text is None else [self.raw_text[i] for i in index],
            text_bert=None if self.text_bert is None else self.text_bert[index],
            unimodal_labels={m: v[index] for m, v in self.unimodal_labels.items()},
        )


@dataclass
class DatasetBundle:
    """A whole dataset: the three splits plus where they came from.

    Attributes:
        name: registered dataset name (``mosi``, ``mosi-bclstm``, ``mosi-synth``, ...).
        splits: "train", "valid", "test" -> SplitData.
        provenance: "real", "semi-synthetic" or "synthetic"; tables from the last two say so.
        source_sha256: sha256 of the data file(s) used (one digest; several files are hashed in
            sorted-path order), recorded with every result.
        source: human-readable description of the files (paths, known public copy, generator).
        label_range: (low, high) of the labels, e.g. (-3, 3) or (-1, 1).
        language: "en" or "zh".
        quality: what had to be repaired when the data were read, JSON-serialisable, non-zero findings
            only: finding -> split -> what -> count, e.g. ``{"nan_replaced": {"train": {"V": 12}},
            "lengths_clipped": {"valid": {"A": 2}}, "labels_clipped": {"test": {"regression_labels": 1}}}``
            (``what`` is a modality letter for features and lengths, the file's field for labels).
            Empty means clean. Results built on repaired data should say so (see :func:`quality_summary`).
    """

    name: str
    splits: dict[str, SplitData]
    provenance: Provenance
    source_sha256: str
    source: str
    label_range: tuple[float, float]
    language: str = "en"
    quality: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [s for s in SPLITS if s not in self.splits]
        if missing:
            raise ValueError(f"dataset {self.name!r}: missing split(s) {missing}")

    @property
    def is_synthetic(self) -> bool:
        return self.provenance != "real"

    def dims(self) -> dict[str, int]:
        return self.splits["train"].dims()

    def seq_lens(self) -> dict[str, int]:
        return self.splits["train"].seq_lens()


def quality_summary(quality: dict) -> str:
    """One line for :attr:`DatasetBundle.quality`: ``clean`` or each finding with its counts.

    Example:
        >>> quality_summary({})
        'clean'
        >>> quality_summary({"nan_replaced": {"train": {"V": 12, "A": 1}, "test": {"V": 2}},
        ...                  "labels_clipped": {"valid": {"regression_labels": 1}}})
        'nan_replaced train V 12, train A 1, test V 2; labels_clipped valid regression_labels 1'
    """
    if not quality:
        return "clean"
    return "; ".join(
        f"{finding} " + ", ".join(f"{split} {what} {count}" for split, counts in per_split.items()
                                  for what, count in counts.items())
        for finding, per_split in quality.items())
