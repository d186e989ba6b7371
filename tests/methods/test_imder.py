"""What could silently go wrong in imder: the SDE loss and sampler, the MR = 0 stage's data, the masks,
one sampler for training, validation and test, the training patterns of each setting."""
import math

import torch

from baselines.imder.method import IMDer
from baselines.imder.score_unet import VESDE
from tests.helpers import fit_tiny, make_batch, tiny_bundle, tiny_datamodule, tiny_info, mask_given_and_nothing_removed

SMALL = dict(IMDer.quick_profile, layers=1, time_embed_dim=32, sampling_steps=3)  # cheap tests


def point_mass_score(sde: VESDE, centre: torch.Tensor):
    """Exact score of p_t = N(centre, std(t)^2 I): the data are the single point ``centre``."""
    return lambda x, t: -(x - centre) / sde.marginal_std(t).view(-1, 1, 1) ** 2


def gaussian_score(sde: VESDE, scale: float, factor: float = 1.0):
    """(factor x) the exact score of p_t = N(0, (scale^2 + std(t)^2) I)."""
    return lambda x, t: -factor * x / (scale ** 2 + sde.marginal_std(t).view(-1, 1, 1) ** 2)


def test_marginal_std_and_diffusion_coefficient_follow_imder_sigma_25():
    sde = VESDE(25.0)
    t = torch.tensor([0.0, 0.5, 1.0])
    assert torch.allclose(sde.marginal_std(t)[0], torch.tensor(0.0))
    assert torch.allclose(sde.marginal_std(t)[2], torch.tensor((624 / (2 * math.log(25.0))) ** 0.5))
    assert torch.allclose(sde.diffusion_coeff(t), torch.tensor([1.0, 5.0, 25.0]))


def test_dsm_loss_vanishes_for_the_exact_score_of_a_point_mass_and_not_for_a_wrong_one():
    sde = VESDE(25.0)
    centre = torch.tensor([[1.5, -2.0, 0.5]]).expand(4, 3)
    data = centre.expand(256, 4, 3)
    exact = sde.dsm_loss(point_mass_score(sde, centre), data, torch.Generator().manual_seed(0))
    wrong = sde.dsm_loss(lambda x, t: 1.2 * point_mass_score(sde, centre)(x, t), data, torch.Generator().manual_seed(0))
    assert exact.item() < 1e-6 and wrong.item() > 0.1


def test_dsm_loss_is_minimised_by_the_true_score_of_gaussian_data():
    sde = VESDE(25.0)
    data = 2.0 * torch.randn(4096, 2, 2, generator=torch.Generator().manual_seed(1))
    losses = {factor: sde.dsm_loss(gaussian_score(sde, 2.0, factor), data, torch.Generator().manual_seed(2)).item()
              for factor in (0.8, 1.0, 1.25)}
    assert losses[1.0] < losses[0.8] and losses[1.0] < losses[1.25]


def test_euler_maruyama_with_the_exact_score_recovers_a_concentrated_distribution():
    # A near point mass N(centre, 0.3^2): the exact point-mass score is too stiff for EM at t -> eps
    # (dt / std(eps)^2 = 10 with 100 steps), the smoothed one is the known-answer case.
    sde = VESDE(25.0)
    centre = torch.tensor([[1.5, -2.0, 0.5]]).expand(4, 3)
    score = lambda x, t: -(x - centre) / (0.09 + sde.marginal_std(t).view(-1, 1, 1) ** 2)  # noqa: E731
    samples = sde.euler_maruyama(score, (2000, 4, 3), 100, "cpu", torch.Generator().manual_seed(0))
    assert (samples.mean(0) - centre).abs().max().item() < 0.05
    assert abs(samples.std(0).mean().item() - 0.3) < 0.05
    coarse = sde.euler_maruyama(score, (2000, 4, 3), 10, "cpu", torch.Generator().manual_seed(0))
    assert (coarse.mean(0) - centre).abs().max().item() < 0.3  # 10 steps from std(1) ~ 9.8: coarser


def test_euler_maruyama_with_the_exact_score_samples_a_gaussian_of_the_right_scale():
    sde = VESDE(25.0)
    samples = sde.euler_maruyama(gaussian_score(sde, 2.0), (2000, 2, 2), 100, "cpu", torch.Generator().manual_seed(0))
    assert abs(samples.std().item() - 2.0) < 0.2 and abs(samples.mean().item()) < 0.1


def test_mr0_stage_sees_training_samples_only_and_one_sampler_serves_training_validation_and_test():
    bundle = tiny_bundle()
    model = IMDer(tiny_info(bundle), **{**SMALL, "pretrain_epochs": 2, "sampling_steps": 2})
    seen, calls = [], []
    original_loss, original_sampler = model.pretrain_loss, model.sde.euler_maruyama

    def recording_loss(batch):
        seen.extend(batch["id"])
        return original_loss(batch)

    def recording_sampler(score_fn, shape, n_steps, device, generator=None):
        calls.append(("train" if model.training else "eval", n_steps))
        return original_sampler(score_fn, shape, n_steps, device, generator)

    model.pretrain_loss = recording_loss
    model.sde.euler_maruyama = recording_sampler
    fit_tiny(model, tiny_datamodule(bundle), epochs=1)
    assert len(seen) == 2 * len(bundle.splits["train"])  # two MR = 0 epochs over the training split
    assert set(seen) == set(bundle.splits["train"].ids.tolist())
    assert not any(p.requires_grad for p in model.projections.parameters())  # frozen, as IMDer
    assert all(p.requires_grad for p in model.backbone.parameters())  # fine-tuned in the main stage
    assert {phase for phase, _ in calls} == {"train", "eval"}  # training steps and validation both sampled
    model.eval()
    with torch.no_grad():  # the runner's test predictions
        model.predict_step(make_batch(bundle.splits["test"], torch.tensor([[True, False, True]] * 24)), 0)
    assert calls[-1] == ("eval", 2)
    assert {n for _, n in calls} == {2}  # the checkpoint is chosen on samples drawn like the test's


def test_recovery_reads_only_what_the_mask_leaves_and_evaluation_is_repeatable():
    bundle = tiny_bundle()
    model = IMDer(tiny_info(bundle), **SMALL).eval()
    split = bundle.splits["test"]
    available = torch.tensor([[True, False, False], [False, True, True], [True, True, False]] * 8)
    batch = make_batch(split, available)
    tampered = dict(batch, vision=torch.randn_like(batch["vision"]) * 10, audio=torch.randn_like(batch["audio"]) * 10)
    tampered["vision"][available[:, 1]] = batch["vision"][available[:, 1]]
    tampered["audio"][available[:, 2]] = batch["audio"][available[:, 2]]
    with torch.no_grad():
        first = model.predict_step(batch, 0)
        again = model.predict_step(tampered, 0)
    assert torch.allclose(first["pred"], again["pred"], atol=1e-5)
    for m, (_, dim) in zip("LVA", [("text", 12), ("vision", 6), ("audio", 4)]):
        recovered = first["recovered"][m]
        assert recovered.shape == (len(split), batch[{"L": "text", "V": "vision", "A": "audio"}[m]].shape[1], dim)
        assert torch.allclose(recovered, again["recovered"][m], atol=1e-5)


def availability_seen_in_training(model, batch: dict) -> torch.Tensor:
    """The availability flags the recovery step of a training step works on."""
    seen = []
    recover = model.recover

    def recording(sequences, masks, available, *args, **kwargs):
        seen.append(available.clone())
        return recover(sequences, masks, available, *args, **kwargs)

    model.recover = recording
    model.training_loss(batch)
    return seen[0]


def test_own_patterns_are_drawn_under_complete_only_and_same_trains_on_the_given_mask():
    torch.manual_seed(0)
    bundle = tiny_bundle()
    split = bundle.splits["train"]
    same = IMDer(tiny_info(bundle, train_setting="same"), **SMALL)
    given, nothing_removed = mask_given_and_nothing_removed(split)
    assert torch.equal(availability_seen_in_training(same, make_batch(split, given, with_targets=True)), given)
    assert availability_seen_in_training(same, make_batch(split, nothing_removed)).all()
    complete = IMDer(tiny_info(bundle), **SMALL)
    assert not availability_seen_in_training(complete, make_batch(split)).all()  # its own 7 patterns
    losses = same.training_loss(make_batch(split, torch.ones(len(split), 3, dtype=torch.bool), with_targets=True))
    assert losses["score"].item() == 0 and losses["reconstruction"].item() == 0  # nothing missing, nothing scored
