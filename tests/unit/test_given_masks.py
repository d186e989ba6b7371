"""The training missingness is the benchmark's: frame masks reach the transcript, fusion adds nothing under same."""
import numpy as np
import torch

from mmbench.data.datamodule import MaskedSplit
from mmbench.missing import MaskSet
from mmbench.reference import Fusion
from tests.helpers import make_batch, mask_given_and_nothing_removed, tiny_bundle, tiny_info


def test_a_frame_mask_removes_the_dropped_steps_words_from_the_transcript():
    split = tiny_bundle().splits["test"]
    n, steps = len(split), split.features["L"].shape[1]
    frames = {m: np.ones((n, split.features[m].shape[1]), dtype=bool) for m in ("L", "V", "A")}
    words = [len(text.split()) for text in split.raw_text]
    lengths = np.asarray(split.lengths["L"])
    # drop the language step that holds each transcript's last word
    for row in range(n):
        frames["L"][row, ((words[row] - 1) * lengths[row]) // words[row]] = False
    mask = MaskSet(dataset="mosi-synth", split="test", protocol="frame", condition="0.1", seed=0, ids=split.ids,
                   available=np.ones((n, 3), dtype=bool), frames=frames)
    batch = MaskedSplit(split, mask).__getitems__(list(range(n)))
    for served, full in zip(batch["raw_text"], split.raw_text):
        assert served.split() == full.split()[:-1]  # the dropped step's word is gone, the others are kept
    assert steps > 1


def _availability_fusion_trains_on(model, batch) -> torch.Tensor:
    seen = []
    predict_from = model.predict_from
    model.predict_from = lambda b, available: (seen.append(available.clone()), predict_from(b, available))[1]
    model.training_loss(batch)
    return seen[0]


def test_fusion_adds_modality_dropout_under_complete_only():
    torch.manual_seed(0)
    bundle = tiny_bundle()
    split = bundle.splits["train"]
    given, nothing_removed = mask_given_and_nothing_removed(split)
    same = Fusion(tiny_info(bundle, train_setting="same"), modality_dropout=0.9)
    assert torch.equal(_availability_fusion_trains_on(same, make_batch(split, given)), given)
    assert _availability_fusion_trains_on(same, make_batch(split, nothing_removed)).all()
    complete = Fusion(tiny_info(bundle), modality_dropout=0.9)
    assert not _availability_fusion_trains_on(complete, make_batch(split)).all()
