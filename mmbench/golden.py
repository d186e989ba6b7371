"""Regression check: every registered method on small slices, compared with committed values.

Each method runs with its ``--profile quick`` configuration (e.g. one plan candidate for OMG-Agent,
the first two LLM layers for LIMSSR) on a small slice of ``mosi-synth`` and of ``mosi-bclstm``
(fixed protocol, one seed, a few epochs); its test metrics must stay within :data:`TOLERANCE` of
``results/regression/expected.json``. The same machine gives identical numbers (deterministic CPU
kernels, fixed threads); the tolerance absorbs float differences between CPUs and library builds.

Update the expected values after a deliberate change with::

    python -m mmbench.regression --update
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from mmbench.plan import SweepOptions
from mmbench.registry import method_names
from mmbench.results import ResultStore
from mmbench.runner import Runner

EXPECTED_FILE = Path(__file__).resolve().parents[1] / "results" / "regression" / "expected.json"
DATASETS = ("mosi-synth", "mosi-bclstm")
CHECKED = ("mae", "acc2_non0", "corr")  # on the all-modality and the language-only pattern
PATTERNS = ("LVA", "L")
#: Absolute tolerance per metric (fractions for accuracies).
TOLERANCE = {"mae": 0.03, "acc2_non0": 0.04, "corr": 0.05}
SLICE = {"limit": 160, "max_epochs": 3, "seeds": (1111,)}
#: Intra-op threads of the check: float reductions depend on the thread count, and a few epochs of
#: a diffusion or teacher-student model amplify that past the tolerance, so the check pins it.
THREADS = "1"


def default_methods() -> list[str]:
    """Every shipped method (entry points), without ablation variants."""
    return method_names(include_variants=False, include_runtime=False)


def measure(methods: list[str], data_dir: Path | None, workdir: Path) -> dict[str, dict[str, float]]:
    """{"<dataset>/<method>": {"<pattern>/<metric>": value}} from fresh runs."""
    options = SweepOptions(datasets=DATASETS, methods=tuple(methods), protocols=("fixed",), results_dir=workdir,
                           data_dir=data_dir, early_stop_patience=SLICE["max_epochs"], profile="quick", **SLICE)
    previous = os.environ.get("MMBENCH_THREADS")
    os.environ["MMBENCH_THREADS"] = THREADS
    try:
        summary = Runner(options).run()
    finally:
        if previous is None:
            os.environ.pop("MMBENCH_THREADS")
        else:
            os.environ["MMBENCH_THREADS"] = previous
    if summary.failed:
        raise RuntimeError(f"regression runs failed: {summary.failed}; see {workdir}")
    table = ResultStore(workdir).long_table()
    table = table[(table["split"] == "test") & table["condition"].isin(PATTERNS) & table["metric"].isin(CHECKED)]
    measured: dict[str, dict[str, float]] = {}
    for row in table.itertuples():
        measured.setdefault(f"{row.dataset}/{row.method}", {})[f"{row.condition}/{row.metric}"] = round(row.value, 5)
    return measured


def compare(measured: dict, expected: dict) -> list[str]:
    """Human-readable drifts beyond tolerance (and methods without expectations)."""
    problems = []
    for key, values in sorted(measured.items()):
        if key not in expected:
            problems.append(f"{key}: no expected values committed (run python -m mmbench.regression --update)")
            continue
        for name, value in values.items():
            metric = name.split("/")[1]
            reference = expected[key].get(name)
            if reference is None or abs(value - reference) > TOLERANCE[metric]:
                problems.append(f"{key} {name}: measured {value:.4f}, expected {reference} ± {TOLERANCE[metric]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update", action="store_true", help="write the measured values as the expected ones")
    parser.add_argument("--data-dir", type=Path, help="where mosi-bclstm was fetched")
    parser.add_argument("--methods", help="comma separated (default: every registered method)")
    args = parser.parse_args(argv)
    methods = args.methods.split(",") if args.methods else default_methods()
    with tempfile.TemporaryDirectory() as workdir:
        measured = measure(methods, args.data_dir, Path(workdir))
    if args.update:
        expected = json.loads(EXPECTED_FILE.read_text()) if EXPECTED_FILE.exists() else {}
        expected.update(measured)
        EXPECTED_FILE.parent.mkdir(parents=True, exist_ok=True)
        EXPECTED_FILE.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
        print(f"wrote {len(measured)} entries to {EXPECTED_FILE}")
        return 0
    problems = compare(measured, json.loads(EXPECTED_FILE.read_text()))
    print("\n".join(problems) or "regression check passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
