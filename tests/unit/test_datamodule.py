"""The DataModule serves what each training setting allows, and the same mask file gives the same inputs."""
import numpy as np
import torch

from mmbench.constants import PATTERNS
from mmbench.data.datamodule import MaskedSplit, MissingModalityDataModule, training_feature_stats
from mmbench.masks import run_masks, saved_mask
from tests.helpers import tiny_bundle


def _all(dataset) -> dict:
    return dataset.__getitems__(list(range(len(dataset))))


def test_two_methods_reading_one_saved_mask_file_see_identical_inputs(tmp_path):
    bundle = tiny_bundle()
    split = bundle.splits["test"]
    first = saved_mask(tmp_path, "mosi-synth", "test", split, "random", "0.5", 1111)
    files = list((tmp_path / "mosi-synth").glob("*.npz"))
    second = saved_mask(tmp_path, "mosi-synth", "test", split, "random", "0.5", 1111)  # loaded, not redrawn
    assert len(files) == 1 and first.sha256() == second.sha256()
    batch_a, batch_b = _all(MaskedSplit(split, first)), _all(MaskedSplit(split, second))
    for key in ("text", "vision", "audio", "available", "text_mask"):
        assert torch.equal(batch_a[key], batch_b[key])
    assert batch_a["raw_text"] == batch_b["raw_text"]


def test_removed_modalities_are_zero_and_the_transcript_is_withheld(tmp_path):
    bundle = tiny_bundle()
    split = bundle.splits["test"]
    mask = saved_mask(tmp_path, "mosi-synth", "test", split, "fixed", "VA", 1111)
    batch = _all(MaskedSplit(split, mask))
    assert not batch["available"][:, 0].any() and batch["available"][:, 1:].all()
    assert torch.count_nonzero(batch["text"]) == 0 and not batch["text_mask"].any()
    assert set(batch["raw_text"]) == {""}
    assert torch.count_nonzero(batch["vision"]) > 0


def test_training_settings_decide_what_the_training_batch_reveals(tmp_path):
    bundle = tiny_bundle()
    for setting, expect_targets in (("complete", False), ("same", True), ("incomplete", False)):
        train_mask, valid, test = run_masks(tmp_path, "mosi-synth", bundle.splits, "random", "0.5", 1111, setting)
        module = MissingModalityDataModule(bundle, train_mask=train_mask, valid_masks=valid, test_masks=test,
                                           train_setting=setting, batch_size=16)
        batch = next(iter(module.train_dataloader()))
        assert ("full_vision" in batch) == expect_targets, setting
        if setting == "complete":
            assert batch["available"].all()
        else:
            assert not batch["available"].all()
            removed = ~batch["available"][:, 1]
            assert torch.count_nonzero(batch["vision"][removed]) == 0
            if expect_targets:  # the targets hold the true features of what was removed
                assert torch.count_nonzero(batch["full_vision"][removed]) > 0
        evaluation = next(iter(module.test_dataloader()[0]))
        assert not any(key.startswith("full_") for key in evaluation)


def test_fixed_runs_validate_and_test_on_all_seven_patterns(tmp_path):
    bundle = tiny_bundle()
    train_mask, valid, test = run_masks(tmp_path, "mosi-synth", bundle.splits, "fixed", "all", 1111, "complete")
    assert train_mask is None and list(valid) == list(PATTERNS) == list(test)
    incomplete_mask, _, _ = run_masks(tmp_path, "mosi-synth", bundle.splits, "fixed", "all", 1111, "incomplete")
    patterns = {tuple(row) for row in incomplete_mask.available.tolist()}
    assert len(patterns) > 3 and all(any(row) for row in patterns)


def test_frame_masks_drop_steps_inside_modalities(tmp_path):
    bundle = tiny_bundle()
    split = bundle.splits["test"]
    mask = saved_mask(tmp_path, "mosi-synth", "test", split, "frame", "0.5", 1111)
    batch = _all(MaskedSplit(split, mask))
    valid_steps = torch.arange(split.seq_lens()["A"])[None, :] < torch.from_numpy(split.lengths["A"])[:, None]
    kept = batch["audio_mask"][valid_steps].float().mean().item()
    assert batch["available"].all() and 0.35 < kept < 0.65
    assert torch.count_nonzero(batch["audio"][~batch["audio_mask"]]) == 0
    assert np.isclose(mask.target_rate, 0.5)


def test_a_non_finite_value_in_a_removed_modality_or_padding_never_reaches_a_method(tmp_path):
    # Masking goes through mmbench.missing.apply_mask (``where``, not a product): NaN * 0 would be NaN.
    bundle = tiny_bundle()
    split = bundle.splits["test"]
    split.features["L"] = np.full_like(split.features["L"], np.nan)
    split.features["V"] = np.asarray(split.features["V"]).copy()
    split.lengths["V"] = np.minimum(split.lengths["V"], 2)
    split.features["V"][:, 2:] = np.inf  # beyond every length: padding
    mask = saved_mask(tmp_path, "mosi-synth", "test", split, "fixed", "VA", 1111)
    batch = _all(MaskedSplit(split, mask))
    assert torch.count_nonzero(batch["text"]) == 0 and torch.isfinite(batch["vision"]).all()
    assert not batch["vision_mask"][:, 2:].any() and batch["vision_mask"][:, 0].all()


def test_observed_statistics_count_only_what_the_training_mask_leaves(tmp_path):
    bundle = tiny_bundle()
    train = bundle.splits["train"]
    mask = saved_mask(tmp_path, "mosi-synth", "train", train, "fixed", "VA", 1111)
    stats = training_feature_stats(train, chunk=7, mask=mask)
    steps = np.arange(train.features["A"].shape[1])[None, :] < np.asarray(train.lengths["A"])[:, None]
    valid = np.asarray(train.features["A"], dtype=np.float64)[steps]
    assert np.allclose(stats["A"][0], valid.mean(0), atol=1e-5)
    assert np.allclose(stats["L"][0], 0.0)  # language removed everywhere: nothing observed
