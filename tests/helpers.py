"""Small in-memory data for unit tests: a tiny bundle and batches in the DataModule's format."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from mmbench.constants import MODALITIES
from mmbench.data.datamodule import DataInfo, MaskedSplit
from mmbench.missing import MaskSet
from mmbench.data.types import DatasetBundle, SplitData
from mmbench.method import MMBenchMethod

DIMS = {"L": 12, "V": 6, "A": 4}
SEQ = {"L": 8, "V": 10, "A": 12}


def tiny_split(n: int, rng: np.random.Generator, prefix: str) -> SplitData:
    """Labels driven by a latent that every modality carries (language most)."""
    latent = rng.uniform(-3, 3, n).astype(np.float32)
    features, lengths = {}, {}
    for strength, modality in zip((1.0, 0.5, 0.3), MODALITIES):
        direction = np.random.default_rng(len(modality) + DIMS[modality]).normal(size=DIMS[modality])
        base = strength * latent[:, None, None] * direction[None, None, :]
        noise = rng.normal(scale=0.5, size=(n, SEQ[modality], DIMS[modality]))
        lengths[modality] = rng.integers(SEQ[modality] // 2, SEQ[modality] + 1, n).astype(np.int64)
        steps = np.arange(SEQ[modality])[None, :] < lengths[modality][:, None]
        features[modality] = ((base + noise) * steps[..., None]).astype(np.float32)
    labels = np.round(latent * 5) / 5
    ids = np.array([f"{prefix}{i}" for i in range(n)])
    raw_text = [f"sample {i} is {'good' if y >= 0 else 'bad'}" for i, y in enumerate(labels)]
    return SplitData(ids=ids, features=features, lengths=lengths, labels=labels.astype(np.float32),
                     raw_text=raw_text)


def tiny_bundle(n_train: int = 64, n_eval: int = 24, seed: int = 0) -> DatasetBundle:
    rng = np.random.default_rng(seed)
    splits = {"train": tiny_split(n_train, rng, "tr"), "valid": tiny_split(n_eval, rng, "va"),
              "test": tiny_split(n_eval, rng, "te")}
    return DatasetBundle("mosi-synth", splits, "synthetic", "0" * 64, "unit-test bundle", (-3.0, 3.0))


def tiny_info(bundle: DatasetBundle | None = None, train_setting: str = "complete") -> DataInfo:
    return replace(DataInfo.from_bundle(bundle or tiny_bundle()), train_setting=train_setting)


def mask_given_and_nothing_removed(split: SplitData) -> tuple[torch.Tensor, torch.Tensor]:
    """Two training availabilities: some modalities removed, and a mask that removed nothing (rate 0.0).

    Under ``same`` a method must train on each exactly as given: the setting, not the batch's keys,
    says whether the method may add missingness of its own.
    """
    given = torch.tensor([[True, False, True], [True, True, True]] * (len(split) // 2))
    return given, torch.ones(len(split), 3, dtype=torch.bool)


def make_batch(split: SplitData, available: torch.Tensor | None = None, *, with_targets: bool = False) -> dict:
    """A batch of every sample of ``split`` with the given (N, 3) availability (default: all)."""
    mask = None
    if available is not None:
        mask = MaskSet(dataset="mosi-synth", split="test", protocol="fixed", condition="custom", seed=0,
                       ids=split.ids, available=available.numpy())
    dataset = MaskedSplit(split, mask, with_targets=with_targets)
    if with_targets and mask is None:
        dataset.with_targets = True
    return dataset.__getitems__(list(range(len(split))))


def tiny_datamodule(bundle: DatasetBundle, train_setting: str = "complete", batch_size: int = 16):
    """A DataModule over ``bundle`` with the 7 fixed validation/test patterns, as a real run builds it."""
    from mmbench.constants import PATTERNS
    from mmbench.data.datamodule import MissingModalityDataModule
    from mmbench.missing import make_mask_set

    def masks(split: str) -> dict:
        return {p: make_mask_set("mosi-synth", split, bundle.splits[split].ids, None, None, "fixed", p, 0)
                for p in PATTERNS}

    train_mask = None
    if train_setting != "complete":
        train_mask = make_mask_set("mosi-synth", "train", bundle.splits["train"].ids, None, None, "random", "0.5", 0)
    return MissingModalityDataModule(bundle, train_mask=train_mask, valid_masks=masks("valid"),
                                     test_masks=masks("test"), train_setting=train_setting, batch_size=batch_size)


def fit_tiny(model, datamodule, epochs: int = 1):
    """A real Lightning fit (validation included), quiet, on the CPU."""
    import lightning as L

    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(model, datamodule=datamodule)
    return trainer


class OneWeightMethod(MMBenchMethod):
    """The smallest trainable method: one weight, the same score for every sample. Runner and launcher
    tests subclass it to fail, die or 'recover' on purpose."""

    def __init__(self, data):
        super().__init__(data)
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, batch):
        return self.weight.expand(len(batch["label"]))
