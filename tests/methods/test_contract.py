"""The written method contract (mmbench.method): what every shipped method declares and imports."""
import ast
import inspect
import sys

import pytest
import torch

from mmbench.config import FitSettings, constructor_params, resolve_config
from mmbench.method import MMBenchMethod, Prediction
from mmbench.registry import get_method_class
from tests.helpers import make_batch, tiny_bundle, tiny_info
from tests.methods.test_methods import METHODS

FIT_NAMES = [name for name in FitSettings.__dataclass_fields__]
CLASSES = sorted({get_method_class(name) for name in METHODS}, key=lambda cls: cls.__name__)


@pytest.mark.parametrize("cls", [c for c in CLASSES if c.trainable], ids=lambda cls: cls.__name__)
def test_fit_settings_are_declared_once_and_configured_by_name(cls):
    for klass in cls.__mro__[:cls.__mro__.index(MMBenchMethod)]:  # the method's own constructors
        assert not set(FIT_NAMES) & set(inspect.signature(klass.__init__).parameters), klass
    params = constructor_params(cls)
    assert {name: params[name].default for name in FIT_NAMES} == vars(cls.fit_defaults)
    assert {name: resolve_config(cls, {})[name] for name in FIT_NAMES} == vars(cls.fit_defaults)


class Recovering(MMBenchMethod):
    """Scores zero and 'recovers' vision as ones: it implements ``predict`` and nothing else of the step."""

    def forward(self, batch):
        return torch.zeros(len(batch["label"]))

    def predict(self, batch):
        return Prediction(self(batch), {"V": torch.ones(len(batch["label"]), 6, requires_grad=True)})


def test_the_runners_predict_step_returns_what_predict_recovered():
    bundle = tiny_bundle()
    batch = make_batch(bundle.splits["test"])
    out = Recovering(tiny_info(bundle)).predict_step(batch, 0)
    assert out["id"] == batch["id"] and torch.equal(out["pred"], torch.zeros(len(batch["label"])))
    recovered = out["recovered"]["V"]
    assert torch.equal(recovered, torch.ones(len(batch["label"]), 6)) and not recovered.requires_grad


def test_imagination_baselines_predict_from_one_imagination(monkeypatch):
    from baselines.imagination.ae import AE

    bundle = tiny_bundle()
    model = AE(tiny_info(bundle), hidden_dim=16).eval()
    calls = []
    imagine = model.imagine
    monkeypatch.setattr(model, "imagine", lambda batch: calls.append(1) or imagine(batch))
    with torch.no_grad():
        out = model.predict_step(make_batch(bundle.splits["test"]), 0)
    assert len(calls) == 1 and set(out["recovered"]) == {"L", "V", "A"}


def _imported_modules(cls: type) -> set[str]:
    """Every module the source files of ``cls`` and its method base classes import."""
    imported = set()
    for klass in cls.__mro__[:cls.__mro__.index(MMBenchMethod)]:
        tree = ast.parse(inspect.getsource(sys.modules[klass.__module__]))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
    return imported


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_methods_import_the_contract_not_the_data_module(cls):
    assert "mmbench.data.datamodule" not in _imported_modules(cls)
