"""The golden check: every shipped method on small slices, against committed per-seed spreads.

Each method runs with its ``--profile quick`` configuration (e.g. one plan candidate for OMG-Agent,
the first two LLM layers for LIMSSR) on a small slice of ``mosi-synth`` and of ``mosi-bclstm``
(fixed protocol, a few epochs). ``results/regression/expected.json`` holds, per method and slice, the
values of :data:`EXPECTED_SEEDS` and their mean and spread. A fresh run of :data:`CHECK_SEED` fails when
a value leaves the band ``mean ± max(K_SPREAD * std, FLOOR[metric])``: a change that only reorders
random draws stays inside (it moves a value about as much as another seed does), a method that got
worse leaves it. Every method must also meet two invariants on every slice, whatever the
expectations: finite test metrics, and an all-modality MAE below the ``mean`` floor's.

Update the expected values after a deliberate change (3 seeds of every method, about 15 minutes on
2 cores)::

    python -m mmbench.golden --update --data-dir ~/.cache/mmbench
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
from pathlib import Path

from mmbench.sweep import SweepOptions
from mmbench.registry import method_names
from mmbench.results import ResultStore
from mmbench.runner import Runner

EXPECTED_FILE = Path(__file__).resolve().parents[1] / "results" / "regression" / "expected.json"
DATASETS = ("mosi-synth", "mosi-bclstm")
CHECKED = ("mae", "acc2_non0", "corr")  # on the all-modality and the language-only pattern
PATTERNS = ("LVA", "L")
SLICE = {"limit": 160, "max_epochs": 3}
EXPECTED_SEEDS = (1111, 1112, 1113)
CHECK_SEED = 1111
#: Half-width of the band in seed standard deviations.
K_SPREAD = 3.0
#: Smallest half-width per metric (fractions for accuracies): three seeds can agree by chance, and
#: float reductions differ between CPUs and library builds.
FLOOR = {"mae": 0.03, "acc2_non0": 0.04, "corr": 0.05}
#: Intra-op threads of the check: float reductions depend on the thread count, so it is pinned.
THREADS = "1"
FLOOR_METHOD = "mean"


def default_methods() -> list[str]:
    """Every shipped method (entry points), without ablation variants."""
    return method_names(include_variants=False, include_runtime=False)


def measure(methods: list[str], data_dir: Path | None, workdir: Path, seeds: tuple[int, ...] = (CHECK_SEED,),
            datasets: tuple[str, ...] = DATASETS) -> dict[str, dict[str, list[float]]]:
    """{"<dataset>/<method>": {"<pattern>/<metric>": [value per seed]}} from fresh runs on CPU."""
    methods = list(dict.fromkeys([*methods, FLOOR_METHOD]))  # the floor of the MAE invariant
    previous = os.environ.get("MMBENCH_THREADS")
    os.environ["MMBENCH_THREADS"] = THREADS
    try:
        for seed in seeds:  # the quick profile keeps one seed per sweep: one sweep per seed
            options = SweepOptions(datasets=datasets, methods=tuple(methods), protocols=("fixed",),
                                   results_dir=workdir, data_dir=data_dir, early_stop_patience=SLICE["max_epochs"],
                                   profile="quick", seeds=(seed,), accelerator="cpu", **SLICE)
            summary = Runner(options).run()
            if summary.failed:
                raise RuntimeError(f"golden-check runs failed: {summary.failed}; see {workdir}")
    finally:
        if previous is None:
            os.environ.pop("MMBENCH_THREADS")
        else:
            os.environ["MMBENCH_THREADS"] = previous
    table = ResultStore(workdir).long_table()
    table = table[(table["split"] == "test") & table["condition"].isin(PATTERNS) & table["metric"].isin(CHECKED)]
    measured: dict[str, dict[str, list[float]]] = {}
    for row in table.sort_values("seed").itertuples():
        measured.setdefault(f"{row.dataset}/{row.method}", {}).setdefault(
            f"{row.condition}/{row.metric}", []).append(round(float(row.value), 5))
    return measured


def summarise(measured: dict[str, dict[str, list[float]]]) -> dict:
    """The committed form: per value, the seeds' values, their mean and (ddof = 1) std."""
    entries = {key: {name: {"values": values, "mean": round(statistics.fmean(values), 5),
                            "std": round(statistics.stdev(values), 5) if len(values) > 1 else 0.0}
                     for name, values in sorted(names.items())}
               for key, names in sorted(measured.items())}
    return {"format": 2, "seeds": list(EXPECTED_SEEDS), "slice": SLICE, "k_spread": K_SPREAD, "floor": FLOOR,
            "entries": entries}


def band(expected: dict, metric: str) -> tuple[float, float]:
    """(low, high) of values a fresh run may take."""
    half = max(K_SPREAD * expected["std"], FLOOR[metric])
    return expected["mean"] - half, expected["mean"] + half


def compare(measured: dict[str, dict[str, list[float]]], expected: dict) -> list[str]:
    """Human-readable problems: values outside their band, broken invariants, missing expectations."""
    problems = invariant_problems(measured)
    entries = expected.get("entries", {})
    for key, values in sorted(measured.items()):
        if key not in entries:
            problems.append(f"{key}: no expected values committed (python -m mmbench.golden --update)")
            continue
        for name, runs in values.items():
            metric = name.split("/")[1]
            reference = entries[key].get(name)
            if reference is None:
                problems.append(f"{key} {name}: no expected value committed")
                continue
            low, high = band(reference, metric)
            problems += [f"{key} {name}: measured {value:.4f}, outside [{low:.4f}, {high:.4f}] "
                         f"(mean {reference['mean']:.4f}, seed std {reference['std']:.4f})"
                         for value in runs if not low <= value <= high]
    return problems


def invariant_problems(measured: dict[str, dict[str, list[float]]]) -> list[str]:
    """What every method must meet on every slice: finite metrics, all-modality MAE below the floor's."""
    problems = []
    for key, values in sorted(measured.items()):
        dataset, method = key.split("/")
        problems += [f"{key} {name}: not finite ({runs})" for name, runs in values.items()
                     if not all(math.isfinite(v) for v in runs)]
        floor = measured.get(f"{dataset}/{FLOOR_METHOD}", {}).get("LVA/mae")
        if method != FLOOR_METHOD and floor and any(v >= min(floor) for v in values.get("LVA/mae", [])):
            problems.append(f"{key}: LVA MAE {values['LVA/mae']} is not below the training-mean floor {min(floor):.4f}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update", action="store_true",
                        help=f"measure seeds {EXPECTED_SEEDS} and write them as the expected values")
    parser.add_argument("--data-dir", type=Path, help="where mosi-bclstm was fetched")
    parser.add_argument("--methods", help="comma separated (default: every shipped method)")
    args = parser.parse_args(argv)
    methods = args.methods.split(",") if args.methods else default_methods()
    seeds = EXPECTED_SEEDS if args.update else (CHECK_SEED,)
    with tempfile.TemporaryDirectory() as workdir:
        measured = measure(methods, args.data_dir, Path(workdir), seeds)
    if args.update:
        problems = invariant_problems(measured)
        if problems:
            print("\n".join(problems))
            return 1
        current = json.loads(EXPECTED_FILE.read_text()) if EXPECTED_FILE.exists() else {}
        summary = summarise(measured)
        if current.get("format") == 2:  # keep the methods this update did not measure
            summary["entries"] = {**current["entries"], **summary["entries"]}
        EXPECTED_FILE.parent.mkdir(parents=True, exist_ok=True)
        EXPECTED_FILE.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
        print(f"wrote {len(measured)} entries to {EXPECTED_FILE}")
        return 0
    problems = compare(measured, json.loads(EXPECTED_FILE.read_text()))
    print("\n".join(problems) or "golden check passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
