"""One entry point to get any registered dataset as a :class:`DatasetBundle`.

``mosi``/``mosei``/``sims`` are the field's feature pickles under ``--data-dir`` / ``MMBENCH_DATA``;
``-synth`` datasets are generated, written in the MMSA pickle format and read back through the same
reader a user's file takes; the real datasets are built from fetched source files.
"""
from __future__ import annotations

import os
from pathlib import Path

from mmbench.data import synthetic
from mmbench.data.cache import load_feature_file_cached
from mmbench.data.files import default_data_dir
from mmbench.data.real import NotFetchedError, build_real, fetched_root
from mmbench.data.registry import DatasetSpec, get_spec
from mmbench.data.types import DatasetBundle
from mmbench.data.writers import write_mmsa_pickle

SYNTH_SEED = 0  # the generated data are one fixed dataset; run seeds only change masks and training


class DataNotFoundError(FileNotFoundError):
    """A dataset's files are not on this machine; the message says how to get them."""


def feature_file_candidates(spec: DatasetSpec, data_dir: Path, variant: str) -> list[Path]:
    """Where a feature pickle may lie: MMSA's layout first, then directly in ``data_dir``."""
    files = spec.variants[variant].files
    return [data_dir / spec.folder / "Processed" / f for f in files] + [data_dir / f for f in files]


def find_feature_file(spec: DatasetSpec, data_dir: Path, variant: str) -> Path:
    """The feature file of ``spec``/``variant`` or a :class:`DataNotFoundError` that teaches."""
    if variant not in spec.variants:
        raise ValueError(f"dataset {spec.name!r} has no variant {variant!r}; "
                         f"choose one of {', '.join(spec.variants)}")
    candidates = feature_file_candidates(spec, data_dir, variant)
    for path in candidates:
        if path.is_file():
            return path
    expected = "\n  ".join(str(p) for p in candidates)
    raise DataNotFoundError(
        f"dataset {spec.name!r} ({variant}) needs its feature file; none of these exists:\n  {expected}\n"
        f"It is distributed by {spec.distributed_at}.\n"
        f"Put it there (or pass --data-dir / set MMBENCH_DATA), or run a dataset that needs no "
        f"download: {', '.join(spec.no_download_alternatives)}."
    )


def check_available(name: str, *, data_dir: Path | None = None, variant: str | None = None) -> None:
    """Fail fast, before any training, when ``name``'s files are absent."""
    spec = get_spec(name)
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    if spec.kind == "pickle":
        find_feature_file(spec, data_dir, variant or spec.default_variant)
    elif spec.kind == "real":
        try:
            fetched_root(name, cache_dir=data_dir)
        except NotFetchedError as err:
            raise DataNotFoundError(str(err)) from None


def load_dataset(name: str, *, data_dir: Path | None = None, variant: str | None = None,
                 synth_size: str = "small") -> DatasetBundle:
    """Load the registered dataset ``name``.

    Args:
        name: a registered dataset (``mmbench.data.registry.DATASETS``).
        data_dir: root of real files and caches; default ``MMBENCH_DATA`` or ``~/.cache/mmbench``.
        variant: ``aligned`` | ``unaligned`` | ``mult`` for the feature pickles.
        synth_size: ``small`` or ``full`` for the ``-synth`` datasets.

    Raises:
        DataNotFoundError: the files are absent; the message names them and the alternatives.
    """
    spec = get_spec(name)
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    cache_dir = data_dir / "cache"
    if spec.kind == "pickle":
        variant = variant or spec.default_variant
        path = find_feature_file(spec, data_dir, variant)
        return load_feature_file_cached(path, cache_dir=cache_dir, spec=spec, variant=variant, name=name)
    if spec.kind == "synthetic":
        return _load_synthetic(spec, cache_dir, synth_size)
    check_available(name, data_dir=data_dir)
    return build_real(name, fetched_root(name, cache_dir=data_dir), cache_dir=cache_dir)


def _load_synthetic(spec: DatasetSpec, cache_dir: Path, size: str) -> DatasetBundle:
    """Generate once, write as an MMSA pickle, and read it back like a user's file."""
    if size not in ("small", "full"):
        raise ValueError(f"synthetic size must be 'small' or 'full', got {size!r}")
    # the version names the file: a pickle from an older generator must not be read as this one's data
    path = cache_dir / "synthetic" / f"{spec.name}-{size}-seed{SYNTH_SEED}-v{synthetic.GENERATOR_VERSION}.pkl"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        bundle = synthetic.generate_bundle(spec.family, size=size, seed=SYNTH_SEED)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        write_mmsa_pickle(bundle, tmp)
        tmp.replace(path)  # atomic: a killed generation leaves no half file
    bundle = load_feature_file_cached(path, cache_dir=cache_dir, spec=None, variant="default", name=spec.name)
    bundle.provenance = "synthetic"
    bundle.label_range = spec.label_range  # the sentences are English, whatever the family (see synthetic.py)
    bundle.language = "en"
    return bundle
