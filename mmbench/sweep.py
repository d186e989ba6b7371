"""What to run: a sweep's options and its expansion into single runs.

``fixed`` trains one model per (dataset, method, seed) and evaluates it on the 7 patterns;
``random`` and ``frame`` train and evaluate one model per rate, ``imbalanced`` one per triple of
per-modality rates (``L0.3-V0.5-A0.7``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from mmbench.constants import (DEFAULT_SEEDS, DEFAULT_TRAIN_SETTING, FRAME_RATES, IMBALANCED_CONDITIONS, PROTOCOLS,
                               RANDOM_RATES, SELECTIONS, TRAIN_SETTINGS)
from mmbench.missing.imbalanced import parse_imbalanced

#: ``--profile quick``: a run of every method that finishes in minutes on 2 CPU cores.
QUICK_PROFILE = {"n_seeds": 1, "protocols": ("fixed",), "max_epochs": 3, "limit": 512}
#: The rates a protocol's conditions may take (a condition names its rate with one decimal).
RATE_GRIDS: dict[str, tuple[str, ...]] = {"random": RANDOM_RATES, "frame": FRAME_RATES}
#: The conditions a protocol runs when ``--rates`` is not given.
DEFAULT_CONDITIONS: dict[str, tuple[str, ...]] = {**RATE_GRIDS, "imbalanced": IMBALANCED_CONDITIONS}


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
    # ``mmbench tune``'s record of a tuned configuration ({"trials", "max_epochs", "study", "values"}); it
    # enters the run key (RunSpec.key), so tuned and paper-default runs are separate configurations.
    # A dict: kept out of the hash.
    tuning: dict | None = field(default=None, hash=False)
    # Where the runs train (mmbench.launchers); none of these enters a run key: where a run trained is
    # not what it is (like --accelerator, it is a property of the machine, not of the configuration).
    jobs: int = 1  # runs trained at once (MMBENCH_THREADS split across them)
    launcher: str = "local"  # local | ray | slurm
    ray_address: str | None = None  # None: start a local Ray cluster
    retries: int = 1  # times a run lost with its worker (killed, out of memory) is tried again
    gpus_per_run: float | None = None  # None: the method's gpus_per_run attribute, else 0
    slurm_partition: str | None = None
    slurm_time: int | None = None  # minutes a SLURM job may run
    slurm_cluster: str | None = None  # submitit's executor: None detects SLURM (else local); "local" forces it
    # ``--eval-rates``: test each trained model at these conditions of its protocol as well (one model,
    # every rate). It enters the run key (RunSpec.key), since such a run is tested at more conditions.
    eval_rates: tuple[str, ...] | None = None

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
        if self.eval_rates is not None:
            if self.protocols == ("fixed",):
                raise ValueError("--eval-rates tests a random, frame or imbalanced model at other rates; a fixed "
                                 "model is already tested on all 7 patterns")
            for protocol in self.protocols:
                if protocol != "fixed":
                    protocol_conditions(protocol, self.eval_rates)  # refuses what the protocol cannot hold

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
    condition: str  # "all" for fixed; the rate string for random / frame; "L0.3-V0.5-A0.7" for imbalanced
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
        if options.tuning is not None:  # absent from untuned keys, so their config_id stays as it was
            values["tuning"] = options.tuning
        if self.test_conditions is not None:  # likewise absent without --eval-rates
            values["test_conditions"] = sorted(self.test_conditions)
        return values

    @property
    def test_conditions(self) -> tuple[str, ...] | None:
        """The conditions the model is tested at beyond its own (``--eval-rates``); None: its own only."""
        if self.protocol == "fixed" or self.options.eval_rates is None:
            return None
        tested = (self.condition, *protocol_conditions(self.protocol, self.options.eval_rates))
        return tuple(dict.fromkeys(tested))


def protocol_conditions(protocol: str, rates: tuple[str, ...] | None) -> tuple[str, ...]:
    """The training conditions of a protocol: ("all",) for fixed, else the default grid or ``rates``.

    One ``--rates`` list can serve several protocols: ids such as ``L0.3-V0.5-A0.7`` go to
    ``imbalanced``, plain rates to ``random``/``frame``. A protocol given none of its own form is
    handed the whole list, so it refuses the first entry it cannot hold.

    Example:
        >>> protocol_conditions("imbalanced", ("0.5", "L0.3-V0.5-A0.7"))
        ('L0.3-V0.5-A0.7',)
    """
    if protocol == "fixed":
        return ("all",)
    if rates is None:
        return DEFAULT_CONDITIONS[protocol]
    own = [r for r in rates if _is_imbalanced_id(r) == (protocol == "imbalanced")] or list(rates)
    return tuple(dict.fromkeys(rate_condition(protocol, r) for r in own))


def _is_imbalanced_id(rate: str | float) -> bool:
    return str(rate).strip()[:1].isalpha()  # "L0.3-V0.5-A0.7"; a plain rate starts with a digit


def rate_condition(protocol: str, rate: str | float) -> str:
    """A rate as its condition id (``"0.3"``), refusing one the condition format cannot hold.

    ``imbalanced`` takes three per-modality rates in L, V, A order, each on the ``random`` grid.

    Example:
        >>> rate_condition("random", "0.30"), rate_condition("imbalanced", "L0.7-V0.50-A0.3")
        ('0.3', 'L0.7-V0.5-A0.3')
    """
    if protocol == "imbalanced":
        try:
            return parse_imbalanced(rate)[1]
        except ValueError as error:
            raise ValueError(f"--rates: {error}") from None
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
