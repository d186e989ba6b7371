"""Same machine, same seed, same numbers: the process settings a run makes before it trains.

On the CPU: every RNG seeded (data-loader workers too), deterministic algorithms requested, and
a fixed thread budget for torch and faiss (``MMBENCH_THREADS``, default ``min(4, cores)``), since a
reduction split over another number of threads may round differently.

On CUDA two more sources of run-to-run noise remain once ``use_deterministic_algorithms(True,
warn_only=True)`` is set, because ``warn_only`` only warns about them: the fused scaled-dot-product
attention kernels (memory-efficient, flash and cuDNN; their backward is not guaranteed deterministic)
used by every ``MultiheadAttention``, ``TransformerEncoderLayer`` and the LLMs' attention, so only the math
kernel is left enabled; and cuBLAS's split workspaces, fixed by ``CUBLAS_WORKSPACE_CONFIG=:4096:8``
(read when cuBLAS starts, so it is set before the first CUDA matmul of the process).
"""
from __future__ import annotations

import os

import lightning as L
import torch

from mmbench.faiss_index import set_faiss_threads

#: cuBLAS's deterministic workspace setting (CUDA docs, "Results reproducibility").
CUBLAS_DETERMINISTIC_WORKSPACE = ":4096:8"


def thread_budget() -> int:
    """Threads a run may use: ``MMBENCH_THREADS``, or ``min(4, cores)`` (at least 1)."""
    return int(os.environ.get("MMBENCH_THREADS", max(1, min(4, os.cpu_count() or 1))))


def uses_cuda(accelerator: str) -> bool:
    """Whether a trainer given ``accelerator`` runs on CUDA here (``auto`` picks it when present)."""
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def configure_determinism(seed: int, accelerator: str) -> None:
    """Seed everything and fix the settings that make a run repeatable on ``accelerator``."""
    L.seed_everything(seed, workers=True, verbose=False)
    torch.use_deterministic_algorithms(True, warn_only=True)
    threads = thread_budget()
    torch.set_num_threads(threads)
    set_faiss_threads(threads)
    if uses_cuda(accelerator):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC_WORKSPACE)
        deterministic_attention()


def deterministic_attention() -> None:
    """Leave only the math scaled-dot-product attention kernel (deterministic backward) enabled."""
    torch.backends.cuda.enable_flash_sdp(False)
    torch.backends.cuda.enable_mem_efficient_sdp(False)
    torch.backends.cuda.enable_cudnn_sdp(False)
    torch.backends.cuda.enable_math_sdp(True)
