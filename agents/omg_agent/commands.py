"""``mmbench plan``: OMG-Agent's subcommand, contributed through the entry-point group ``mmbench.commands``.

It precomputes the planner's plan cache, keyed by observation content, so a rerun resumes and every
seed and run reuses it. The module imports only the command-line helpers; the planner is imported
when the command runs.
"""
from __future__ import annotations

import argparse

from mmbench.cli import add_command, data_args
from mmbench.commands import comma_list

EXAMPLES = ("mmbench plan --dataset mosi-bclstm",
            "mmbench plan --dataset mosi-synth --candidates 1 --splits train --patterns L,VA",
            "mmbench plan --dataset mosei-text --limit 2000 --planner-model Qwen/Qwen2.5-1.5B-Instruct",
            "mmbench plan --dataset mosi-bclstm --device cuda   # the cache that runs on CUDA read")


def register(subparsers) -> None:
    """Add ``mmbench plan`` to the ``mmbench`` parser (the entry point's target)."""
    plan = add_command(subparsers, "plan",
                       "precompute OMG-Agent's plan cache (resumable; reused by every seed and run)", EXAMPLES, run_plan)
    plan.add_argument("--dataset", required=True, help="one or several registered datasets, comma separated")
    plan.add_argument("--splits", default="train,valid,test", help="splits to plan (default train,valid,test)")
    plan.add_argument("--patterns", default="all", help="availability patterns, e.g. L,VA (default: all 7)")
    plan.add_argument("--planner-model", help="causal LM: smollm2 (offline default), a hub id or a local path "
                      "(default: configs/methods/omg-agent.yaml)")
    plan.add_argument("--candidates", type=int, help="|Omega| plan candidates (default: the config's, 5)")
    plan.add_argument("--batch-size", type=int, default=16, help="observations per LM batch")
    plan.add_argument("--limit", type=float, help="samples per split: a count (>= 1) or a fraction (< 1)")
    plan.add_argument("--device", default="cpu",
                      help="where the LM plans: cpu (float32; the cache runs on the CPU read) or cuda[:N] (bfloat16 "
                      "where supported; its plans are cached under their own keys, which runs on CUDA read)")
    data_args(plan)


def run_plan(args: argparse.Namespace) -> int:
    """Plan every observation of the chosen splits and patterns; prints one JSON summary per dataset.

    The LM uses ``MMBENCH_THREADS`` threads (``mmbench.determinism.thread_budget``), as a training does."""
    import json

    import torch

    from agents.omg_agent.planner import PlanBook
    from agents.omg_agent.precompute import precompute_plans
    from mmbench.config import load_method_config
    from mmbench.constants import PATTERNS
    from mmbench.data.files import default_data_dir
    from mmbench.data.loading import load_dataset
    from mmbench.determinism import thread_budget
    from mmbench.execute import limit_bundle

    device = planning_device(args.device)
    # The LM takes every core by default; beside a training on the other core that oversubscribes
    # them, and OpenMP's spinning threads then made planning about eight times slower here.
    torch.set_num_threads(thread_budget())
    config = load_method_config("omg-agent")
    book = PlanBook(args.planner_model or config.get("planner_model", "smollm2"),
                    args.candidates or config.get("n_candidates", 5), config.get("lambda_s", 0.3),
                    config.get("gamma", 0.1), True, default_data_dir(), args.batch_size, device=device)
    patterns = PATTERNS if args.patterns == "all" else tuple(comma_list(args.patterns))
    for dataset in comma_list(args.dataset):
        bundle = limit_bundle(load_dataset(dataset, data_dir=args.data_dir, variant=args.data_variant,
                                           synth_size=args.synth_size), args.limit)
        print(json.dumps(precompute_plans(bundle, book, comma_list(args.splits), patterns)))
    return 0


def planning_device(name: str):
    """The torch device ``--device`` names; a CUDA device this machine lacks is refused before the LM loads."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r} is not a device; use cpu or cuda[:N]") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r}: plans are made on cpu or cuda[:N]")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name!r}: no CUDA device is visible here (torch.cuda.is_available() is False)")
    return device
