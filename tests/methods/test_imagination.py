"""What could silently go wrong in ae / cra / mmin: the teacher's data, the targets, the fidelity output,
the training patterns of each setting."""

import torch

from baselines.imagination.ae import AE
from baselines.imagination.cra import CRA
from baselines.imagination.base import ResidualAutoencoder
from baselines.imagination.mmin import MMIN
from mmbench.augment import drop_modalities
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
    model = MMIN(tiny_info(bundle, train_setting="same"), hidden_dim=16, teacher_epochs=1)
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
    model = MMIN(tiny_info(bundle), hidden_dim=16).train()  # the teacher stays in eval mode
    split = bundle.splits["train"]
    complete = make_batch(split)
    incomplete = drop_modalities(complete, torch.tensor([[True, False, True]] * len(split)))
    target = model.reconstruction_target(complete, incomplete)
    assert torch.all(target[:, :16] == 0) and torch.all(target[:, 32:] == 0)  # L and A were available
    with torch.no_grad():
        teacher_vision = model.teacher.encoders(complete)[:, 16:32]
    assert torch.allclose(target[:, 16:32], teacher_vision) and teacher_vision.abs().sum() > 0


def test_mmin_target_under_frame_masking_is_what_the_missing_frames_change():
    bundle = tiny_bundle()
    model = MMIN(tiny_info(bundle), hidden_dim=16).eval()
    split = bundle.splits["train"]
    complete = make_batch(split)
    partial = dict(complete)
    partial["audio_mask"] = complete["audio_mask"].clone()
    partial["audio_mask"][:, 3:] = False  # all modalities "available", audio frames 3.. removed
    partial["audio"] = complete["audio"] * partial["audio_mask"].unsqueeze(-1)
    target = model.reconstruction_target(complete, partial)
    assert torch.all(target[:, :32] == 0)  # language and vision are whole
    assert target[:, 32:].abs().sum() > 0  # not a target of zeros as a missing-modality-only rule gives


def test_mmin_reconstruction_and_cycle_terms_vanish_exactly_at_their_targets():
    bundle = tiny_bundle()
    model = MMIN(tiny_info(bundle), hidden_dim=16).eval()
    split = bundle.splits["train"]
    complete = make_batch(split)
    incomplete = drop_modalities(complete, torch.tensor([[False, True, True]] * len(split)))
    target = model.reconstruction_target(complete, incomplete)
    assert model.reconstruction_loss(target, complete, incomplete) == 0
    with torch.no_grad():  # the complete embedding is the wrong target: it also fills the available slots
        whole = model.teacher.encoders(complete)
    assert model.reconstruction_loss(whole, complete, incomplete) > 0
    embedding = model.encoders(incomplete)
    model.cycle_autoencoder.forward = lambda imagined: (embedding.detach() + 0 * imagined, None)
    assert model.cycle_loss(target, embedding) == 0  # the cycle target is the observed embedding


def test_ae_and_cra_reconstruct_the_complete_embedding_and_its_loss_vanishes_there():
    bundle = tiny_bundle()
    split = bundle.splits["train"]
    complete = make_batch(split)
    incomplete = drop_modalities(complete, torch.tensor([[True, False, False]] * len(split)))
    for cls in (AE, CRA):
        model = cls(tiny_info(bundle), hidden_dim=16).eval()
        with torch.no_grad():
            whole = model.encoders(complete)
        assert torch.equal(model.reconstruction_target(complete, incomplete), whole)
        assert model.reconstruction_loss(whole, complete, incomplete) == 0
        assert model.reconstruction_loss(model.encoders(incomplete), complete, incomplete) > 0


def test_each_network_is_clipped_separately():
    bundle = tiny_bundle()
    model = MMIN(tiny_info(bundle), hidden_dim=16, gradient_clip=0.5)
    (model.training_loss(make_batch(bundle.splits["train"]))["loss"] * 1e3).backward()
    model.configure_gradient_clipping(None)
    for network in model.clipped_networks():
        grads = [p.grad for p in network.parameters() if p.grad is not None]
        assert torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])) <= 0.5 + 1e-4


def inputs_seen_in_training(model, batch: dict) -> torch.Tensor:
    """The availability flags of what the model's training step encodes."""
    seen = []
    imagine = model.imagine

    def recording(view):
        seen.append(view["available"].clone())
        return imagine(view)

    model.imagine = recording
    model.training_loss(batch)
    return seen[0]


def test_own_patterns_are_drawn_under_complete_only_and_same_trains_on_the_given_mask():
    bundle = tiny_bundle()
    split = bundle.splits["train"]
    torch.manual_seed(0)
    for cls in (AE, MMIN):
        same = cls(tiny_info(bundle, train_setting="same"), hidden_dim=16)
        given = torch.tensor([[False, True, True], [True, True, True]] * (len(split) // 2))
        assert torch.equal(inputs_seen_in_training(same, make_batch(split, given, with_targets=True)), given)
        # A mask that removed nothing (rate 0.0): the setting, not the batch's keys, says nothing is added.
        everything = torch.ones(len(split), 3, dtype=torch.bool)
        assert inputs_seen_in_training(same, make_batch(split, everything)).all()
        complete = cls(tiny_info(bundle), hidden_dim=16)
        assert not inputs_seen_in_training(complete, make_batch(split)).all()  # its own 7 patterns


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
