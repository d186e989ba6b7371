"""mmbench.faiss_index: which index a run gets, one set of GPU resources per process, scoped thread counts."""
import numpy as np
import torch

from mmbench import faiss_index
from mmbench.faiss_index import faiss_index_kind, faiss_threads, flat_inner_product_index


class FakeGpuFaiss:
    """Stands for a GPU build of faiss: counts the GPU resources created and the indexes moved to a GPU."""

    def __init__(self, real):
        self.real, self.resources_made, self.moved_to = real, 0, []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def get_num_gpus(self):
        return 1

    def StandardGpuResources(self):  # noqa: N802 (faiss's spelling)
        self.resources_made += 1
        return object()

    def index_cpu_to_gpu(self, resources, device, index):
        self.moved_to.append((resources, device))
        return index


def test_a_cpu_build_of_faiss_gives_cpu_indexes_and_says_so():
    assert not hasattr(faiss_index._faiss(), "StandardGpuResources") or faiss_index._faiss().get_num_gpus() == 0
    assert faiss_index_kind("cuda") == faiss_index_kind("cpu") == "faiss-cpu"
    index = flat_inner_product_index(4, torch.device("cpu"))
    index.add(np.eye(4, dtype=np.float32))
    _, found = index.search(np.array([[0, 0, 1, 0]], dtype=np.float32), 1)
    assert found.tolist() == [[2]]


def test_a_gpu_build_makes_one_set_of_gpu_resources_for_every_cuda_index(monkeypatch):
    fake = FakeGpuFaiss(faiss_index._faiss())
    monkeypatch.setattr(faiss_index, "_faiss", lambda: fake)
    monkeypatch.setattr(faiss_index, "_gpu_resources", None)
    assert faiss_index_kind("cuda:1") == "faiss-gpu" and faiss_index_kind("cpu") == "faiss-cpu"
    for _ in range(3):  # OMG-Agent rebuilds its indexes every epoch
        flat_inner_product_index(8, torch.device("cuda", 1))
    flat_inner_product_index(8, "cpu")
    assert fake.resources_made == 1
    assert [device for _, device in fake.moved_to] == [1, 1, 1]  # the keys' GPU, not always GPU 0
    assert len({id(resources) for resources, _ in fake.moved_to}) == 1


def test_a_scoped_thread_count_is_restored_after_the_search():
    faiss = faiss_index._faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        with faiss_threads(1):
            assert faiss.omp_get_max_threads() == 1
        assert faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(before)


def test_smcmsa_searches_on_one_thread_and_leaves_the_process_count_alone(monkeypatch):
    from baselines.smcmsa.similar_completion import CompleteSampleRepository
    from mmbench.constants import MODALITIES

    faiss = faiss_index._faiss()
    seen: list[int] = []
    real_search = faiss.IndexFlatIP.search

    def search(index, *args, **kwargs):
        seen.append(faiss.omp_get_max_threads())
        return real_search(index, *args, **kwargs)

    monkeypatch.setattr(faiss.IndexFlatIP, "search", search)
    repository = CompleteSampleRepository(top_k=2)
    embeddings = torch.randn(6, 3, 4, generator=torch.Generator().manual_seed(0))
    features = {m: torch.ones(6, 2, 3) for m in MODALITIES}
    steps = {m: torch.ones(6, 2, dtype=torch.bool) for m in MODALITIES}
    repository.fill([f"tr{i}" for i in range(6)], embeddings, torch.zeros(6, 3), features, steps)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        rows = repository.neighbours(embeddings, torch.ones(6, 3, dtype=torch.bool), [f"te{i}" for i in range(6)])
        assert seen == [1] and faiss.omp_get_max_threads() == 2
        assert rows[:, 0].tolist() == list(range(6))  # each query finds its own vector first
    finally:
        faiss.omp_set_num_threads(before)
