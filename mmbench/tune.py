"""``mmbench tune``: the same tuning budget for every method (issue 20, "An equal tuning budget").

Published comparisons mix tuned and untuned baselines. Here every method gets the same search:
Optuna's TPE sampler with a fixed seed over the ``search_space`` its YAML declares, the same number
of trials and the same epoch budget (``--max-epochs``, 30 unless given, for every method). Each trial
is scored on the validation split only: the validation MAE averaged over the 7 fixed patterns (the
monitor that selects checkpoints), read back from the trial's stored run, never a test metric.

Each trial is one ordinary run (the Runner, ``fixed`` protocol, one seed, the trial's values as
``--set`` overrides), stored in the study's own results store (``<results>/tuning`` unless
``--study-dir``), so a finished trial is never trained twice and trials stay out of the main
leaderboard. The study is kept in Optuna's SQLite storage beside it: running the same command again
continues up to N trials in total. The first trial is the method's default configuration, so the
search can only match or beat it on validation.

The best of the first N trials is then run, for the requested seeds, into the main results store
with a ``tuning`` entry in its run key (``{"trials", "max_epochs", "study", "values"}``): a
configuration of its own, labelled ``tuned`` beside the default rows and never averaged with them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import optuna

from mmbench.config import BUDGET_DEFAULTS, SearchDimension, load_search_space, search_dimensions
from mmbench.constants import DEFAULT_SEEDS, PATTERNS
from mmbench.execute import resolved_method_config
from mmbench.registry import get_method_class, variant_of
from mmbench.results import MetricRow, ResultStore
from mmbench.results.keys import config_id, key_hash
from mmbench.runner import Runner, SweepSummary
from mmbench.sweep import SweepOptions, expand

#: The trials' score: this metric of this split, averaged over the fixed patterns (lower is better).
OBJECTIVE_SPLIT, OBJECTIVE_METRIC = "valid", "mae"
#: Trials that used up budget: a failed trial counts, so every method gets the same number of tries.
SPENT_STATES = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
STORAGE_FILE = "optuna.db"


class TrialFailed(RuntimeError):
    """A trial's run failed (recorded in the study's store); the study goes on."""


@dataclass(frozen=True)
class TuneOptions:
    """The options of one ``mmbench tune`` (see ``mmbench tune --help``)."""

    dataset: str
    method: str
    trials: int
    max_epochs: int = BUDGET_DEFAULTS["max_epochs"]  # the same for every method: part of the budget
    seed: int = DEFAULT_SEEDS[0]  # the sampler's seed and the trials' training seed
    seeds: tuple[int, ...] = DEFAULT_SEEDS  # the tuned configuration's runs
    results_dir: Path = Path("runs")
    study_dir: Path | None = None  # None: <results_dir>/tuning
    overrides: tuple[str, ...] = ()
    limit: float | None = None
    data_dir: Path | None = None
    data_variant: str | None = None
    synth_size: str = "small"
    accelerator: str = "auto"
    devices: int | str = 1

    def __post_init__(self) -> None:
        for name, value in (("--trials", self.trials), ("--max-epochs", self.max_epochs)):
            if value < 1:
                raise ValueError(f"{name} {value}: must be at least 1")

    @property
    def storage_dir(self) -> Path:
        return Path(self.study_dir) if self.study_dir is not None else Path(self.results_dir) / "tuning"

    def sweep(self, seeds: tuple[int, ...], results_dir: Path, values: dict,
              tuning: dict | None = None) -> SweepOptions:
        """The ``fixed``-protocol sweep of this method with ``values`` set on top of ``--set``."""
        return SweepOptions(
            datasets=(self.dataset,), methods=(self.method,), protocols=("fixed",), seeds=seeds,
            max_epochs=self.max_epochs, limit=self.limit, results_dir=results_dir, accelerator=self.accelerator,
            devices=self.devices, data_dir=self.data_dir, data_variant=self.data_variant,
            synth_size=self.synth_size, overrides=self.overrides + value_overrides(self.method, values),
            tuning=tuning)


@dataclass
class TuneResult:
    study: str
    storage: str
    n_trials: int  # spent trials the best was chosen from (= the budget once the study is complete)
    best_score: float  # validation MAE of the best trial
    values: dict
    tuning: dict  # the record in the tuned runs' key
    config_id: str | None = None  # of the tuned configuration (None when it was not run)
    summary: SweepSummary | None = None


def method_space(options: TuneOptions) -> list[SearchDimension]:
    """The validated search space of the method (a variant searches its base method's)."""
    variant = variant_of(options.method)
    base = variant.base if variant else options.method
    dimensions = search_dimensions(get_method_class(options.method), load_search_space(base), method=options.method)
    if not dimensions:
        raise ValueError(f"{options.method} declares no search_space in configs/methods/{base}.yaml: nothing to tune")
    searched = {d.name for d in dimensions}
    for override in options.overrides:
        key = override.split("=", 1)[0].strip()
        if key.removeprefix(f"{options.method}.") in searched:
            raise ValueError(f"--set {override!r}: {key} is searched by tune (configs/methods/{base}.yaml "
                             "search_space); drop it from --set or from the space")
    return dimensions


def study_name(options: TuneOptions, dimensions: list[SearchDimension]) -> str:
    """Readable, plus a hash of everything that changes what a trial scores (a new space is a new study)."""
    identity = {"dataset": options.dataset, "method": options.method, "max_epochs": options.max_epochs,
                "seed": options.seed, "limit": options.limit, "overrides": sorted(options.overrides),
                "data_variant": options.data_variant, "synth_size": options.synth_size,
                "space": [vars(d) for d in dimensions]}
    return f"{options.method}-{options.dataset}-e{options.max_epochs}-seed{options.seed}-{key_hash(identity)[:8]}"


def value_overrides(method: str, values: dict) -> tuple[str, ...]:
    """``{"lr": 0.002}`` -> ``("fusion.lr=0.002",)``: values as ``--set`` for this method only."""
    return tuple(f"{method}.{name}={json.dumps(value)}" for name, value in sorted(values.items()))


def suggest(trial: optuna.Trial, dimensions: list[SearchDimension]) -> dict:
    """The trial's values; floats rounded to 3 significant digits so keys and labels stay readable
    (TPE models the unrounded suggestion, a difference far below what a trial's score resolves)."""
    values = {}
    for dim in dimensions:
        if dim.choices is not None:
            values[dim.name] = trial.suggest_categorical(dim.name, list(dim.choices))
        elif dim.is_integer:
            values[dim.name] = trial.suggest_int(dim.name, dim.low, dim.high, log=dim.log)
        else:
            values[dim.name] = float(f"{trial.suggest_float(dim.name, dim.low, dim.high, log=dim.log):.3g}")
    return values


def validation_mae(rows: Iterable[MetricRow]) -> float:
    """The objective: the stored validation MAE averaged over the 7 fixed patterns; test rows are ignored.

    Raises:
        TrialFailed: a pattern's validation MAE is missing.
    """
    by_pattern = {row.condition: row.value for row in rows
                  if row.split == OBJECTIVE_SPLIT and row.metric == OBJECTIVE_METRIC}
    missing = [p for p in PATTERNS if p not in by_pattern]
    if missing:
        raise TrialFailed(f"no stored {OBJECTIVE_SPLIT} {OBJECTIVE_METRIC} for pattern(s) {', '.join(missing)}")
    return float(np.mean([by_pattern[p] for p in PATTERNS]))


def stored_score(store: ResultStore, config_hash: str) -> float:
    """The objective of the newest finished run of ``config_hash`` in ``store``."""
    runs = store.runs()
    done = runs[(runs["config_hash"] == config_hash) & (runs["status"] == "finished")]
    if done.empty:
        raise TrialFailed(f"no finished run of key {config_hash[:12]} in {store.results_dir}")
    return validation_mae(store.metric_rows(done["run_id"].iloc[-1]))


def run_trial(sweep: SweepOptions) -> float:
    """Train the trial's one run (or find it finished) and return its stored validation score."""
    runner = Runner(sweep)
    digest = key_hash(runner.resolve()[0].key())
    summary = runner.run()
    if summary.failed or summary.held:
        raise TrialFailed(f"the trial's run {'failed' if summary.failed else 'is being trained by another process'}"
                          f" (see {sweep.results_dir})")
    return stored_score(runner.store, digest)


def tune(options: TuneOptions, trial_runner: Callable[[SweepOptions], float] = run_trial,
         run_best: bool = True) -> TuneResult:
    """Run (or continue) the study up to ``options.trials`` spent trials, then the best values for
    ``options.seeds`` (unless ``run_best`` is false). ``trial_runner`` scores one trial's sweep."""
    dimensions = method_space(options)
    name = study_name(options, dimensions)
    options.storage_dir.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(options.storage_dir / STORAGE_FILE).resolve()}"
    # Half the budget explores at random, the rest follows TPE (Optuna's default of 10 random
    # start-up trials would make a 10-trial study a pure random search).
    sampler = optuna.samplers.TPESampler(seed=options.seed, n_startup_trials=min(10, max(2, options.trials // 2)))
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize", load_if_exists=True,
                                sampler=sampler)
    study.set_user_attr("budget", {"trials": options.trials, "max_epochs": options.max_epochs,
                                   "objective": f"{OBJECTIVE_SPLIT} {OBJECTIVE_METRIC}, mean of the 7 patterns"})
    if not study.trials:
        study.enqueue_trial(default_values(options, dimensions))

    def objective(trial: optuna.Trial) -> float:
        values = suggest(trial, dimensions)
        trial.set_user_attr("values", values)
        return trial_runner(options.sweep((options.seed,), options.storage_dir, values))

    remaining = options.trials - len(spent_trials(study))
    if remaining > 0:
        study.optimize(objective, n_trials=remaining, catch=(TrialFailed,),
                       callbacks=[optuna.study.MaxTrialsCallback(options.trials, states=SPENT_STATES)])
    result = best_of(study, options, name, storage)
    if run_best:
        sweep = options.sweep(options.seeds, options.results_dir, result.values, result.tuning)
        runner = Runner(sweep)
        result.config_id = config_id(runner.resolve()[0].key())
        result.summary = runner.run()
    return result


def spent_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=SPENT_STATES)


def default_values(options: TuneOptions, dimensions: list[SearchDimension]) -> dict:
    """The method's resolved defaults (YAML and ``--set``) of the searched arguments that lie in the space."""
    spec = expand(options.sweep((options.seed,), options.storage_dir, {}))[0]
    _, resolved, _ = resolved_method_config(spec)
    return {d.name: resolved[d.name] for d in dimensions if d.name in resolved and d.contains(resolved[d.name])}


def best_of(study: optuna.Study, options: TuneOptions, name: str, storage: str) -> TuneResult:
    """The best of the first ``options.trials`` spent trials (a study run further keeps the same budget)."""
    spent = sorted(spent_trials(study), key=lambda t: t.number)[:options.trials]
    complete = [t for t in spent if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise ValueError(f"study {name}: none of its {len(spent)} trial(s) finished; see the failed runs in "
                         f"{options.storage_dir} (mmbench export --results {options.storage_dir})")
    best = min(complete, key=lambda t: t.value)
    values = dict(best.user_attrs["values"])
    tuning = {"trials": options.trials, "max_epochs": options.max_epochs, "study": name, "values": values}
    return TuneResult(name, storage, len(spent), float(best.value), values, tuning)
