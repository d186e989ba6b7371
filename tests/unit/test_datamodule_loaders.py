"""How the DataModule's loaders are built: no workers (in-memory data), pinned memory only for a CUDA trainer."""
import warnings
from types import SimpleNamespace

import torch
from lightning.pytorch.trainer.connectors import data_connector

from mmbench.data.datamodule import MissingModalityDataModule
from tests.helpers import tiny_bundle


def datamodule() -> MissingModalityDataModule:
    return MissingModalityDataModule(tiny_bundle(n_train=16, n_eval=8), train_mask=None, valid_masks={},
                                     test_masks={}, train_setting="complete", batch_size=4)


def trainer_on(device: str) -> SimpleNamespace:
    return SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device(device)), num_devices=1,
                           reload_dataloaders_every_n_epochs=0)


def loaders(module: MissingModalityDataModule) -> list:
    return [module.train_dataloader(), module.loader_for(module.train_set)]


def test_memory_is_pinned_only_when_the_trainer_runs_on_cuda(monkeypatch):
    module = datamodule()
    assert not any(loader.pin_memory for loader in loaders(module))  # no trainer yet
    module.trainer = trainer_on("cpu")
    assert not any(loader.pin_memory for loader in loaders(module))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert not any(loader.pin_memory for loader in loaders(module))  # CUDA present, not used
    module.trainer = trainer_on("cuda:0")
    assert all(loader.pin_memory for loader in loaders(module))
    assert all(loader.num_workers == 0 for loader in loaders(module))


def test_lightnings_worker_count_warning_is_hidden_and_no_other(monkeypatch):
    monkeypatch.setattr(data_connector, "suggested_max_num_workers", lambda devices: 8)  # as on a big machine
    loader = datamodule().train_dataloader()
    with warnings.catch_warnings(record=True) as shown:
        data_connector._worker_check(trainer_on("cpu"), loader, "train_dataloader")
        warnings.warn("another warning", UserWarning)
    assert [str(w.message) for w in shown] == ["another warning"]
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")  # without the datamodule's filter the check does warn
        data_connector._worker_check(trainer_on("cpu"), loader, "train_dataloader")
    assert any("does not have many workers" in str(w.message) for w in shown)
