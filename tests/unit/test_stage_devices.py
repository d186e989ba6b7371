"""A nested stage fit leaves its module on the device it found it on (issue #19, "The GPU path first").

Lightning's strategy teardown calls ``.cpu()`` on the module it fitted. Inside a method on CUDA that
would leave a teacher on the CPU while the method and its batches stay on the GPU. On a CPU host a
move to the CPU cannot be told from staying, so the test records every device move applied to the
stage's module (or to a wrapper holding it): the last one must put it back where it was found, not
be the teardown's ``.cpu()``. Where CUDA is present the same test also runs with the module on it.
"""
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from mmbench.cli import main
from mmbench.stages import fit_stage

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


class Teacher(nn.Module):
    """A linear map with a buffer: both a parameter and a buffer must come back."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)
        self.register_buffer("scale", torch.ones(1))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.linear(inputs).squeeze(-1) * self.scale


def record_moves(monkeypatch, target: nn.Module) -> list[tuple[str, torch.device]]:
    """Every ``.to`` / ``.cpu`` applied to ``target`` or to a module holding it, as (kind, device)."""
    moves: list[tuple[str, torch.device]] = []
    original_to, original_cpu = nn.Module.to, nn.Module.cpu

    def holds_target(module: nn.Module) -> bool:
        return any(sub is target for sub in module.modules())

    def to(self, *args, **kwargs):
        if holds_target(self):
            device = torch._C._nn._parse_to(*args, **kwargs)[0]
            if device is not None:
                moves.append(("to", torch.device(device)))
        return original_to(self, *args, **kwargs)

    def cpu(self):
        if holds_target(self):
            moves.append(("cpu", torch.device("cpu")))
        return original_cpu(self)

    monkeypatch.setattr(nn.Module, "to", to)
    monkeypatch.setattr(nn.Module, "cpu", cpu)
    return moves


def batches() -> DataLoader:
    """32 samples in batches of 8, as dicts like the benchmark's (``label`` is read for the batch size)."""
    inputs = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
    samples = [{"inputs": x, "label": x.sum()} for x in inputs]
    return DataLoader(samples, batch_size=8)


@pytest.mark.parametrize("device", DEVICES)
def test_a_stage_leaves_every_parameter_and_buffer_where_it_found_them(device, monkeypatch):
    teacher = Teacher().to(device)
    found = torch.device(device if device == "cpu" else "cuda:0")
    moves = record_moves(monkeypatch, teacher)

    def loss(batch):
        inputs = batch["inputs"].to(teacher.scale.device)
        return nn.functional.mse_loss(teacher(inputs), batch["label"].to(inputs.device))

    before = teacher.linear.weight.detach().clone()
    fit_stage(teacher, loss, batches(), epochs=1, lr=1e-2, accelerator="gpu" if device == "cuda" else "cpu")
    assert moves, "Lightning moves the stage's module: the recorder must have seen it"
    assert moves[-1] == ("to", found), f"the stage's last device move was {moves[-1]}: Lightning's teardown"
    assert {p.device for p in teacher.parameters()} == {found}
    assert {b.device for b in teacher.buffers()} == {found}
    assert not torch.equal(before.to(found), teacher.linear.weight)  # it did train
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def test_a_stage_of_zero_epochs_moves_nothing(monkeypatch):
    teacher = Teacher()
    moves = record_moves(monkeypatch, teacher)
    fit_stage(teacher, lambda batch: teacher(batch["inputs"]).sum(), batches(), epochs=0, lr=1e-2)
    assert moves == [] and not teacher.training


@pytest.mark.parametrize("devices", ["2", "auto", "0,1", "-1"])
def test_more_than_one_device_is_refused_before_anything_runs(devices, tmp_path, capsys):
    code = main(["run", "--dataset", "mosi-synth", "--method", "fusion", "--results", str(tmp_path / "runs"),
                 "--devices", devices, "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1
    assert f"--devices {devices}" in err and "one device" in err and "DDP" in err
    assert not (tmp_path / "runs").exists()  # refused before the store, the masks or any training
