"""LIMSSR (ICML 2026) for incomplete multimodal sentiment regression: see :mod:`agents.limssr.method`.

Modules: ``prompt`` (pattern prompts, cached embeddings), ``projector`` (pooling + projection into the
LLM space), ``backbone`` (LoRA LLM with shared prompt keys/values), ``aggregation`` (mask-aware
dual-path heads), ``losses`` (MSE + hard triplet + consistency), ``method`` (the LightningModule).
"""
from agents.limssr.method import LIMSSR

__all__ = ["LIMSSR"]
