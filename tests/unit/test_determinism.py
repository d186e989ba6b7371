"""The run's process settings (mmbench.determinism): thread budgets, and on CUDA the deterministic kernels."""
import os

import pytest
import torch

from mmbench import determinism, faiss_index


@pytest.fixture
def restored_settings():
    """Put back what configure_determinism changes process-wide, whatever the test did."""
    threads, faiss_threads = torch.get_num_threads(), faiss_index._faiss().omp_get_max_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.set_num_threads(threads)
    faiss_index.set_faiss_threads(faiss_threads)
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def record_sdp_switches(monkeypatch) -> dict[str, bool]:
    switches: dict[str, bool] = {}
    for name in ("enable_flash_sdp", "enable_mem_efficient_sdp", "enable_cudnn_sdp", "enable_math_sdp"):
        monkeypatch.setattr(torch.backends.cuda, name, lambda on, name=name: switches.__setitem__(name, on))
    return switches


def test_the_thread_budget_reaches_torch_and_faiss(monkeypatch, restored_settings):
    monkeypatch.setenv("MMBENCH_THREADS", "2")
    torch.set_num_threads(1)
    faiss_index.set_faiss_threads(1)
    determinism.configure_determinism(7, "cpu")
    assert torch.get_num_threads() == 2 and faiss_index._faiss().omp_get_max_threads() == 2
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()


def test_without_mmbench_threads_the_budget_is_at_most_four_cores(monkeypatch):
    monkeypatch.delenv("MMBENCH_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert determinism.thread_budget() == 4
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert determinism.thread_budget() == 1


def test_the_same_seed_gives_the_same_draws(restored_settings):
    determinism.configure_determinism(3, "cpu")
    first = torch.rand(4)
    determinism.configure_determinism(3, "cpu")
    assert torch.equal(first, torch.rand(4))


@pytest.mark.parametrize("accelerator", ["gpu", "cuda"])
def test_on_cuda_only_the_math_attention_kernel_stays_and_cublas_is_pinned(accelerator, monkeypatch,
                                                                           restored_settings):
    switches = record_sdp_switches(monkeypatch)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    determinism.configure_determinism(0, accelerator)
    assert switches == {"enable_flash_sdp": False, "enable_mem_efficient_sdp": False, "enable_cudnn_sdp": False,
                        "enable_math_sdp": True}
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_a_cublas_setting_of_the_user_is_kept(monkeypatch, restored_settings):
    record_sdp_switches(monkeypatch)
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    determinism.configure_determinism(0, "gpu")
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


def test_auto_means_cuda_only_where_cuda_is_present(monkeypatch, restored_settings):
    switches = record_sdp_switches(monkeypatch)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    determinism.configure_determinism(0, "auto")
    determinism.configure_determinism(0, "cpu")
    assert switches == {} and "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    determinism.configure_determinism(0, "auto")
    assert switches["enable_mem_efficient_sdp"] is False
