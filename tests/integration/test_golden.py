"""The golden check breaks on real changes only: a reordered random draw passes, a broken method fails."""
import pytest
import torch

from mmbench import golden
from mmbench.reference import Fusion


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    """fusion's spread over the three expectation seeds on the synthetic slice, as --update writes it."""
    workdir = tmp_path_factory.mktemp("expected")
    measured = golden.measure(["fusion"], workdir / "data", workdir / "runs", golden.EXPECTED_SEEDS,
                              datasets=("mosi-synth",))
    return golden.summarise(measured)


def _check(tmp_path, expected) -> list[str]:
    measured = golden.measure(["fusion"], tmp_path / "data", tmp_path / "runs", datasets=("mosi-synth",))
    return golden.compare(measured, expected)


def test_the_committed_form_holds_each_seed_and_the_spread(expected):
    entry = expected["entries"]["mosi-synth/fusion"]["LVA/mae"]
    assert len(entry["values"]) == 3 and entry["std"] > 0
    assert golden.compare({"mosi-synth/fusion": {"LVA/mae": [entry["values"][0]]}}, expected) == []


def test_a_change_that_only_reorders_random_draws_passes(tmp_path, expected, monkeypatch):
    seeded = golden.Runner.run

    def run_with_one_extra_draw(self):
        original = torch.nn.Linear.reset_parameters

        def reset(module):  # every layer's initial weights come from a shifted random stream
            torch.rand(7)
            original(module)

        monkeypatch.setattr(torch.nn.Linear, "reset_parameters", reset)
        return seeded(self)

    monkeypatch.setattr(golden.Runner, "run", run_with_one_extra_draw)
    measured = golden.measure(["fusion"], tmp_path / "data", tmp_path / "runs", datasets=("mosi-synth",))
    fresh = measured["mosi-synth/fusion"]["LVA/mae"][0]
    assert fresh not in expected["entries"]["mosi-synth/fusion"]["LVA/mae"]["values"]  # the numbers did move
    assert golden.compare(measured, expected) == []


def test_a_method_whose_fusion_layer_is_zeroed_fails(tmp_path, expected, monkeypatch):
    def zeroed(self, batch, available):
        return self.regressor[-1].bias.expand(len(batch["label"]))  # the fused features never reach the output

    monkeypatch.setattr(Fusion, "predict_from", zeroed)
    problems = _check(tmp_path, expected)
    assert any("mosi-synth/fusion" in p and "outside" in p for p in problems), problems
