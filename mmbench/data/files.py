"""Where data live and what a file's bytes hash to: the helpers every data module builds on.

This module imports nothing of ``mmbench.data``, so the loaders, the feature cache, the readers and
``fetch`` can all use it without importing one another (see the import contracts in pyproject.toml).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

_HASH_CHUNK = 8 * 1024 * 1024


def default_data_dir() -> Path:
    """``MMBENCH_DATA`` or ``~/.cache/mmbench``: where real files and caches live."""
    return Path(os.environ.get("MMBENCH_DATA") or Path.home() / ".cache" / "mmbench")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, streamed in blocks (multi-GB files are never read whole)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _memo_file(path: Path, memo_dir: Path) -> Path:
    return memo_dir / (hashlib.sha1(str(path.resolve()).encode()).hexdigest() + ".json")


def _write_json_atomic(target: Path, content: object) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=target.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(content, out, ensure_ascii=False)
    os.replace(tmp, target)


def file_sha256(path: str | Path, *, memo_dir: str | Path | None = None) -> str:
    """:func:`sha256_file`, memoised by (path, size, mtime) in ``memo_dir``, so a later load does not rehash GBs.

    Args:
        path: the file.
        memo_dir: where the small JSON memo lives; default ``<default_data_dir()>/cache/sha256``.
            An unwritable memo folder only costs a rehash next time.

    Returns:
        The hex digest.
    """
    path = Path(path)
    stat = path.stat()
    memo = _memo_file(path, Path(memo_dir) if memo_dir else default_data_dir() / "cache" / "sha256")
    key = {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        cached = json.loads(memo.read_text(encoding="utf-8"))
        if {k: cached.get(k) for k in key} == key and len(cached.get("sha256", "")) == 64:
            return cached["sha256"]
    except (OSError, ValueError):
        pass  # no memo yet, or an unreadable one: hash again
    digest = sha256_file(path)
    try:
        _write_json_atomic(memo, {**key, "sha256": digest})
    except OSError:
        pass  # read-only cache: correct, just slower next time
    return digest
