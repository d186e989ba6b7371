"""One suite over every registered method: builds from its YAML, learns on a tiny batch, respects masks."""
import pytest
import torch

from mmbench.config import load_method_config, resolve_config, split_budget
from mmbench.registry import get_method_class, method_names
from tests.helpers import make_batch, tiny_bundle, tiny_info

SHIPPED = method_names(include_runtime=False)  # the shipped methods, not test doubles


def _importable(name: str) -> bool:
    try:
        get_method_class(name)
    except Exception:  # noqa: BLE001 - reported by test_every_shipped_method_imports
        return False
    return True


# A method whose module fails to import fails the test below, not the collection of every other one.
METHODS = [name for name in SHIPPED if _importable(name)]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_method_imports(name):
    assert get_method_class(name).__name__


def build(name: str, bundle):
    cls = get_method_class(name)
    constructor, _ = split_budget({**load_method_config(name), **cls.quick_profile})  # the budget is the runner's
    config = resolve_config(cls, constructor)
    return cls(data=tiny_info(bundle), **config)


def _loss(model, batch) -> torch.Tensor:
    losses = model.training_loss(batch)
    return losses if isinstance(losses, torch.Tensor) else losses["loss"]


@pytest.mark.parametrize("name", METHODS)
def test_builds_and_predicts_one_score_per_sample(name):
    bundle = tiny_bundle()
    model = build(name, bundle).eval()
    batch = make_batch(bundle.splits["valid"])
    with torch.no_grad():
        preds = model(batch)
    assert preds.shape == (len(bundle.splits["valid"]),)
    assert torch.isfinite(preds).all()


@pytest.mark.parametrize("name", [n for n in METHODS if getattr(get_method_class(n), "trainable", True)])
def test_training_loss_is_finite_and_falls(name):
    torch.manual_seed(0)
    bundle = tiny_bundle()
    model = build(name, bundle)
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


@pytest.mark.parametrize("name", METHODS)
def test_a_masked_out_modality_cannot_change_the_prediction(name):
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
