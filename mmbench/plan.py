"""What to run: a sweep's options and its expansion into single runs.

``fixed`` trains one model per (dataset, method, seed) and evaluates it on the 7 patterns;
``random`` and ``frame`` train and evaluate one model per rate.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from mmbench.constants import (DEFAULT_SEEDS, DEFAULT_TRAIN_SETTING, FRAME_RATES, PROTOCOLS, RANDOM_RATES,
                               SELECTIONS, TRAIN_SETTINGS)

#: ``--profile quick``: a run of every method that finishes in minutes on 2 CPU cores.
QUICK_PROFILE = {"n_seeds": 1, "protocols": ("fixed",), "max_epochs": 3, "limit": 512}


@dataclass(frozen=True)
class SweepOptions:
    """The options of one ``mmbench run`` (see ``mmbench run --help``)."""

    datasets: tuple[str, ...]
    methods: tuple[str, ...]
    protocols: tuple[str, ...] = ("fixed",)
    rates: tuple[str, ...] | None = None  # None: the protocol's default grid
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    train_setting: str | None = None  # None: the protocol's default
    selection: str = "valid"
    max_epochs: int = 30
    early_stop_patience: int = 8
    limit: float | None = None  # count (>= 1) or fraction (< 1) of samples per split
    profile: str = "paper"
    results_dir: Path = Path("runs")
    logger: str = "csv"
    accelerator: str = "auto"
    devices: int | str = 1
    data_dir: Path | None = None
    data_variant: str | None = None
    synth_size: str = "small"
    overrides: tuple[str, ...] = ()
    keep_checkpoints: bool = False

    def __post_init__(self) -> None:
        for protocol in self.protocols:
            if protocol not in PROTOCOLS:
                raise ValueError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)} or all")
        if self.train_setting is not None and self.train_setting not in TRAIN_SETTINGS:
            raise ValueError(f"unknown training setting {self.train_setting!r}; "
                             f"choose from {', '.join(TRAIN_SETTINGS)}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"unknown selection {self.selection!r}; choose from {', '.join(SELECTIONS)}")

    def with_profile(self) -> "SweepOptions":
        """Apply ``--profile quick`` limits on top of the given options."""
        if self.profile != "quick":
            return self
        limit = QUICK_PROFILE["limit"] if self.limit is None else min(self.limit, QUICK_PROFILE["limit"])
        return replace(self, seeds=self.seeds[:QUICK_PROFILE["n_seeds"]], protocols=QUICK_PROFILE["protocols"],
                       limit=limit,
                       max_epochs=min(self.max_epochs, QUICK_PROFILE["max_epochs"]))


@dataclass(frozen=True)
class RunPlan:
    """One run: a model trained once and evaluated on its conditions."""

    dataset: str
    method: str
    protocol: str
    condition: str  # "all" for fixed; the rate string for random / frame
    seed: int
    train_setting: str
    selection: str
    options: SweepOptions = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        return (f"{self.dataset} | {self.method} | {self.protocol} {self.condition} | "
                f"{self.train_setting} | seed {self.seed}")

    def key(self) -> dict:
        """What identifies the run before data and masks are hashed (the runner adds those)."""
        values = asdict(self)
        values.pop("options")
        options = self.options
        values.update(max_epochs=options.max_epochs, early_stop_patience=options.early_stop_patience,
                      limit=options.limit, data_variant=options.data_variant, synth_size=options.synth_size,
                      profile=options.profile)
        return values


def protocol_conditions(protocol: str, rates: tuple[str, ...] | None) -> tuple[str, ...]:
    """The training conditions of a protocol: ("all",) for fixed, else the rate grid."""
    if protocol == "fixed":
        return ("all",)
    grid = RANDOM_RATES if protocol == "random" else FRAME_RATES
    if rates is None:
        return grid
    return tuple(f"{float(r):.1f}" for r in rates)


def expand(options: SweepOptions) -> list[RunPlan]:
    """Every run of a sweep, in a stable order (dataset, protocol, condition, seed, method).

    Methods vary fastest so that all methods of one condition and seed run together and share one
    mask file.
    """
    plans = []
    for dataset in options.datasets:
        for protocol in options.protocols:
            setting = options.train_setting or DEFAULT_TRAIN_SETTING[protocol]
            for condition in protocol_conditions(protocol, options.rates):
                for seed in options.seeds:
                    for method in options.methods:
                        plans.append(RunPlan(dataset, method, protocol, condition, seed, setting,
                                             options.selection, options))
    return plans
