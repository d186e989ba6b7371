"""The LightningDataModule every method reads: masked batches as dicts, masks given from outside.

A batch holds, for each modality field (``text``, ``vision``, ``audio``), the features (B, T, D)
with removed modalities and dropped frames zeroed, ``<field>_lengths`` (B,) and ``<field>_mask``
(B, T) bool (True = an observed, valid step), ``available`` (B, 3) bool in the order L, V, A,
``label`` (B,), ``id`` and, where the dataset has it, ``raw_text`` (empty when language is removed,
so a transcript never reaches a method that should not see it) and ``text_bert``.

Under the ``same`` training setting a training batch also carries ``full_<field>``: the unmasked
features, as reconstruction targets only. Evaluation batches never carry them.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.warnings import PossibleUserWarning
from torch.utils.data import DataLoader, Dataset

from mmbench.constants import MODALITIES, MODALITY_FIELDS
from mmbench.data.types import DatasetBundle, SplitData
from mmbench.missing import MaskSet, apply_mask, kept_entries, mask_text_bert, mask_transcript


@dataclass(frozen=True)
class DataInfo:
    """What a method may know about the data before it sees a batch (dims to size its layers)."""

    dataset: str
    dims: dict[str, int]
    seq_lens: dict[str, int]
    label_range: tuple[float, float]
    train_label_mean: float
    has_raw_text: bool
    has_text_bert: bool
    provenance: str
    #: modality letter -> (mean (D,), std (D,)) over the valid time steps of the training split,
    #: for methods that standardise their inputs (real features such as openSMILE span decades).
    #: Under ``incomplete`` only the observed training values count (see :meth:`for_run`).
    feature_stats: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    #: The run's training setting (``complete``, ``same``, ``incomplete``): methods read it here,
    #: never guess it from batch keys.
    train_setting: str = "complete"

    def for_run(self, train: SplitData, train_setting: str, train_mask: MaskSet | None) -> "DataInfo":
        """These facts as one run may know them: its setting, and under ``incomplete`` statistics of
        the observed training values only (a removed feature is never available in any form)."""
        stats = self.feature_stats
        if train_setting == "incomplete" and train_mask is not None:
            stats = training_feature_stats(train, mask=train_mask)
        return replace(self, train_setting=train_setting, feature_stats=stats)

    @classmethod
    def from_bundle(cls, bundle: DatasetBundle) -> "DataInfo":
        train = bundle.splits["train"]
        return cls(
            dataset=bundle.name, dims=bundle.dims(), seq_lens=bundle.seq_lens(),
            label_range=tuple(bundle.label_range), train_label_mean=float(np.mean(train.labels)),
            has_raw_text=train.raw_text is not None, has_text_bert=train.text_bert is not None,
            provenance=bundle.provenance, feature_stats=training_feature_stats(train),
        )


def training_feature_stats(train: SplitData, chunk: int = 1024,
                           mask: MaskSet | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-feature mean and std over valid time steps, streamed in chunks (memory-mapped caches).

    With ``mask``, only the steps it leaves observed count (removed modalities and dropped frames).
    """
    stats = {}
    rows = mask.rows(train.ids) if mask is not None else np.arange(len(train))
    for modality in MODALITIES:
        features, lengths = train.features[modality], train.lengths[modality]
        total = np.zeros(features.shape[2]); squares = np.zeros(features.shape[2]); count = 0
        for start in range(0, len(features), chunk):
            block = np.asarray(features[start:start + chunk], dtype=np.float64)
            view = _RowsMask.of(mask, rows[start:start + chunk], {modality: lengths[start:start + chunk]},
                                {modality: block.shape[1]})
            steps = block[kept_entries(view, modality, block.shape)]  # (steps, D)
            total += steps.sum(0); squares += (steps ** 2).sum(0); count += len(steps)
        mean = total / max(count, 1)
        std = np.sqrt(np.maximum(squares / max(count, 1) - mean ** 2, 0.0))
        stats[modality] = (mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32))
    return stats


@dataclass(frozen=True)
class _RowsMask:
    """Some rows of a mask (a ``MaskLike`` for ``mmbench.missing``): their availability and, per
    modality, the steps they keep, with padding beyond each sample's length counted as dropped."""

    available: np.ndarray
    frames: dict[str, np.ndarray]

    @classmethod
    def of(cls, mask: MaskSet | None, rows: np.ndarray, lengths: dict[str, np.ndarray],
           seq_lens: dict[str, int]) -> "_RowsMask":
        """``mask``'s ``rows`` (mask None: everything available) for samples of these lengths."""
        available = (np.ones((len(rows), len(MODALITIES)), dtype=bool) if mask is None
                     else mask.available[rows].astype(bool))
        frames = {}
        for modality, length in lengths.items():
            steps = np.arange(seq_lens[modality])[None, :] < np.asarray(length)[:, None]  # (n, T)
            if mask is not None and mask.frames is not None:
                steps &= mask.frames[modality][rows]
            frames[modality] = steps
        return cls(available, frames)


class MaskedSplit(Dataset):
    """One split seen through one mask set (or complete, with ``mask=None``)."""

    def __init__(self, split: SplitData, mask: MaskSet | None, *, with_targets: bool = False):
        self.split = split
        self.mask = mask
        self.with_targets = with_targets and mask is not None
        if mask is not None:
            self.mask_rows = mask.rows(split.ids)  # raises naming the ids the mask lacks

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> dict:
        return self.__getitems__([index])

    def __getitems__(self, indices: list[int]) -> dict:
        """A whole batch at once: one fancy-index read per array (cheap on memory-mapped caches)."""
        split = self.split
        index = np.asarray(indices, dtype=np.int64)
        batch: dict = {"id": [str(i) for i in split.ids[index]],
                       "label": torch.from_numpy(np.asarray(split.labels[index], dtype=np.float32))}
        full = {m: np.array(split.features[m][index], dtype=np.float32) for m in MODALITIES}  # (B, T, D)
        lengths = {m: np.asarray(split.lengths[m][index], dtype=np.int64) for m in MODALITIES}
        view = _RowsMask.of(self.mask, self.mask_rows[index] if self.mask is not None else index, lengths,
                            {m: full[m].shape[1] for m in MODALITIES})
        available = view.available
        batch["available"] = torch.from_numpy(available)
        masked = apply_mask(full, view)  # removed modalities, dropped frames and padding are zero
        for modality in MODALITIES:
            field = MODALITY_FIELDS[modality]
            batch[field] = torch.from_numpy(masked[modality])
            batch[f"{field}_mask"] = torch.from_numpy(kept_entries(view, modality, full[modality].shape))
            batch[f"{field}_lengths"] = torch.from_numpy(lengths[modality])
            if self.with_targets:
                batch[f"full_{field}"] = torch.from_numpy(full[modality])
        if split.raw_text is not None:
            batch["raw_text"] = [self._transcript(i, row, available[row, 0]) for row, i in enumerate(index)]
        if split.text_bert is not None:
            bert = np.array(split.text_bert[index], dtype=np.int64)
            if self.mask is not None and self.mask.frames is not None:
                bert = mask_text_bert(bert, self.mask.frames["L"][self.mask_rows[index]])
            bert[~available[:, 0]] = 0  # language removed: no token ids either
            batch["text_bert"] = torch.from_numpy(bert)
        return batch

    def _transcript(self, index: int, row: int, language_available: bool) -> str:
        """The transcript as the mask leaves it: empty without language, dropped steps' words removed."""
        if not language_available:
            return ""
        text = self.split.raw_text[index]
        if self.mask is None or self.mask.frames is None:
            return text
        return mask_transcript(text, self.mask.frames["L"][self.mask_rows[index]],
                               int(self.split.lengths["L"][index]))


class MissingModalityDataModule(L.LightningDataModule):
    """Serves train / validation / test batches of one run.

    Args:
        bundle: the dataset.
        train_mask: mask of the training split, or None for complete training data.
        valid_masks: condition -> mask set of the validation split (7 for ``fixed``, one otherwise).
        test_masks: condition -> mask set of the test split.
        train_setting: ``complete`` | ``same`` | ``incomplete``; ``same`` adds ``full_<field>`` targets.
        batch_size: batch size of every loader.
        seed: seeds the training shuffle, so the same seed gives the same batches.
        selection_split: the split the validation loaders read, "valid" (the benchmark) or "test"
            (only for ``--select test-oracle``, reproducing papers that selected on the test set).
    """

    def __init__(self, bundle: DatasetBundle, *, train_mask: MaskSet | None, valid_masks: dict[str, MaskSet],
                 test_masks: dict[str, MaskSet], train_setting: str, batch_size: int = 32, seed: int = 0,
                 selection_split: str = "valid"):
        super().__init__()
        self.bundle = bundle
        self.train_set = MaskedSplit(bundle.splits["train"], train_mask, with_targets=train_setting == "same")
        self.valid_sets = {c: MaskedSplit(bundle.splits[selection_split], m) for c, m in valid_masks.items()}
        self.test_sets = {c: MaskedSplit(bundle.splits["test"], m) for c, m in test_masks.items()}
        self.batch_size = batch_size
        self.seed = seed
        hide_worker_count_warning()

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, generator=generator,
                          collate_fn=collate, pin_memory=self.pins_memory())

    def val_dataloader(self) -> list[DataLoader]:
        return [self.loader_for(s) for s in self.valid_sets.values()]

    def test_dataloader(self) -> list[DataLoader]:
        return [self.loader_for(s) for s in self.test_sets.values()]

    def loader_for(self, dataset: Dataset) -> DataLoader:
        """An evaluation loader (no shuffle) over any masked split."""
        return DataLoader(dataset, batch_size=max(self.batch_size, 64), shuffle=False, collate_fn=collate,
                          pin_memory=self.pins_memory())

    def pins_memory(self) -> bool:
        """Page-locked batches (faster host-to-GPU copies) only when this module's trainer runs on CUDA."""
        trainer = self.trainer
        return bool(torch.cuda.is_available() and trainer is not None
                    and trainer.strategy.root_device.type == "cuda")


def hide_worker_count_warning() -> None:
    """Silence Lightning's "does not have many workers" warning, and only it.

    The loaders keep ``num_workers=0`` on purpose: the splits are in-memory tensors and a batch is one
    indexing call (``__getitems__``), so worker processes would only add start-up and copying.
    """
    warnings.filterwarnings("ignore", message=r"The '\w+' does not have many workers", category=PossibleUserWarning)


def collate(batches: list[dict] | dict) -> dict:
    """Batches come whole from ``__getitems__``; a list of batches (e.g. of one) is concatenated."""
    if isinstance(batches, dict):
        return batches
    joined: dict = {}
    for key, first in batches[0].items():
        values = [b[key] for b in batches]
        joined[key] = torch.cat(values) if isinstance(first, torch.Tensor) else [v for value in values for v in value]
    return joined
