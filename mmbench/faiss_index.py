"""The faiss indexes the retrieval methods build (OMG-Agent's retriever, SMCMSA's repository), in one place.

Why a module of its own: a GPU index needs GPU resources (``faiss.StandardGpuResources``) that reserve
temporary GPU memory when created, so a process keeps one and every index shares it, rather than one
per index rebuild; faiss's OpenMP thread count is process-wide, so a method that wants a thread count
for its search sets it for that search only (:func:`faiss_threads`); and a run records which kind of
index it used (:func:`faiss_index_kind`), since a faiss without GPU support builds a CPU index silently.

``faiss-cpu`` and ``faiss-gpu`` (or conda's ``faiss-gpu``) both install the module ``faiss``; only
the GPU build has ``StandardGpuResources``. faiss is imported when first needed, so ``import mmbench``
stays fast.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

FAISS_CPU = "faiss-cpu"
FAISS_GPU = "faiss-gpu"

_gpu_resources = None  # the process's one StandardGpuResources, created on first use


def _faiss():
    import faiss

    return faiss


def gpu_faiss_available() -> bool:
    """Whether this process's faiss was built with GPU support and sees a GPU."""
    faiss = _faiss()
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def faiss_index_kind(device: str | torch.device | None = None) -> str:
    """``"faiss-gpu"`` or ``"faiss-cpu"``: the index :func:`flat_inner_product_index` builds for
    tensors on ``device`` (None: the device a run takes here, CUDA when present)."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    on_cuda = torch.device(device).type == "cuda"
    return FAISS_GPU if on_cuda and gpu_faiss_available() else FAISS_CPU


def gpu_resources():
    """The process's one ``faiss.StandardGpuResources``, shared by every GPU index."""
    global _gpu_resources
    if _gpu_resources is None:
        _gpu_resources = _faiss().StandardGpuResources()
    return _gpu_resources


def flat_inner_product_index(dim: int, device: str | torch.device):
    """An exact inner-product index (``IndexFlatIP``) of width ``dim``: on the GPU of ``device`` when it is
    a CUDA device and faiss has GPU support, else on the CPU (see :func:`faiss_index_kind`)."""
    faiss = _faiss()
    index = faiss.IndexFlatIP(dim)
    if faiss_index_kind(device) == FAISS_GPU:
        return faiss.index_cpu_to_gpu(gpu_resources(), torch.device(device).index or 0, index)
    return index


def set_faiss_threads(count: int) -> None:
    """Set faiss's OpenMP thread count for the process (the run's thread budget)."""
    _faiss().omp_set_num_threads(int(count))


@contextmanager
def faiss_threads(count: int) -> Iterator[None]:
    """Run the block with faiss on ``count`` OpenMP threads, then restore the count it had."""
    faiss = _faiss()
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(int(count))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)
