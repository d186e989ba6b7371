"""Registry of known datasets: what each is, what its files should look like, how to load it.

The expected dims, label range, split sizes and language here are what a loaded file is checked
against (a disagreement is a warning naming the field, see ``mmbench.data.formats``).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["pickle", "real", "synthetic"]


@dataclass(frozen=True)
class KnownCopy:
    """A public copy of a feature file whose size and hash we know (Git LFS pointers)."""

    file: str
    size: int
    sha256: str
    where: str


@dataclass(frozen=True)
class FileVariant:
    """One circulating feature file of a pickle dataset (``--data-variant``)."""

    files: tuple[str, ...]  # accepted file names, first is the preferred one
    fmt: Literal["mmsa", "mult"]
    dims: dict[str, int]  # modality letter -> feature dim
    seq_lens: dict[str, int]  # modality letter -> padded length


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    kind: Kind
    family: Literal["mosi", "mosei", "sims"]  # decides the metric set and the synthetic model
    description: str
    label_range: tuple[float, float]
    split_sizes: dict[str, int]  # the real split sizes
    language: str = "en"
    folder: str = ""  # MMSA layout: <data-dir>/<folder>/Processed/<file>
    variants: dict[str, FileVariant] = field(default_factory=dict)
    default_variant: str = ""
    known_copies: tuple[KnownCopy, ...] = ()
    distributed_at: str = ""
    no_download_alternatives: tuple[str, ...] = ()
    provenance: str = "real"


def _dims(l: int, v: int, a: int) -> dict[str, int]:
    return {"L": l, "V": v, "A": a}


_MMSA_WHERE = "MMSA (github.com/thuiar/MMSA, 'Dataset' section: Baidu Netdisk / Google Drive links)"
_MULT_WHERE = "MulT (github.com/yaohungt/Multimodal-Transformer, 'Data Download' section)"

_SPECS: list[DatasetSpec] = [
    DatasetSpec(
        name="mosi", kind="pickle", family="mosi", folder="MOSI",
        description="CMU-MOSI feature pickle (MMSA or MulT format)",
        label_range=(-3.0, 3.0), split_sizes={"train": 1284, "valid": 229, "test": 686},
        variants={
            "aligned": FileVariant(("aligned_50.pkl",), "mmsa", _dims(768, 20, 5), _dims(50, 50, 50)),
            "unaligned": FileVariant(("unaligned_50.pkl",), "mmsa", _dims(768, 20, 5), _dims(50, 500, 375)),
            "mult": FileVariant(("mosi_data.pkl", "mosi_data_noalign.pkl"), "mult", _dims(300, 20, 5),
                                _dims(50, 50, 50)),
        },
        default_variant="aligned",
        known_copies=(KnownCopy("aligned_50.pkl", 367_257_274,
                                "d3994fd25681f9c7ad6e9c6596a6fe9b4beb85ff7d478ba978b124139002e5f9",
                                "Git LFS pointer in MG205/FASCA-Net data/aligned_50.pkl"),),
        distributed_at=_MMSA_WHERE + "; " + _MULT_WHERE,
        no_download_alternatives=("mosi-bclstm", "mosi-text", "mosi-synth"),
    ),
    DatasetSpec(
        name="mosei", kind="pickle", family="mosei", folder="MOSEI",
        description="CMU-MOSEI feature pickle (MMSA or MulT format)",
        label_range=(-3.0, 3.0), split_sizes={"train": 16326, "valid": 1871, "test": 4659},
        variants={
            "aligned": FileVariant(("aligned_50.pkl",), "mmsa", _dims(768, 35, 74), _dims(50, 50, 50)),
            "unaligned": FileVariant(("unaligned_50.pkl",), "mmsa", _dims(768, 35, 74), _dims(50, 500, 500)),
            "mult": FileVariant(("mosei_senti_data.pkl", "mosei_senti_data_noalign.pkl"), "mult",
                                _dims(300, 35, 74), _dims(50, 50, 50)),
        },
        default_variant="aligned",
        distributed_at=_MMSA_WHERE + "; " + _MULT_WHERE,
        no_download_alternatives=("mosei-text", "mosei-synth"),
    ),
    DatasetSpec(
        name="sims", kind="pickle", family="sims", folder="SIMS", language="zh",
        description="CH-SIMS feature pickle (MMSA format)",
        label_range=(-1.0, 1.0), split_sizes={"train": 1368, "valid": 456, "test": 457},
        variants={
            "unaligned": FileVariant(("unaligned_39.pkl",), "mmsa", _dims(768, 709, 33), _dims(39, 55, 400)),
        },
        default_variant="unaligned",
        known_copies=(KnownCopy("unaligned_39.pkl", 1_228_189_774,
                                "c9e20c13ec0454d98bb9c1e520e490c75146bfa2dfeeea78d84de047dbdd442f",
                                "Git LFS pointer in KaiHe-better/multimodal_sa data/CH-SIMS/Processed/"),),
        distributed_at=_MMSA_WHERE,
        no_download_alternatives=("sims2-synth", "sims-synth"),
    ),
    DatasetSpec(
        name="mosi-bclstm", kind="real", family="mosi",
        description="real utterance-level MOSI features of bc-LSTM (text 100, audio 73, video 100; T=1)",
        label_range=(-3.0, 3.0), split_sizes={"train": 1182, "valid": 265, "test": 752},
        variants={"default": FileVariant((), "mmsa", _dims(100, 100, 73), _dims(1, 1, 1))},
    ),
    DatasetSpec(
        name="mosi-text", kind="real", family="mosi", provenance="semi-synthetic",
        description="real MOSI transcripts, labels and SDK split; synthetic vision/audio",
        label_range=(-3.0, 3.0), split_sizes={"train": 1284, "valid": 229, "test": 686},
    ),
    DatasetSpec(
        name="mosei-text", kind="real", family="mosei", provenance="semi-synthetic",
        description="real MOSEI transcripts, labels and split; synthetic vision/audio",
        label_range=(-3.0, 3.0), split_sizes={"train": 16274, "valid": 1861, "test": 4653},
    ),
    DatasetSpec(
        name="sims2-synth", kind="real", family="sims", language="zh", provenance="semi-synthetic",
        description="real CH-SIMS v2 labels (multimodal + T/A/V) and split; synthetic features",
        label_range=(-1.0, 1.0), split_sizes={"train": 2722, "valid": 647, "test": 1034},
    ),
]
for _family, _real in (("mosi", "mosi"), ("mosei", "mosei"), ("sims", "sims")):
    _base = next(s for s in _SPECS if s.name == _real)
    _SPECS.append(DatasetSpec(
        name=f"{_family}-synth", kind="synthetic", family=_base.family, provenance="synthetic",
        description=f"synthetic data in the MMSA {_base.variants[_base.default_variant].files[0]} format, "
                    f"{_real.upper()} dims",
        label_range=_base.label_range, split_sizes=_base.split_sizes, language=_base.language,
        variants={"default": _base.variants[_base.default_variant]}, default_variant="default",
    ))

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}


def get_spec(name: str) -> DatasetSpec:
    """The registered dataset ``name``; unknown names suggest close matches."""
    try:
        return DATASETS[name]
    except KeyError:
        close = difflib.get_close_matches(name, DATASETS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown dataset {name!r}.{hint} Known: {', '.join(DATASETS)}") from None


def metric_family(dataset: str) -> str:
    """The metric family of the registered dataset ``dataset`` (``mosi``, ``mosei`` or ``sims``), which the
    metrics functions take; unknown names raise :func:`get_spec`'s KeyError.

    Example:
        >>> metric_family("sims2-synth"), metric_family("mosei-text")
        ('sims', 'mosei')
    """
    return get_spec(dataset).family
