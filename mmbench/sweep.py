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
#: The rates a protocol's conditions may take (a condition names its rate with one decimal).
RATE_GRIDS: dict[str, tuple[str, ...]] = {"random": RANDOM_RATES, "frame": FRAME_RATES}


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
    max_epochs: int | None = None  # None: the method's budget from its YAML (see config.BUDGET_DEFAULTS)
    early_stop_patience: int | None = None  # None: likewise
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
        if self.limit is not None and not (self.limit > 0 and (self.limit < 1 or float(self.limit).is_integer())):
            raise ValueError(f"--limit {self.limit:g}: give a count of samples per split (an integer >= 1) "
                             "or a fraction in (0, 1)")
        for name, value in (("--max-epochs", self.max_epochs), ("--patience", self.early_stop_patience)):
            if value is not None and value < 1:
                raise ValueError(f"{name} {value}: must be at least 1 (a run with no training is no result)")
        if not self.seeds:
            raise ValueError("--seeds: give at least one seed")
        if self.rates is not None:
            for protocol in self.protocols:
                if protocol != "fixed":
                    protocol_conditions(protocol, self.rates)  # refuses a rate the protocol cannot hold

    def with_profile(self) -> "SweepOptions":
        """Apply ``--profile quick`` limits on top of the given options."""
        if self.profile != "quick":
            return self
        limit = QUICK_PROFILE["limit"] if self.limit is None else min(self.limit, QUICK_PROFILE["limit"])
        epochs = QUICK_PROFILE["max_epochs"] if self.max_epochs is None else min(self.max_epochs,
                                                                                  QUICK_PROFILE["max_epochs"])
        return replace(self, seeds=self.seeds[:QUICK_PROFILE["n_seeds"]], protocols=QUICK_PROFILE["protocols"],
                       limit=limit, max_epochs=epochs)


@dataclass(frozen=True)
class RunSpec:
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
        """What identifies the run before the method's config and the data are resolved (see execute)."""
        values = asdict(self)
        values.pop("options")
        options = self.options
        values.update(limit=options.limit, data_variant=options.data_variant, synth_size=options.synth_size,
                      profile=options.profile)
        return values


def protocol_conditions(protocol: str, rates: tuple[str, ...] | None) -> tuple[str, ...]:
    """The training conditions of a protocol: ("all",) for fixed, else the rate grid or ``rates``."""
    if protocol == "fixed":
        return ("all",)
    if rates is None:
        return RATE_GRIDS[protocol]
    return tuple(dict.fromkeys(rate_condition(protocol, r) for r in rates))


def rate_condition(protocol: str, rate: str | float) -> str:
    """A rate as its condition id (``"0.3"``), refusing one the condition format cannot hold.

    Example:
        >>> rate_condition("random", "0.30")
        '0.3'
    """
    grid = RATE_GRIDS[protocol]
    try:
        value = float(rate)
    except ValueError:
        raise ValueError(f"--rates: {rate!r} is not a number; {protocol} takes {grid[0]}..{grid[-1]}") from None
    text = f"{value:.1f}"
    if abs(value - float(text)) > 1e-9 or text not in grid:
        raise ValueError(f"--rates: {protocol} conditions are the rates {grid[0]}, {grid[1]}, .., {grid[-1]} "
                         f"(one decimal); {rate!r} is not one of them")
    return text


def expand(options: SweepOptions) -> list[RunSpec]:
    """Every run of a sweep, in a stable order (dataset, protocol, condition, seed, method).

    Methods vary fastest so that all methods of one condition and seed run together and share one
    mask file.
    """
    specs = []
    for dataset in options.datasets:
        for protocol in options.protocols:
            setting = options.train_setting or DEFAULT_TRAIN_SETTING[protocol]
            for condition in protocol_conditions(protocol, options.rates):
                for seed in options.seeds:
                    for method in options.methods:
                        specs.append(RunSpec(dataset, method, protocol, condition, seed, setting,
                                             options.selection, options))
    return specs
