"""A method written outside the package, as a user's own package would ship it (README, "Adding a
method"): registered through an entry point of a temporary distribution, it passes the generic suite
and is configured like a shipped method."""
import pytest
import torch
from torch import nn

from mmbench.constants import MODALITIES
from mmbench.layers import masked_mean, modality_inputs
from mmbench.method import DataInfo, FitSettings, MMBenchMethod
from mmbench.registry import method_names
from tests.methods.suite import CHECKS, build
from tests.helpers import tiny_bundle

NAME = "early-fusion-outside"


class EarlyFusion(MMBenchMethod):
    """Time-averaged features of every kept modality and the availability flags -> an MLP.

    Args:
        data: data facts, filled by the runner.
        hidden_dim: width of the MLP.
        **fit: the fit settings; this method's paper (none) would use Adam 5e-3, batches of 16.
    """

    supported_train_settings = ("complete", "same", "incomplete")
    fit_defaults = FitSettings(lr=5e-3, batch_size=16)

    def __init__(self, data: DataInfo, hidden_dim: int = 16, **fit):
        super().__init__(data, **fit)
        self.save_hyperparameters(ignore=["data"])
        width = sum(data.dims.values()) + len(MODALITIES)
        self.mlp = nn.Sequential(nn.Linear(width, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 1))

    def forward(self, batch: dict) -> torch.Tensor:
        pooled = [masked_mean(features, step_mask) for features, step_mask in modality_inputs(batch)]
        fused = torch.cat([*pooled, batch["available"].float()], dim=1)
        return self.scale_to_label_range(self.mlp(fused).squeeze(-1))


@pytest.fixture
def registered(tmp_path, monkeypatch):
    """``NAME`` registered by an installed distribution's entry point, as ``pip install`` would leave it."""
    dist_info = tmp_path / "outside_method-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: outside-method\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(f"[mmbench.methods]\n{NAME} = {__name__}:EarlyFusion\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return NAME


def test_an_installed_distribution_registers_its_method(registered):
    assert registered in method_names(include_runtime=False)  # an entry point, not a run-time registration


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_generic_suite_runs_on_a_method_from_outside(registered, check):
    check(registered)


def _resolved(*overrides: str) -> dict:
    from mmbench.execute import resolved_method_config
    from mmbench.sweep import RunSpec, SweepOptions

    options = SweepOptions(datasets=("mosi-synth",), methods=(NAME,), overrides=overrides)
    return resolved_method_config(RunSpec("mosi-synth", NAME, "fixed", "all", 1111, "complete", "valid", options))[1]


def test_its_fit_settings_resolve_and_route_like_its_own_arguments(registered):
    # The class's defaults, recorded in the resolved config (and so in every run key).
    assert _resolved() == {"hidden_dim": 16, "lr": 5e-3, "weight_decay": 0.0, "lr_patience": 5, "batch_size": 16}
    assert _resolved("lr=0.01", f"{NAME}.batch_size=8")["lr"] == 0.01
    assert _resolved(f"{NAME}.batch_size=8")["batch_size"] == 8
    with pytest.raises(ValueError, match="batch_size=0: must lie in"):
        _resolved("batch_size=0")
    with pytest.raises(ValueError, match="lr='fast': expected a number"):
        _resolved(f"{NAME}.lr=fast")
    with pytest.raises(ValueError, match="did you mean 'lr_patience'"):
        _resolved(f"{NAME}.lr_patiense=3")


def test_the_default_optimiser_reads_the_fit_settings(registered):
    model = build(NAME, tiny_bundle())
    assert model.fit_settings == FitSettings(lr=5e-3, batch_size=16)  # its defaults, declared once
    configured = EarlyFusion(model.data_info, lr=0.02, weight_decay=0.1, lr_patience=3).configure_optimizers()
    group = configured["optimizer"].param_groups[0]
    assert (group["lr"], group["weight_decay"]) == (0.02, 0.1)
    assert configured["lr_scheduler"]["scheduler"].patience == 3
