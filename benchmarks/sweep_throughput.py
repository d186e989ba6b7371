"""Sweep throughput: runs per hour of one fixed small sweep, sequential vs ``--jobs N`` vs Ray.

The sweep: ``--methods`` (default ``fusion,ae,mmin``) on ``mosi-synth``, 2 seeds, the ``fixed``
protocol plus ``random`` at 2 rates (``--rates``), ``--limit`` samples per split and ``--max-epochs``
epochs each, so it finishes in minutes. It is trained into a fresh results folder once per launcher
configuration, in this order and in this one process's session: sequentially (the reference), with
``--jobs N`` (a local pool), and on a local Ray cluster of N x threads CPUs when ``ray`` is installed
(with CUDA present, also with the runs packed ``N`` per GPU). For each it prints the wall time of the
whole sweep (data generated and methods imported beforehand; a pool's worker start-up and each
sweep's mask files are included, since a user pays them too),
runs per hour, the ratio to the sequential figure measured in the same session, and whether the
store holds the same seeded numbers as the sequential one (it must when the threads per run are
the same, e.g. ``MMBENCH_THREADS=1``; another thread count may change the last bits).

``MMBENCH_THREADS`` (default here 2) is the thread budget: the sequential sweep trains with all of it,
``--jobs N`` splits it across N runs. Figures are wall-clock on the current machine: run it on an
otherwise idle one, or say how busy it was.

Usage::

    python benchmarks/sweep_throughput.py [--jobs 2] [--limit 96] [--max-epochs 2] [--methods fusion,ae,mmin]
        [--seeds 1111,1112] [--rates 0.3,0.6] [--no-ray] [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--methods", default="fusion,ae,mmin")
    parser.add_argument("--seeds", default="1111,1112")
    parser.add_argument("--rates", default="0.3,0.6", help="the random protocol's rates (beside fixed)")
    parser.add_argument("--limit", type=int, default=96, help="samples per split")
    parser.add_argument("--max-epochs", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray launcher even when ray is installed")
    parser.add_argument("--data-dir", type=Path, help="default: a temporary folder (mosi-synth is generated)")
    args = parser.parse_args()
    os.environ.setdefault("MMBENCH_THREADS", "2")

    from mmbench.commands import _quiet_lightning
    from mmbench.data.loading import load_dataset
    from mmbench.launchers import threads_per_run
    from mmbench.runner import Runner
    from mmbench.sweep import SweepOptions

    _quiet_lightning()
    with tempfile.TemporaryDirectory(prefix="mmbench-throughput-") as scratch:
        data_dir = args.data_dir or Path(scratch) / "data"
        load_dataset("mosi-synth", data_dir=data_dir)  # generated once, outside every timing
        sweep = {"datasets": ("mosi-synth",), "methods": tuple(args.methods.split(",")),
                 "protocols": ("fixed", "random"), "rates": tuple(args.rates.split(",")),
                 "seeds": tuple(int(s) for s in args.seeds.split(",")), "limit": args.limit,
                 "max_epochs": args.max_epochs, "data_dir": data_dir}
        print(f"sweep: {', '.join(sweep['methods'])} on mosi-synth, seeds {args.seeds}, fixed + random "
              f"{args.rates}, --limit {args.limit}, --max-epochs {args.max_epochs}; "
              f"MMBENCH_THREADS={os.environ['MMBENCH_THREADS']}, {os.cpu_count()} CPUs seen")
        print(f"{'launcher':28s} {'threads/run':>11s} {'runs':>5s} {'wall s':>8s} {'runs/hour':>10s} "
              f"{'vs sequential':>14s} same numbers")
        # methods' modules are imported when a sweep resolves: outside the timings, not charged to the first
        Runner(SweepOptions(**sweep, results_dir=Path(scratch) / "warm-up")).dry_run()
        reference = None
        for name, launch in configurations(args.jobs, args.no_ray):
            results = Path(scratch) / name.replace(" ", "_").replace("/", "-")
            finished, wall_s = timed_sweep(sweep, launch, results)
            per_hour = 3600.0 * finished / wall_s
            if reference is None:
                reference = (per_hour, results)
            same = "yes" if seeded_numbers(results).equals(seeded_numbers(reference[1])) else "NO"
            threads = threads_per_run(launch.get("jobs", 1))
            print(f"{name:28s} {threads:11d} {finished:5d} {wall_s:8.1f} {per_hour:10.1f} "
                  f"{per_hour / reference[0]:13.2f}x {same}")


def configurations(jobs: int, no_ray: bool) -> list[tuple[str, dict]]:
    """(label, launch options) in the order they are measured; sequential first, the reference."""
    import torch

    found = [("sequential", {}), (f"local --jobs {jobs}", {"jobs": jobs})]
    if not no_ray and importlib.util.find_spec("ray") is not None:
        found.append((f"ray ({jobs} at once)", {"launcher": "ray", "jobs": jobs}))
        if torch.cuda.is_available():
            found.append((f"ray, {jobs} runs per GPU", {"launcher": "ray", "jobs": jobs, "gpus_per_run": 1.0 / jobs}))
    return found


def timed_sweep(sweep: dict, launch: dict, results: Path) -> tuple[int, float]:
    """(runs finished, wall seconds) of the sweep trained into ``results`` with ``launch``."""
    from mmbench.runner import Runner
    from mmbench.sweep import SweepOptions

    started = time.perf_counter()
    summary = Runner(SweepOptions(**sweep, **launch, results_dir=results)).run()
    wall_s = time.perf_counter() - started
    if summary.failed:
        raise SystemExit(f"{len(summary.failed)} run(s) failed under {launch or 'sequential'}: {summary.failed}")
    return len(summary.finished), wall_s


def seeded_numbers(results: Path):
    """The store's numbers but the cost metrics (measured times), by run key, in a stable order."""
    from mmbench.metrics.cost import COST_METRICS
    from mmbench.results import ResultStore

    table = ResultStore(results, readonly=True).long_table()
    table = table[~table["metric"].isin(COST_METRICS)]
    columns = ["config_hash", "split", "condition", "metric", "value"]
    return table[columns].sort_values(columns[:4]).reset_index(drop=True)


if __name__ == "__main__":
    main()
