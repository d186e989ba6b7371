"""The ``mmbench`` command: thin subcommands over library functions."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mmbench.constants import PROTOCOLS, SELECTIONS, TRAIN_SETTINGS

EPILOGS = {
    "run": "examples:\n  mmbench run --dataset mosi-synth --method all --profile quick\n"
           "  mmbench run --dataset mosi-synth --method fusion --protocol all --seeds 1111,1112\n"
           "  mmbench run --dataset mosi-bclstm --method fusion,mean --protocol random --rates 0.0,0.5 "
           "--set fusion.hidden_dim=128\n"
           "  mmbench run --dataset mosi-synth --method omg-agent-ablations --seeds 1111 --dry-run",
    "leaderboard": "examples:\n  mmbench leaderboard --results runs\n"
                   "  mmbench leaderboard --results runs --protocol random --metric acc2_has0,mae --format csv",
    "export": "example:\n  mmbench export --results runs --format csv --out results.csv",
    "methods": "example:\n  mmbench methods",
    "data": "examples:\n  mmbench data inspect mosi-synth\n  mmbench data inspect ~/data/MOSI/Processed/aligned_50.pkl\n"
            "  mmbench data fetch mosi-bclstm --from ../shared/data",
    "masks": "examples:\n  mmbench masks make --dataset mosi-synth --protocol random --condition 0.3 --seed 1111 "
             "--out runs/masks\n  mmbench masks inspect runs/masks/mosi-synth/test-random-0.3-seed1111-*.npz",
    "plan": "examples:\n  mmbench plan --dataset mosi-bclstm\n"
            "  mmbench plan --dataset mosi-synth --candidates 1 --splits train --patterns L,VA\n"
            "  mmbench plan --dataset mosei-text --limit 2000 --planner-model Qwen/Qwen2.5-1.5B-Instruct",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmbench", description="Missing-modality multimodal sentiment benchmark.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, epilog=EPILOGS.get(name),
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    run = command("run", "train and evaluate methods over datasets, protocols, conditions and seeds")
    run.add_argument("--dataset", required=True, help="one or several registered datasets, comma separated")
    run.add_argument("--method", required=True, help="method names, comma separated, 'all' or 'omg-agent-ablations'")
    run.add_argument("--protocol", default="fixed", help=f"{'|'.join(PROTOCOLS)}|all (default fixed)")
    run.add_argument("--rates", help="rates for random/frame, e.g. 0.0,0.1,0.5 (default: the full grid)")
    run.add_argument("--seeds", help="comma separated seeds (default 1111..1115, MMSA's)")
    run.add_argument("--train-setting", choices=TRAIN_SETTINGS,
                     help="complete|same|incomplete (default: complete for fixed, same for random/frame)")
    run.add_argument("--select", choices=SELECTIONS, default="valid",
                     help="model selection split; test-oracle reproduces papers that selected on test")
    run.add_argument("--max-epochs", type=int,
                     help="epoch budget of every method (default: each method's own, from its YAML; 30 where silent)")
    run.add_argument("--patience", type=int, help="early-stopping patience in validation epochs (default: each "
                     "method's own, from its YAML; 10 where silent)")
    run.add_argument("--limit", type=float, help="samples per split: a count (>= 1) or a fraction (< 1)")
    run.add_argument("--profile", choices=("quick", "paper"), default="paper",
                     help="quick: 1 seed, fixed only, <= 3 epochs, <= 512 samples per split")
    run.add_argument("--results", type=Path, default=Path("runs"), help="results directory (default ./runs)")
    run.add_argument("--logger", choices=("csv", "tensorboard", "wandb"), default="csv")
    run.add_argument("--accelerator", default="auto")
    run.add_argument("--devices", default="1")
    _data_args(run)
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value (repeatable); METHOD.KEY=VALUE for one method")
    run.add_argument("--keep-checkpoints", action="store_true", help="keep each run's selected checkpoint")
    run.add_argument("--no-leaderboard", action="store_true", help="do not print the leaderboard at the end")
    run.add_argument("--dry-run", action="store_true",
                     help="print the runs the sweep would execute (JSON, with their status in the store); train nothing")

    board = command("leaderboard", "print the tables the papers print, from the results store")
    board.add_argument("--results", type=Path, default=Path("runs"))
    board.add_argument("--dataset")
    board.add_argument("--protocol", choices=PROTOCOLS)
    board.add_argument("--metric", help="metric keys, comma separated (default ACC2 Non0, F1 Non0, ACC7)")
    board.add_argument("--include-oracle", action="store_true", help="also show test-oracle rows, labelled")
    board.add_argument("--format", choices=("md", "csv", "json", "latex", "html"), default="md")
    board.add_argument("--style", choices=("plain", "mmsa"), default="plain",
                       help="mmsa: Has0/Non0 pairs in one cell (ACC2, F1), then ACC7, MAE, Corr, as MMSA prints")

    export = command("export", "write the whole store as one long table")
    export.add_argument("--results", type=Path, default=Path("runs"))
    export.add_argument("--format", choices=("csv", "parquet", "jsonl"), default="csv")
    export.add_argument("--out", type=Path, help="output file (default: stdout for csv/jsonl)")

    command("methods", "list registered methods and the training settings each supports")

    data = command("data", "inspect or fetch datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    raw = argparse.RawDescriptionHelpFormatter
    inspect = data_sub.add_parser("inspect", help="splits, sizes, dims, label statistics, data sha256",
                                  formatter_class=raw, epilog="examples:\n  mmbench data inspect mosi-synth\n"
                                  "  mmbench data inspect ~/data/MOSI/Processed/aligned_50.pkl")
    inspect.add_argument("target", help="a registered dataset name or a feature file path")
    _data_args(inspect)
    fetch = data_sub.add_parser("fetch", help="download (or import with --from) a real dataset's source files",
                                formatter_class=raw, epilog="examples:\n  mmbench data fetch mosi-bclstm\n"
                                "  mmbench data fetch mosi-text --from ../shared/data")
    fetch.add_argument("name")
    fetch.add_argument("--from", dest="from_dir", type=Path, help="a local folder in the layout of shared/data")
    fetch.add_argument("--data-dir", type=Path, help="cache root (default MMBENCH_DATA or ~/.cache/mmbench)")

    masks = command("masks", "generate or inspect saved mask files")
    masks_sub = masks.add_subparsers(dest="masks_command", required=True)
    make = masks_sub.add_parser("make", help="build and save the masks of one (dataset, protocol, condition, seed)",
                                formatter_class=raw, epilog="example:\n  mmbench masks make --dataset mosi-synth "
                                "--protocol random --condition 0.3 --seed 1111 --out runs/masks")
    make.add_argument("--dataset", required=True)
    make.add_argument("--protocol", choices=PROTOCOLS, required=True)
    make.add_argument("--condition", required=True, help="a pattern id (fixed) or a rate like 0.3")
    make.add_argument("--seed", type=int, default=1111)
    make.add_argument("--out", type=Path, default=Path("runs") / "masks", help="mask folder (default runs/masks)")
    _data_args(make)
    show = masks_sub.add_parser("inspect", help="summarise mask files", formatter_class=raw,
                                epilog="example:\n  mmbench masks inspect runs/masks/mosi-synth/*.npz")
    show.add_argument("files", nargs="+", type=Path)
    plan = command("plan", "precompute OMG-Agent's plan cache (resumable; reused by every seed and run)")
    plan.add_argument("--dataset", required=True, help="one or several registered datasets, comma separated")
    plan.add_argument("--splits", default="train,valid,test", help="splits to plan (default train,valid,test)")
    plan.add_argument("--patterns", default="all", help="availability patterns, e.g. L,VA (default: all 7)")
    plan.add_argument("--planner-model", help="causal LM: smollm2 (offline default), a hub id or a local path "
                      "(default: configs/methods/omg-agent.yaml)")
    plan.add_argument("--candidates", type=int, help="|Omega| plan candidates (default: the config's, 5)")
    plan.add_argument("--batch-size", type=int, default=16, help="observations per LM batch")
    plan.add_argument("--limit", type=float, help="samples per split: a count (>= 1) or a fraction (< 1)")
    _data_args(plan)
    return parser


def _data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="where real files live (default MMBENCH_DATA or ~/.cache/mmbench)")
    parser.add_argument("--data-variant", choices=("aligned", "unaligned", "mult"),
                        help="which feature file of mosi/mosei/sims (default aligned_50.pkl; sims unaligned_39.pkl)")
    parser.add_argument("--synth-size", choices=("small", "full"), default="small",
                        help="size of the -synth datasets (full = the real split sizes)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from mmbench import commands

    try:
        return getattr(commands, f"cmd_{args.command}")(args)
    except KeyboardInterrupt:
        print("interrupted; the results store is consistent, run the same command again to resume", file=sys.stderr)
        return 130
    except (OSError, KeyError, ValueError) as err:
        if os.environ.get("MMBENCH_DEBUG"):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"mmbench {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
