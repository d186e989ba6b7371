"""The ``mmbench`` command: thin subcommands over library functions.

Built-in subcommands are defined here (what they do: ``commands.py``); packages add their own
through the entry-point group ``mmbench.commands`` (OMG-Agent's ``mmbench plan``), so the core names
no method.
"""
from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from pathlib import Path
from typing import Callable

from mmbench import commands
from mmbench.constants import ALL_PROTOCOLS, PROTOCOLS, SELECTIONS, TRAIN_SETTINGS

#: Examples every ``--help`` ends with; a group's help (``data``, ``masks``) shows its subcommands'.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "run": ("mmbench run --dataset mosi-synth --method all --profile quick",
            "mmbench run --dataset mosi-synth --method fusion --protocol all --seeds 1111,1112",
            "mmbench run --dataset mosi-bclstm --method fusion,mean --protocol random --rates 0.0,0.5 "
            "--set fusion.hidden_dim=128",
            "mmbench run --dataset mosi-synth --method omg-agent-ablations --seeds 1111 --dry-run",
            "mmbench run --dataset mosi-bclstm --method fusion --protocol random --train-setting complete "
            "--eval-rates 0.0,0.1,0.2,0.3,0.4,0.5,0.6,0.7",
            "mmbench run --dataset mosi-synth --method fusion,ae,mmin --protocol all --jobs 4"),
    "leaderboard": ("mmbench leaderboard --results runs",
                    "mmbench leaderboard --results runs --protocol random --metric acc2_has0,mae --format csv",
                    "mmbench leaderboard --results runs --dataset mosi-bclstm --compare-published",
                    "mmbench leaderboard --results runs --layout patterns --significance --format latex"),
    "export": ("mmbench export --results runs --format csv --out results.csv",),
    "plot": ("mmbench plot --results runs --out figures",
             "mmbench plot --results runs --out figures --dataset mosi-bclstm --metric acc2_has0,mae"),
    "tune": ("mmbench tune --dataset mosi-bclstm --method fusion --trials 10",
             "mmbench tune --dataset mosi-synth --method ae --trials 3 --max-epochs 2 --limit 96 --seeds 1111"),
    "methods": ("mmbench methods",),
    "data inspect": ("mmbench data inspect mosi-synth", "mmbench data inspect ~/data/MOSI/Processed/aligned_50.pkl"),
    "data fetch": ("mmbench data fetch mosi-bclstm", "mmbench data fetch mosi-text --from ../shared/data"),
    "masks make": ("mmbench masks make --dataset mosi-synth --protocol random --condition 0.3 --seed 1111 "
                   "--out runs/masks",),
    "masks inspect": ("mmbench masks inspect runs/masks/mosi-synth/test-random-0.3-seed1111-*.npz",),
}


def epilog(examples: tuple[str, ...]) -> str:
    """The end of a ``--help``: its example command lines."""
    return ("example:" if len(examples) == 1 else "examples:") + "".join(f"\n  {line}" for line in examples)


def add_command(subparsers, name: str, help_text: str, examples: tuple[str, ...],
                handler: Callable[[argparse.Namespace], int] | None = None) -> argparse.ArgumentParser:
    """Add the subcommand ``name`` (its ``--help`` ends with ``examples``); ``handler(args)`` runs it.

    Packages contribute subcommands with this: an entry point of the group ``mmbench.commands``
    names ``module:register``, and ``register(subparsers)`` calls ``add_command`` (see README).
    """
    parser = subparsers.add_parser(name, help=help_text, description=help_text, epilog=epilog(examples),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser


def _group_examples(group: str) -> tuple[str, ...]:
    return tuple(line for name, lines in EXAMPLES.items() if name.startswith(group + " ") for line in lines)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``mmbench`` parser: the built-in subcommands, and those packages contribute (group
    ``mmbench.commands``), imported only when ``argv`` names no built-in command."""
    parser = argparse.ArgumentParser(prog="mmbench", description="Missing-modality multimodal sentiment benchmark.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return add_command(sub, name, help_text, EXAMPLES.get(name) or _group_examples(name),
                           getattr(commands, f"cmd_{name}"))

    run = command("run", "train and evaluate methods over datasets, protocols, conditions and seeds")
    run.add_argument("--dataset", required=True, help="one or several registered datasets, comma separated")
    run.add_argument("--method", required=True, help="method names, comma separated, 'all' or '<method>-ablations'")
    run.add_argument("--protocol", default="fixed",
                     help=f"{'|'.join(PROTOCOLS)}|all (default fixed; all = {','.join(ALL_PROTOCOLS)})")
    run.add_argument("--rates", help="rates for random/frame, e.g. 0.0,0.1,0.5; per-modality ids for imbalanced, "
                                     "e.g. L0.3-V0.5-A0.7 (default: the protocol's grid)")
    run.add_argument("--seeds", help="comma separated seeds (default 1111..1115, MMSA's)")
    run.add_argument("--train-setting", choices=TRAIN_SETTINGS,
                     help="complete|same|incomplete (default: complete for fixed, same for random/frame/imbalanced)")
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
    data_args(run)
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value (repeatable); METHOD.KEY=VALUE for one method")
    run.add_argument("--keep-checkpoints", action="store_true", help="keep each run's selected checkpoint")
    run.add_argument("--no-leaderboard", action="store_true", help="do not print the leaderboard at the end")
    run.add_argument("--eval-rates", help="also test each trained model at these conditions of its protocol, "
                     "e.g. 0.0,0.1,..,0.7 (no retraining); with --train-setting complete and no --rates, one model "
                     "per seed, trained and selected at 0.0")
    run.add_argument("--dry-run", action="store_true",
                     help="print the runs the sweep would execute (JSON, with their status in the store); train nothing")
    launch = run.add_argument_group("where the runs train (see mmbench.launchers)")
    launch.add_argument("--jobs", type=int, default=1,
                        help="runs trained at once (default 1); MMBENCH_THREADS is split across them")
    launch.add_argument("--launcher", choices=("local", "ray", "slurm"), default="local",
                        help="local: this machine (default); ray: Ray tasks; slurm: submitit array jobs "
                             "(ray and slurm need the extra: pip install -e '.[distributed]')")
    launch.add_argument("--ray-address", help="an existing Ray cluster, e.g. auto (default: start a local one)")
    launch.add_argument("--retries", type=int, default=1,
                        help="tries again of a run lost with its worker (killed, out of memory; default 1)")
    launch.add_argument("--gpus-per-run", type=float,
                        help="GPUs each run declares, a fraction packs runs on one GPU (ray); whole GPUs on slurm")
    launch.add_argument("--slurm-partition", help="SLURM partition of the array jobs")
    launch.add_argument("--slurm-time", type=int, help="minutes each SLURM job may run")

    board = command("leaderboard", "print the tables the papers print, from the results store")
    board.add_argument("--results", type=Path, default=Path("runs"))
    board.add_argument("--dataset")
    board.add_argument("--protocol", choices=PROTOCOLS)
    board.add_argument("--metric", help="metric keys, comma separated (default ACC2 Non0, F1 Non0, ACC7)")
    board.add_argument("--include-oracle", action="store_true", help="also show test-oracle rows, labelled")
    board.add_argument("--compare-published", action="store_true",
                       help="the papers' numbers (results/published/) beside this store's, with the "
                            "difference and why a pair is not like for like")
    board.add_argument("--format", choices=("md", "csv", "json", "latex", "html"), default="md")
    board.add_argument("--style", choices=("plain", "mmsa"), default="plain",
                       help="mmsa: Has0/Non0 pairs in one cell (ACC2, F1), then ACC7, MAE, Corr, as MMSA prints")
    board.add_argument("--layout", choices=("patterns", "rates", "matrix"),
                       help="the papers' layouts: patterns = methods x the 7 fixed patterns (A V L VA LA LV LVA) "
                            "+ Avg over the 6 incomplete ones; rates = methods x missing rate (random, frame), then "
                            "robustness summaries (AUC, drop, MultiBench relative/effective robustness). Always "
                            "with the mean and fusion rows; matrix = train rate x test rate of --eval-rates runs")
    board.add_argument("--significance", action="store_true",
                       help="with --layout: mark best (bold) and second best (underlined) only where they differ "
                            "from the next row at alpha 0.05: paired bootstrap over the saved test predictions "
                            "(1000 resamples), else a paired t-test over seeds; reads every run's predictions, "
                            "so it takes seconds per column")
    board.add_argument("--out", type=Path, metavar="DIR",
                       help="with --format html: write DIR/index.html, one self-contained page, and its figures "
                            "under DIR/figures/")

    export = command("export", "write the whole store as one long table")
    export.add_argument("--results", type=Path, default=Path("runs"))
    export.add_argument("--format", choices=("csv", "parquet", "jsonl"), default="csv")
    export.add_argument("--out", type=Path, help="output file (default: stdout for csv/jsonl)")

    plot = command("plot", "draw the figures (PNG and PDF): metric vs missing rate, bars per pattern, "
                           "reconstruction fidelity, accuracy vs cost")
    plot.add_argument("--results", type=Path, default=Path("runs"))
    plot.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder the figures are written to")
    plot.add_argument("--dataset", help="only this dataset (default: every dataset in the store)")
    plot.add_argument("--metric", help="metric keys, comma separated, of the rate curves and pattern bars; the "
                                       "first is the accuracy of the cost figure (default ACC2 Non0, MAE)")

    tune = command("tune", "search a method's hyperparameters (its YAML's search_space) with Optuna on the "
                           "validation split, the same trials and epochs for every method; then run the best")
    tune.add_argument("--dataset", required=True)
    tune.add_argument("--method", required=True, help="one method (its search_space is in configs/methods/)")
    tune.add_argument("--trials", type=int, required=True, help="trials in total; a rerun continues up to this")
    tune.add_argument("--max-epochs", type=int,
                      help="epoch budget of every trial and of the tuned runs, the same for every method (default 30)")
    tune.add_argument("--seed", type=int, help="the sampler's seed and the trials' training seed (default 1111)")
    tune.add_argument("--seeds", help="seeds the tuned configuration runs with (default 1111..1115, MMSA's)")
    tune.add_argument("--limit", type=float, help="samples per split: a count (>= 1) or a fraction (< 1)")
    tune.add_argument("--results", type=Path, default=Path("runs"), help="results directory of the tuned runs")
    tune.add_argument("--study-dir", type=Path,
                      help="the study's Optuna SQLite file and its trials' runs (default <results>/tuning)")
    tune.add_argument("--accelerator", default="auto")
    tune.add_argument("--devices", default="1")
    data_args(tune)
    tune.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="fix a config value for every trial (repeatable); not a searched one")

    command("methods", "list registered methods (with the training settings each supports) and contributed commands")

    data_sub = command("data", "inspect or fetch datasets").add_subparsers(dest="data_command", required=True)
    inspect = add_command(data_sub, "inspect", "splits, sizes, dims, label statistics, data sha256",
                          EXAMPLES["data inspect"])
    inspect.add_argument("target", help="a registered dataset name or a feature file path")
    data_args(inspect)
    fetch = add_command(data_sub, "fetch", "download (or import with --from) a real dataset's source files",
                        EXAMPLES["data fetch"])
    fetch.add_argument("name")
    fetch.add_argument("--from", dest="from_dir", type=Path, help="a local folder in the layout of shared/data")
    fetch.add_argument("--data-dir", type=Path, help="cache root (default MMBENCH_DATA or ~/.cache/mmbench)")

    masks_sub = command("masks", "generate or inspect saved mask files").add_subparsers(dest="masks_command",
                                                                                         required=True)
    make = add_command(masks_sub, "make", "build and save the masks of one (dataset, protocol, condition, seed)",
                       EXAMPLES["masks make"])
    make.add_argument("--dataset", required=True)
    make.add_argument("--protocol", choices=PROTOCOLS, required=True)
    make.add_argument("--condition", required=True, help="a pattern id (fixed) or a rate like 0.3")
    make.add_argument("--seed", type=int, default=1111)
    make.add_argument("--out", type=Path, default=Path("runs") / "masks", help="mask folder (default runs/masks)")
    data_args(make)
    show = add_command(masks_sub, "inspect", "summarise mask files", EXAMPLES["masks inspect"])
    show.add_argument("files", nargs="+", type=Path)

    if _first_word(argv) not in sub.choices:  # a built-in command never waits for a package's import
        _add_contributed(sub)
    return parser


def _first_word(argv: list[str] | None) -> str | None:
    words = [word for word in (sys.argv[1:] if argv is None else argv) if not word.startswith("-")]
    return words[0] if words else None


def _add_contributed(sub) -> None:
    """The subcommands of the entry-point group; one that cannot be imported still shows, with its error."""
    for name, loaded in commands.contributed_commands().items():
        if name in sub.choices:
            continue  # a package cannot replace a built-in command
        if isinstance(loaded, Exception):
            # no option syntax ("+"): whatever follows, the command answers with its import error
            broken = sub.add_parser(name, help=f"unavailable: {commands.describe_error(loaded)}", prefix_chars="+",
                                    add_help=False)
            broken.add_argument("ignored", nargs="*", help=argparse.SUPPRESS)
            broken.set_defaults(handler=partial(commands.cmd_unavailable, loaded))
        else:
            loaded(sub)


def data_args(parser: argparse.ArgumentParser) -> None:
    """``--data-dir``, ``--data-variant``, ``--synth-size``: how a command finds and sizes a dataset."""
    parser.add_argument("--data-dir", type=Path, help="where real files live (default MMBENCH_DATA or ~/.cache/mmbench)")
    parser.add_argument("--data-variant", choices=("aligned", "unaligned", "mult"),
                        help="which feature file of mosi/mosei/sims (default aligned_50.pkl; sims unaligned_39.pkl)")
    parser.add_argument("--synth-size", choices=("small", "full"), default="small",
                        help="size of the -synth datasets (full = the real split sizes)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    try:
        return args.handler(args)
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
