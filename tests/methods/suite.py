"""The generic checks every method passes, by registered name.

``test_methods.py`` runs them on every shipped method and ``test_outside_method.py`` on a method
registered from outside the package: a new method gets them by being registered, nothing else.
"""
from __future__ import annotations

import torch

from mmbench.config import load_method_config, resolve_config, split_budget
from mmbench.registry import get_method_class
from tests.helpers import make_batch, tiny_bundle, tiny_info


def build(name: str, bundle):
    """The method as the runner builds it under ``--profile quick``: its YAML, its quick profile."""
    cls = get_method_class(name)
    constructor, _ = split_budget({**load_method_config(name), **cls.quick_profile})  # the budget is the runner's
    return cls(data=tiny_info(bundle), **resolve_config(cls, constructor))


def _loss(model, batch) -> torch.Tensor:
    losses = model.training_loss(batch)
    return losses if isinstance(losses, torch.Tensor) else losses["loss"]


def builds_and_predicts_one_finite_score_per_sample(name: str) -> None:
    bundle = tiny_bundle()
    model = build(name, bundle).eval()
    batch = make_batch(bundle.splits["valid"])
    with torch.no_grad():
        preds = model(batch)
    assert preds.shape == (len(bundle.splits["valid"]),)
    assert torch.isfinite(preds).all()


def predictions_are_the_validation_scores_with_input_space_recoveries(name: str) -> None:
    """The runner tests with ``predict_step`` what validation selected with ``forward``: the same
    scores. Recovered features, if any, are one tensor per modality in its input feature space."""
    bundle = tiny_bundle()
    model = build(name, bundle).eval()
    split = bundle.splits["test"]
    available = torch.tensor([[True, False, True], [False, True, False], [True, True, True]] * (len(split) // 3))
    batch = make_batch(split, available)
    with torch.no_grad():
        scores = model(batch)
        out = model.predict_step(batch, 0)
    assert out["id"] == batch["id"] and torch.equal(out["label"], batch["label"])
    assert torch.allclose(out["pred"], scores.float(), atol=1e-6)
    dims = tiny_info(bundle).dims
    for m, features in out.get("recovered", {}).items():
        assert features.shape[0] == len(split) and features.shape[-1] == dims[m], m
        assert torch.isfinite(features).all(), m


def training_loss_is_finite_and_falls(name: str) -> None:
    torch.manual_seed(0)
    bundle = tiny_bundle()
    model = build(name, bundle)
    if not get_method_class(name).trainable:  # nothing to fit: then nothing may claim to be fitted
        assert not any(p.requires_grad for p in model.parameters())
        return
    batch = make_batch(bundle.splits["train"], with_targets=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    first = _loss(model, batch)
    assert torch.isfinite(first)
    for _ in range(30):
        optimizer.zero_grad()
        loss = _loss(model, batch)
        loss.backward()
        optimizer.step()
    assert _loss(model, batch).item() < first.item()


def a_masked_out_modality_cannot_change_the_prediction(name: str) -> None:
    bundle = tiny_bundle()
    model = build(name, bundle).eval()
    split = bundle.splits["test"]
    available = torch.ones(len(split), 3, dtype=torch.bool)
    available[:, 1] = False  # vision removed
    batch = make_batch(split, available)
    tampered = dict(batch)
    tampered["vision"] = torch.randn_like(batch["vision"]) * 10  # what a leak would read
    with torch.no_grad():
        assert torch.allclose(model(batch), model(tampered), atol=1e-5)


def declared_modality_parameters_are_its_own_disjoint_and_trained(name: str) -> None:
    """What a method declares per modality (the learning index reads it) is its own trainable
    parameters, each in one modality only, and each modality's gets a gradient from the task loss.
    A method that declares nothing is reported as such (no index), which passes."""
    bundle = tiny_bundle()
    model = build(name, bundle).train()
    groups = model.modality_parameters()
    if groups is None:
        return
    assert set(groups) == {"L", "V", "A"} and all(groups.values())
    owned = {id(p) for p in model.parameters()}
    ids = [id(p) for params in groups.values() for p in params]
    assert len(ids) == len(set(ids)) and set(ids) <= owned
    _loss(model, make_batch(bundle.splits["train"])).backward()
    for modality, params in groups.items():
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params), modality


CHECKS = (builds_and_predicts_one_finite_score_per_sample,
          predictions_are_the_validation_scores_with_input_space_recoveries,
          training_loss_is_finite_and_falls, a_masked_out_modality_cannot_change_the_prediction,
          declared_modality_parameters_are_its_own_disjoint_and_trained)
