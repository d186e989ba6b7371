"""CorrKD: the teacher's data, each distillation term on a case with a known answer, MRM never restores
and applies under the complete setting only."""

import pytest
import torch

from baselines.corrkd import (CorrKD, JensenShannonMI, category_prototype_distillation, decoupled_responses,
                              sample_contrastive_distillation, sentiment_classes)
from tests.helpers import fit_tiny, make_batch, tiny_bundle, tiny_datamodule, tiny_info

SMALL = {"dim": 8, "heads": 2, "layers": 1}


@pytest.mark.parametrize("train_setting", ["complete", "same"])
def test_teacher_sees_training_samples_only_and_only_the_student_predicts(train_setting):
    bundle = tiny_bundle()
    model = CorrKD(tiny_info(bundle, train_setting=train_setting), teacher_epochs=2, **SMALL)
    seen: list[str] = []
    original = model.teacher_loss
    model.teacher_loss = lambda batch: (seen.extend(batch["id"]), original(batch))[1]
    fit_tiny(model, tiny_datamodule(bundle, train_setting), epochs=1)
    assert not any(p.requires_grad for p in model.teacher.parameters())  # frozen after its stage
    assert len(seen) == 2 * len(bundle.splits["train"])
    assert set(seen) == set(bundle.splits["train"].ids.tolist())
    model.eval()
    batch = make_batch(bundle.splits["test"])
    with torch.no_grad():
        assert torch.equal(model(batch), model.student(batch)[1])
        for p in model.teacher.parameters():
            p.add_(1.0)  # a different teacher changes nothing at prediction time
        assert torch.equal(model(batch), model.student(batch)[1])


def test_scd_is_zero_for_identical_pairs_farther_apart_than_the_margin_and_positive_otherwise():
    teacher = torch.eye(4) * 5  # unit vectors after normalisation: pairwise distance sqrt(2) > 1
    assert sample_contrastive_distillation(teacher.clone(), teacher, margin=1.0).item() == 0.0
    assert sample_contrastive_distillation(teacher.roll(1, 0), teacher, margin=1.0) > 0
    assert sample_contrastive_distillation(teacher.clone(), teacher, margin=2.0) > 0  # negatives too close


def test_cpd_is_zero_for_identical_representations_and_ignores_absent_classes():
    h = torch.randn(6, 5)
    classes = torch.tensor([0, 0, 3, 3, 6, 6])
    assert category_prototype_distillation(h, h.clone(), classes).item() < 1e-12
    assert category_prototype_distillation(torch.randn(6, 5), h, classes) > 0


def test_decoupled_responses_and_the_mi_estimator_separate_dependent_from_independent_pairs():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    binary, others = decoupled_responses(logits, torch.tensor([0, 2]))
    assert torch.allclose(binary.sum(1), torch.ones(2)) and others.shape == (2, 2)
    assert torch.allclose(others, torch.full((2, 2), 0.5))
    torch.manual_seed(0)
    estimator = JensenShannonMI(2)
    optimizer = torch.optim.Adam(estimator.parameters(), lr=1e-2)
    a = torch.randn(256, 2)
    for _ in range(200):
        optimizer.zero_grad()
        (-estimator(a, a)).backward()
        optimizer.step()
    with torch.no_grad():
        dependent, independent = estimator(a, a), estimator(a, torch.randn(256, 2))
    assert dependent > independent + 0.3


def test_sentiment_classes_are_the_rounded_clipped_scores_on_mosi():
    labels = torch.tensor([-3.4, -2.6, -0.4, 0.0, 0.6, 2.5, 3.0])
    assert sentiment_classes(labels, (-3.0, 3.0), 7).tolist() == [0, 0, 3, 3, 4, 6, 6]


def _record_inputs(network, store: list) -> None:
    original = network.forward
    network.forward = lambda batch: (store.append(batch), original(batch))[1]


def test_under_same_the_teacher_reads_the_full_features_and_the_student_the_masked_batch():
    bundle = tiny_bundle()
    model = CorrKD(tiny_info(bundle, train_setting="same"), **SMALL)
    split = bundle.splits["train"]
    available = torch.ones(len(split), 3, dtype=torch.bool)
    available[::2, 1] = False  # vision removed from every other sample
    available[1::2, 0] = False  # language from the others
    batch = make_batch(split, available, with_targets=True)
    teacher_inputs, student_inputs = [], []
    _record_inputs(model.teacher, teacher_inputs)
    _record_inputs(model.student, student_inputs)
    model.training_loss(batch)
    (teacher_batch,), (student_batch,) = teacher_inputs, student_inputs
    assert teacher_batch["available"].all()
    for field in ("text", "vision", "audio"):
        assert torch.equal(teacher_batch[field], batch[f"full_{field}"])
        assert torch.equal(student_batch[field], batch[field])  # nothing restored for the student
        assert not (student_batch[f"{field}_mask"] & ~batch[f"{field}_mask"]).any()
    assert torch.equal(student_batch["available"], available)


def test_modality_random_missing_only_removes():
    bundle = tiny_bundle()
    model = CorrKD(tiny_info(bundle), **SMALL)
    batch = make_batch(bundle.splits["train"])
    torch.manual_seed(0)
    dropped = model.modality_random_missing(batch)
    assert not dropped["available"].all() and dropped["available"].any(1).all()
    for field in ("text", "vision", "audio"):
        assert not (dropped[f"{field}_mask"] & ~batch[f"{field}_mask"]).any()
        kept = dropped[f"{field}_mask"].unsqueeze(-1)
        assert torch.equal(dropped[field], batch[field] * kept)


def student_input_in_training(model, batch: dict) -> dict:
    student_inputs: list[dict] = []
    _record_inputs(model.student, student_inputs)
    model.training_loss(batch)
    return student_inputs[0]


def test_mrm_applies_under_complete_only_and_same_trains_on_the_given_mask_as_it_is():
    torch.manual_seed(0)
    bundle = tiny_bundle()
    split = bundle.splits["train"]
    same = CorrKD(tiny_info(bundle, train_setting="same"), **SMALL)
    # A mask that removed nothing (rate 0.0): the setting, not the batch's keys, says nothing is added.
    given = make_batch(split, torch.ones(len(split), 3, dtype=torch.bool))
    seen = student_input_in_training(same, given)
    assert seen["available"].all()
    for field in ("text", "vision", "audio"):
        assert torch.equal(seen[f"{field}_mask"], given[f"{field}_mask"])  # no frame dropped on top
    complete = CorrKD(tiny_info(bundle), **SMALL)
    seen = student_input_in_training(complete, make_batch(split))
    assert not seen["available"].all()  # MRM: whole modalities removed ...
    assert any((seen[f"{f}_mask"].sum(1) < given[f"{f}_mask"].sum(1))[seen["available"][:, i]].any()
               for i, f in enumerate(("text", "vision", "audio")))  # ... and frames of kept ones
