"""Plain-text summaries of datasets and feature files, printed by ``mmbench data inspect``."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from mmbench.constants import MODALITIES, SPLITS
from mmbench.data.files import file_sha256
from mmbench.data.formats import DataFormatWarning
from mmbench.data.registry import DatasetSpec
from mmbench.data.types import DatasetBundle, quality_summary


def known_copy_status(path: str | Path, spec: DatasetSpec) -> str:
    """Whether ``path`` is one of ``spec``'s known public copies (size first, then sha256).

    A file is compared with the known copies of its name; a file of another name can still match any
    copy byte for byte. A mismatch also gives a :class:`DataFormatWarning`: a re-exported or re-pickled
    file is not an error, but its numbers may not match published ones.

    Returns:
        One line: ``matches the public copy ...``, ``differs from the public copy ...`` or
        ``no known public copy for ...``.
    """
    path = Path(path)
    size = path.stat().st_size
    same_size = [c for c in spec.known_copies if c.size == size]
    digest = file_sha256(path) if same_size else None  # hash a multi-GB file only when the size agrees
    for copy in same_size:
        if copy.sha256 == digest:
            return f"{path.name}: matches the public copy {copy.file} ({copy.where}; sha256 {digest})"
    named = [c for c in spec.known_copies if c.file == path.name]
    if not named:
        return f"{path.name}: no known public copy for {path.name} ({spec.name})"
    copy = named[0]
    if copy.size != size:
        problem = f"size {size:,} bytes, expected {copy.size:,}"
    else:
        problem = f"sha256 {digest}, expected {copy.sha256}"
    message = f"differs from the public copy {copy.file} ({copy.where}): {problem}"
    warnings.warn(f"{path}: {message}", DataFormatWarning, stacklevel=2)
    return f"{path.name}: {message}"


def _label_row(split: str, labels: np.ndarray) -> str:
    labels = np.asarray(labels, dtype=np.float64)
    if labels.size == 0:
        return f"  {split:<6} {0:>6}"
    return (f"  {split:<6} {labels.size:>6} {labels.mean():>7.3f} {labels.std():>6.3f} {labels.min():>7.3f} "
            f"{labels.max():>7.3f} {np.mean(labels == 0):>7.3f}")


def describe_bundle(bundle: DatasetBundle) -> str:
    """Splits, sizes, dims, sequence lengths, label statistics, provenance, sha256 and data quality as text.

    Example:
        >>> import numpy as np
        >>> from mmbench.data.types import SplitData
        >>> def split(n):
        ...     feats = {m: np.zeros((n, 2, 3), np.float32) for m in "LVA"}
        ...     lens = {m: np.ones(n, np.int64) for m in "LVA"}
        ...     return SplitData(np.array([str(i) for i in range(n)]), feats, lens, np.zeros(n, np.float32))
        >>> bundle = DatasetBundle("toy", {s: split(2) for s in ("train", "valid", "test")}, "synthetic",
        ...                        "ab" * 32, "doctest", (-3.0, 3.0))
        >>> print(describe_bundle(bundle).splitlines()[0])
        dataset toy (provenance: synthetic, language: en)
    """
    lines = [
        f"dataset {bundle.name} (provenance: {bundle.provenance}, language: {bundle.language})",
        f"source: {bundle.source}",
        f"source sha256: {bundle.source_sha256}",
        f"label range: [{bundle.label_range[0]:g}, {bundle.label_range[1]:g}]",
        "feature dims: " + ", ".join(f"{m} {d}" for m, d in bundle.dims().items()),
        "sequence lengths: " + ", ".join(f"{m} {t}" for m, t in bundle.seq_lens().items()),
    ]
    train = bundle.splits["train"]
    extras = [what for what, present in (("raw_text", train.raw_text is not None),
                                         ("text_bert", train.text_bert is not None)) if present]
    extras += [f"unimodal labels {''.join(m for m in MODALITIES if m in train.unimodal_labels)}"] \
        if train.unimodal_labels else []
    lines.append("also holds: " + (", ".join(extras) if extras else "nothing else"))
    lines.append(f"data quality: {quality_summary(bundle.quality)}")
    lines.append(f"  {'split':<6} {'N':>6} {'mean':>7} {'std':>6} {'min':>7} {'max':>7} {'frac=0':>7}")
    lines += [_label_row(split, bundle.splits[split].labels) for split in SPLITS]
    for split in SPLITS:
        lengths = bundle.splits[split].lengths
        if len(bundle.splits[split]):
            lines.append(f"  mean valid steps ({split}): "
                         + ", ".join(f"{m} {np.mean(lengths[m]):.1f}" for m in MODALITIES))
    return "\n".join(lines)
