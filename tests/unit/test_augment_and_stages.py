"""The shared views a method builds on (never restoring what a mask removed) and the nested stage fit."""
import lightning as L
import pytest
import torch
from torch import nn

from mmbench.augment import (MISSING_PATTERNS, complete_view, drop_modalities, random_patterns, training_input,
                             training_views)
from mmbench.data.datamodule import MissingModalityDataModule
from mmbench.stages import fit_stage
from tests.helpers import make_batch, tiny_bundle


def test_drop_modalities_never_restores_what_the_mask_removed():
    split = tiny_bundle().splits["test"]
    given = torch.tensor([[True, False, True]] * len(split))
    batch = make_batch(split, given)
    view = drop_modalities(batch, torch.tensor([[False, True, True]] * len(split)))
    assert view["available"].tolist() == [[False, False, True]] * len(split)
    assert view["text"].abs().sum() == 0 and view["vision"].abs().sum() == 0
    assert not view["text_mask"].any() and all(t == "" for t in view["raw_text"])
    assert torch.equal(view["audio"], batch["audio"])


def test_complete_view_only_exists_where_the_setting_hands_over_the_truth():
    split = tiny_bundle().splits["train"]
    missing_vision = torch.tensor([[True, False, True]] * len(split))
    with pytest.raises(ValueError, match="full_<field>"):
        complete_view(make_batch(split, missing_vision))  # the 'incomplete' setting
    view = complete_view(make_batch(split, missing_vision, with_targets=True))  # 'same'
    assert view["available"].all()
    assert torch.allclose(view["vision"], torch.from_numpy(split.features["V"]))
    assert view["vision_mask"].sum(1).tolist() == split.lengths["V"].tolist()


def test_random_patterns_draws_every_missing_pattern_and_never_the_full_one():
    flags = random_patterns(600, generator=torch.Generator().manual_seed(0))
    rows = {tuple(r) for r in flags.tolist()}
    assert len(rows) == len(MISSING_PATTERNS) == 6
    assert (True, True, True) not in rows and flags.any(1).all()


def test_a_methods_own_missingness_applies_under_the_complete_setting_only():
    split = tiny_bundle().splits["train"]
    given = torch.tensor([[True, False, True]] * len(split))
    masked = make_batch(split, given, with_targets=True)
    simulated = []

    def simulate(batch):
        simulated.append(batch)
        return drop_modalities(batch, torch.tensor([[True, False, False]] * len(split)))

    for setting in ("same", "incomplete"):
        assert training_input(masked, setting, simulate) is masked  # the benchmark's mask, nothing added
    inputs, target = training_views(masked, "same", simulate)
    assert inputs is masked and target["available"].all() and not simulated
    complete = make_batch(split)
    inputs, target = training_views(complete, "complete", simulate)
    assert simulated == [complete] and inputs["available"].tolist() == [[True, False, False]] * len(split)
    assert torch.equal(target["vision"], complete["vision"])
    torch.manual_seed(0)
    assert not training_input(complete, "complete")["available"].all()  # default: one of the 7 patterns


def test_a_stage_reads_training_batches_only_and_comes_back_frozen():
    bundle = tiny_bundle()
    datamodule = MissingModalityDataModule(bundle, train_mask=None, valid_masks={}, test_masks={},
                                           train_setting="complete", batch_size=16)
    teacher = nn.Linear(12, 1)
    seen: list[str] = []

    def loss(batch):
        seen.extend(batch["id"])
        return ((teacher(batch["text"].mean(1)).squeeze(-1) - batch["label"]) ** 2).mean()

    before = teacher.weight.detach().clone()
    L.seed_everything(0)
    fit_stage(teacher, loss, datamodule.train_dataloader(), epochs=2, lr=1e-2)
    assert sorted(set(seen)) == sorted(bundle.splits["train"].ids.tolist()) and len(seen) == 2 * 64
    assert not torch.equal(before, teacher.weight)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
