"""Get a real dataset's source files onto this machine, verified byte for byte.

``fetch`` downloads each pinned file from its raw GitHub URL (``sources.py``), or copies it from a
local folder in the layout of ``shared/data`` (``--from DIR``), checks its sha256 and stores it under
``<cache_dir>/<same relative path>``; a file already there and verified is left alone.
``fetched_root`` is what every run calls first: it returns the root when all files of a dataset are
present and verified, else raises :class:`NotFetchedError` whose message is the command to run.

Hashing 20 MB on every run would be wasted work, so verified hashes are memoised in
``<cache_dir>/.mmbench-verified.json`` with each file's size and mtime; a file whose size or mtime
changed is hashed again.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from mmbench.data.files import default_data_dir, sha256_file
from mmbench.data.real.readers import STD_FOLD_NAMES
from mmbench.data.real.sources import SourceFile, sources_of
from mmbench.data.registry import DATASETS

MEMO_NAME = ".mmbench-verified.json"
DOWNLOAD_TIMEOUT_S = 60


class NotFetchedError(FileNotFoundError):
    """A real dataset's source files are missing or altered; the message gives the fetch command."""


class ChecksumError(ValueError):
    """A source file's bytes differ from the pinned ones; the message names file, expected and found."""


class DownloadError(ConnectionError):
    """A source file could not be downloaded (offline?); the message says how to fetch from a folder."""


# ---------------------------------------------------------------- memo of verified hashes


def _load_memo(cache_dir: Path) -> dict[str, dict]:
    try:
        memo = json.loads((cache_dir / MEMO_NAME).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return memo if isinstance(memo, dict) else {}


def _save_memo(cache_dir: Path, memo: dict[str, dict]) -> None:
    tmp = cache_dir / f"{MEMO_NAME}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(memo, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(cache_dir / MEMO_NAME)
    except OSError:
        tmp.unlink(missing_ok=True)  # a read-only cache still works; it only hashes again next time


def _stamp(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _current_sha256(path: Path, relpath: str, memo: dict[str, dict]) -> str:
    """The file's sha256, from the memo when its size and mtime are unchanged (memo updated)."""
    stamp = _stamp(path)
    entry = memo.get(relpath, {})
    if entry.get("size") == stamp["size"] and entry.get("mtime_ns") == stamp["mtime_ns"] and "sha256" in entry:
        return entry["sha256"]
    digest = sha256_file(path)
    memo[relpath] = {**stamp, "sha256": digest}
    return digest


# ---------------------------------------------------------------- status


def _problems(name: str, cache_dir: Path, memo: dict[str, dict]) -> list[str]:
    """One line per missing or altered source file of ``name`` under ``cache_dir``."""
    problems = []
    for source in sources_of(name):
        path = cache_dir / source.relpath
        if not path.is_file():
            problems.append(f"missing {path}")
            continue
        found = _current_sha256(path, source.relpath, memo)
        if found != source.sha256:
            problems.append(f"altered {path} (sha256 expected {source.sha256}, found {found})")
    return problems


def fetched_root(name: str, cache_dir: Path) -> Path:
    """The root holding ``name``'s verified source files (the layout of ``shared/data``).

    Args:
        name: a real dataset (``mosi-bclstm``, ``mosi-text``, ``mosei-text``, ``sims2-synth``).
        cache_dir: where ``fetch`` stored them (``MMBENCH_DATA`` or ``~/.cache/mmbench`` by default).

    Returns:
        ``cache_dir`` (files lie at ``cache_dir / relpath``).

    Raises:
        NotFetchedError: a file is missing or differs from its pinned hash; the message prints the
            exact ``mmbench data fetch`` command.
        KeyError: ``name`` is not a real dataset.
    """
    cache_dir = Path(cache_dir)
    memo = _load_memo(cache_dir)
    before = json.dumps(memo, sort_keys=True)
    problems = _problems(name, cache_dir, memo)
    if json.dumps(memo, sort_keys=True) != before and cache_dir.is_dir():
        _save_memo(cache_dir, memo)
    if problems:
        raise NotFetchedError(_not_fetched_message(name, cache_dir, problems))
    return cache_dir


def _fetch_command(name: str, cache_dir: Path) -> str:
    command = f"mmbench data fetch {name}"
    if Path(cache_dir).resolve() != default_data_dir().resolve():
        command += f" --data-dir {cache_dir}"
    return command


def _not_fetched_message(name: str, cache_dir: Path, problems: list[str]) -> str:
    command = _fetch_command(name, cache_dir)
    shown = "\n  ".join(problems[:5]) + (f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else "")
    return (f"dataset {name!r} has not been fetched ({len(problems)} of {len(sources_of(name))} source "
            f"files missing or altered):\n  {shown}\n"
            f"Run:\n  {command}\n"
            f"or, without network, from a folder in the layout of shared/data (<DIR>/mosi/<owner>_<repo>/...):\n"
            f"  {command} --from DIR")


# ---------------------------------------------------------------- fetch


def fetch(name: str, *, from_dir: Path | None = None, cache_dir: Path) -> Path:
    """Download (or copy from ``from_dir``) and verify ``name``'s source files into ``cache_dir``.

    Args:
        name: a real dataset.
        from_dir: a local folder in the layout of ``shared/data``; None downloads from GitHub.
        cache_dir: destination root; files land at ``cache_dir / relpath``.

    Returns:
        ``cache_dir``, the root to pass to ``build_real``.

    Raises:
        ChecksumError: a file's sha256 differs from the pinned one (names file, expected, found).
        FileNotFoundError: ``from_dir`` lacks a file (names it).
        DownloadError: a download failed (offline?); the message suggests ``--from``.
        ValueError: ``name`` is a feature-pickle dataset (says where it is distributed) or synthetic.
        KeyError: ``name`` is not a registered dataset.
    """
    cache_dir = Path(cache_dir)
    _refuse_non_real(name)
    sources = sources_of(name)
    cache_dir.mkdir(parents=True, exist_ok=True)
    memo = _load_memo(cache_dir)
    for source in sources:
        dest = cache_dir / source.relpath
        if dest.is_file() and _current_sha256(dest, source.relpath, memo) == source.sha256:
            continue
        if from_dir is not None:
            _copy_verified(source, Path(from_dir), dest)
        else:
            _download_verified(source, dest, _fetch_command(name, cache_dir))
        memo[source.relpath] = {**_stamp(dest), "sha256": source.sha256}
    _save_memo(cache_dir, memo)
    return cache_dir


def _refuse_non_real(name: str) -> None:
    """Explain why a feature-pickle or synthetic dataset has nothing to fetch."""
    spec = DATASETS.get(name)
    if spec is not None and spec.kind == "pickle":
        files = ", ".join(dict.fromkeys(f for v in spec.variants.values() for f in v.files))
        raise ValueError(
            f"{name!r} cannot be fetched: its feature files ({files}) are distributed by {spec.distributed_at}, "
            f"not on a public URL. Put them in <data-dir>/{spec.folder}/Processed/, or use a dataset that needs "
            f"no manual download: {', '.join(spec.no_download_alternatives)}.")
    if spec is not None and spec.kind == "synthetic":
        raise ValueError(f"{name!r} is generated on demand and needs no fetch")


def _check(source: SourceFile, found: str, where: str) -> None:
    if found != source.sha256:
        raise ChecksumError(f"{where}: sha256 mismatch for {source.relpath}: expected {source.sha256}, "
                            f"found {found} (a different version of the file, or a corrupted copy)")


def _copy_verified(source: SourceFile, from_dir: Path, dest: Path) -> None:
    src = from_dir / source.relpath
    if not src.is_file():
        raise FileNotFoundError(f"{src}: source file {source.relpath} not found under --from {from_dir} "
                                f"(expected the layout of shared/data: <DIR>/{source.relpath})")
    _check(source, sha256_file(src), str(src))
    if src.resolve() == dest.resolve():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dest)  # atomic: a killed copy never leaves a half file under the final name


def _download_verified(source: SourceFile, dest: Path, command: str) -> None:
    try:
        with urllib.request.urlopen(source.url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            payload = response.read()
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(
            f"could not download {source.relpath} from {source.url}: {reason}. Offline? Copy the files "
            f"from a machine that has them, in the layout of shared/data, and run `{command} --from DIR`") from err
    if source.transform == "py_folds":
        payload = folds_module_to_json(payload, source.url)
    _check(source, hashlib.sha256(payload).hexdigest(), source.url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.write_bytes(payload)
    tmp.replace(dest)


def folds_module_to_json(module_source: bytes, where: str) -> bytes:
    """The SDK's ``*_std_folds.py`` (list literals) as the JSON bytes of ``shared/data``.

    Only literals are read (``ast.literal_eval``): nothing in the module is executed.

    Example:
        >>> src = b"standard_test_fold=['c']\\nstandard_train_fold=['a']\\nstandard_valid_fold=['b']\\n"
        >>> folds_module_to_json(src, "x").decode().replace("\\n", " ")
        '{ "standard_train_fold": [ "a" ], "standard_valid_fold": [ "b" ], "standard_test_fold": [ "c" ] }'
    """
    try:
        tree = ast.parse(module_source)
        folds = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
                 if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)}
    except (SyntaxError, ValueError) as err:
        raise ChecksumError(f"{where}: not a module of fold list literals: {err}") from err
    missing = [fold for fold in STD_FOLD_NAMES if fold not in folds]
    if missing:
        raise ChecksumError(f"{where}: fold(s) {missing} not found; found {list(folds)}")
    # shared/data orders the folds train, valid, test (the MOSEI module lists test before valid)
    return json.dumps({fold: folds[fold] for fold in STD_FOLD_NAMES}, indent=0).encode("utf-8")
