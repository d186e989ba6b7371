"""What could silently go wrong in ae / cra / mmin: the teacher's data, the targets, the fidelity output."""
import torch

from baselines.ae import AE
from baselines.cra import CRA
from baselines.imagination import ResidualAutoencoder, training_views
from baselines.mmin import MMIN
from tests.helpers import fit_tiny, make_batch, tiny_bundle, tiny_datamodule, tiny_info


def test_mmin_teacher_sees_training_samples_only_and_is_frozen_after_its_stage():
    bundle = tiny_bundle()
    model = MMIN(tiny_info(bundle), hidden_dim=16, teacher_epochs=2)
    seen: list[str] = []
    original = model.teacher_loss

    def recording(batch):
        seen.extend(batch["id"])
        return original(batch)

    model.teacher_loss = recording
    fit_tiny(model, tiny_datamodule(bundle), epochs=1)
    assert len(seen) == 2 * len(bundle.splits["train"])  # two teacher epochs over the training split
    assert set(seen) == set(bundle.splits["train"].ids.tolist())
    assert not any(p.requires_grad for p in model.teacher.parameters())


def test_mmin_teacher_under_the_same_setting_reads_the_true_features():
    bundle = tiny_bundle()
    model = MMIN(tiny_info(bundle), hidden_dim=16, teacher_epochs=1)
    inputs: list[torch.Tensor] = []
    forward = model.teacher.forward

    def recording(batch):
        inputs.append(batch["available"].clone())
        return forward(batch)

    model.teacher.forward = recording
    fit_tiny(model, tiny_datamodule(bundle, train_setting="same"), epochs=1)
    assert inputs and all(flags.all() for flags in inputs)  # complete views, not the masked batches


def test_mmin_targets_only_the_missing_modalities_of_the_teacher_embedding():
    bundle = tiny_bundle()
    model = MMIN(tiny_info(bundle), hidden_dim=16).eval()
    split = bundle.splits["train"]
    complete = make_batch(split)
    available = torch.tensor([[True, False, True]] * len(split))
    target = model.reconstruction_target(complete, available)
    assert torch.all(target[:, :16] == 0) and torch.all(target[:, 32:] == 0)  # L and A were available
    assert torch.allclose(target[:, 16:32], model.teacher.encoders(complete)[:, 16:32])


def test_training_views_draw_patterns_on_complete_batches_and_keep_the_benchmark_mask_otherwise():
    split = tiny_bundle().splits["train"]
    torch.manual_seed(0)
    incomplete, complete = training_views(make_batch(split))
    assert complete["available"].all() and not incomplete["available"].all()
    given = torch.tensor([[False, True, True]] * len(split))
    incomplete, complete = training_views(make_batch(split, given, with_targets=True))
    assert torch.equal(incomplete["available"], given) and complete["available"].all()
    assert torch.allclose(complete["text"], torch.from_numpy(split.features["L"]))


def test_cascade_refines_and_one_block_is_the_plain_autoencoder():
    single, cascade = ResidualAutoencoder(12, (8, 4), 1), ResidualAutoencoder(12, (8, 4), 5)
    x = torch.randn(3, 12)
    assert single(x)[1].shape == (3, 4) and cascade(x)[1].shape == (3, 20)
    x_out = single.decoders[0](single.encoders[0](x))
    assert torch.allclose(single(x)[0], single.transition(x + x_out))


def test_recovered_features_are_input_space_and_learned_to_beat_zero_imputation():
    torch.manual_seed(0)
    bundle = tiny_bundle()
    for cls in (AE, CRA):
        model = cls(tiny_info(bundle), hidden_dim=16)
        batch = make_batch(bundle.splits["train"])
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(60):
            optimizer.zero_grad()
            model.training_loss(batch)["loss"].backward()
            optimizer.step()
        model.eval()
        test = bundle.splits["test"]
        available = torch.tensor([[True, False, True]] * len(test))
        with torch.no_grad():
            vision = model.predict_step(make_batch(test, available), 0)["recovered"]["V"]
        truth = torch.from_numpy(test.features["V"]).sum(1) / torch.from_numpy(test.lengths["V"]).unsqueeze(1)
        assert vision.shape == truth.shape
        assert ((vision - truth) ** 2).mean() < (truth ** 2).mean()
