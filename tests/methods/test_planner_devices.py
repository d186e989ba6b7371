"""OMG-Agent's planner on a device: the CPU's plans and cache keys unchanged, another precision keyed apart."""
import json

import pytest
import torch

from agents.omg_agent import planner_registry
from agents.omg_agent.plan_cache import plan_key
from agents.omg_agent.planner import PlanBook
from agents.omg_agent.planner_registry import load_planner, planner_dtype, precision_tag, register_planner

TINY_PLANNER = "tiny-random-llama-device-tests"


@pytest.fixture(scope="module")
def tiny_planner():
    from agents.llm import TINY_RANDOM_LLAMA, load_causal_lm

    register_planner(TINY_PLANNER, *load_causal_lm(TINY_RANDOM_LLAMA), max_slot_tokens=2)
    return TINY_PLANNER


def test_the_cpu_plans_in_float32_under_the_keys_it_always_had(tiny_planner, tmp_path):
    assert planner_dtype(None) == planner_dtype("cpu") == torch.float32
    assert precision_tag(None) is None and precision_tag("cpu") is None
    book = PlanBook(tiny_planner, n_candidates=2, cache_dir=tmp_path)
    observation = "Voice: loud, typical."
    assert book.key(observation) == plan_key(tiny_planner, 2, 0.3, 0.1, observation)
    book.device = torch.device("cpu")
    assert book.key(observation) == plan_key(tiny_planner, 2, 0.3, 0.1, observation)
    book.plans([observation])
    entry = json.loads(next((tmp_path / "omg_plans").rglob("*.jsonl")).read_text())
    assert "precision" not in entry  # a CPU entry is written as before
    assert load_planner(tiny_planner, "cpu") is load_planner(tiny_planner)


@pytest.mark.parametrize("has_bf16, tag", [(True, "cuda-bfloat16"), (False, "cuda-float16")])
def test_on_cuda_the_planner_runs_in_half_precision_and_its_plans_are_keyed_apart(has_bf16, tag, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: has_bf16)
    assert planner_dtype("cuda:0") == (torch.bfloat16 if has_bf16 else torch.float16)
    assert precision_tag("cuda:0") == tag
    book = PlanBook("smollm2", n_candidates=5, device=torch.device("cuda", 0))
    observation = "Transcript: a good film"
    assert book.key(observation) == plan_key(f"smollm2@{tag}", 5, 0.3, 0.1, observation)
    assert book.key(observation) != PlanBook("smollm2", n_candidates=5).key(observation)


def test_a_planner_on_another_device_is_a_copy_of_the_cpu_one_made_once(tiny_planner, monkeypatch):
    # "meta" stands for a GPU here: the copy is moved there; the CPU planner keeps its weights.
    monkeypatch.setattr(planner_registry, "planner_dtype", lambda device: torch.bfloat16)
    on_cpu = load_planner(tiny_planner)
    elsewhere = load_planner(tiny_planner, "meta")
    assert elsewhere is load_planner(tiny_planner, torch.device("meta"))
    assert elsewhere.device == torch.device("meta") and elsewhere.model.dtype == torch.bfloat16
    assert on_cpu.device == torch.device("cpu") and on_cpu.model.dtype == torch.float32
    assert elsewhere.max_slot_tokens == on_cpu.max_slot_tokens == 2
    planner_registry._LOADED.pop((tiny_planner, "meta"))
