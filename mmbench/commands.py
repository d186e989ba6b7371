"""What each ``mmbench`` subcommand does; ``cli.py`` only parses arguments."""
from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable

from mmbench.constants import ALL_PROTOCOLS, DEFAULT_SEEDS

#: Entry-point group of subcommands contributed by packages (``name = "module:register"``).
COMMAND_GROUP = "mmbench.commands"


def comma_list(text: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: how every comma-separated option is read."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def contributed_commands() -> dict[str, Callable | Exception]:
    """Subcommand name -> its ``register(subparsers)``, from the entry-point group ``mmbench.commands``,
    or the exception its import raised (one broken package must not hide the other commands)."""
    found: dict[str, Callable | Exception] = {}
    for point in entry_points(group=COMMAND_GROUP):
        try:
            found[point.name] = point.load()
        except Exception as error:  # anything a package's import raises
            found[point.name] = error
    return found


def describe_error(error: Exception) -> str:
    return f"cannot be imported: {type(error).__name__}: {error}"


def cmd_unavailable(error: Exception, args: argparse.Namespace) -> int:
    """The handler of a contributed command whose package failed to import."""
    print(f"mmbench {args.command}: error: {describe_error(error)}", file=sys.stderr)
    return 1


def _quiet_lightning() -> None:
    """Per-run banners (GPU available..., tips) drown the sweep's own progress; keep warnings."""
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # the workers warning: data.datamodule hides it


def cmd_run(args: argparse.Namespace) -> int:
    from mmbench.sweep import SweepOptions
    from mmbench.registry import resolve_method_names
    from mmbench.runner import Runner

    if args.devices.strip() != "1":  # Lightning would start DDP: every rank re-running the whole sweep (#19)
        raise ValueError(f"--devices {args.devices}: one device per run only (multi-GPU DDP is not supported "
                         f"yet); use --devices 1, and CUDA_VISIBLE_DEVICES to pick the GPU")
    protocols = ALL_PROTOCOLS if args.protocol == "all" else tuple(comma_list(args.protocol))
    eval_rates = tuple(comma_list(args.eval_rates)) or None
    rates = tuple(comma_list(args.rates)) or None
    if eval_rates and args.train_setting == "complete" and rates is None:
        rates = ("0.0",)  # a complete-data model has no missing prior: train (and select) it once, at 0.0
    options = SweepOptions(
        datasets=tuple(comma_list(args.dataset)), methods=tuple(resolve_method_names(args.method)),
        protocols=protocols, rates=rates, eval_rates=eval_rates,
        seeds=tuple(int(s) for s in comma_list(args.seeds)) or DEFAULT_SEEDS, train_setting=args.train_setting,
        selection=args.select, max_epochs=args.max_epochs, early_stop_patience=args.patience, limit=args.limit,
        profile=args.profile, results_dir=args.results, logger=args.logger, accelerator=args.accelerator,
        devices=int(args.devices) if args.devices.isdigit() else args.devices, data_dir=args.data_dir,
        data_variant=args.data_variant, synth_size=args.synth_size, overrides=tuple(args.overrides),
        keep_checkpoints=args.keep_checkpoints, jobs=args.jobs, launcher=args.launcher,
        ray_address=args.ray_address, retries=args.retries, gpus_per_run=args.gpus_per_run,
        slurm_partition=args.slurm_partition, slurm_time=args.slurm_time)
    _quiet_lightning()
    runner = Runner(options)
    if args.dry_run:
        import json

        print(json.dumps(runner.dry_run(), indent=1, default=str))
        return 0
    summary = runner.run()
    print(f"\n{len(summary.finished)} run(s) finished, {len(summary.skipped)} already done, "
          f"{len(summary.held)} being trained by another process, {len(summary.failed)} failed "
          f"(results in {args.results})", file=sys.stderr)
    for label in summary.held:
        print(f"  held by another process (its result lands in the same store): {label}", file=sys.stderr)
    for label in summary.failed:
        print(f"  failed: {label} (traceback in the store: mmbench export --results {args.results})",
              file=sys.stderr)
    if not args.no_leaderboard:
        from mmbench.reports.aggregate import aggregate
        from mmbench.reports.leaderboard import render
        from mmbench.results import ResultStore

        for dataset in options.datasets:
            print(render(aggregate(ResultStore(args.results, readonly=True), dataset=dataset), "md"))
    return 1 if summary.failed else 0


def cmd_tune(args: argparse.Namespace) -> int:
    """Tune one method (mmbench/tune.py); prints the study's outcome as JSON."""
    import json

    from mmbench.tune import TuneOptions, tune

    given = {"max_epochs": args.max_epochs, "seed": args.seed,
             "seeds": tuple(int(s) for s in comma_list(args.seeds)) or None}
    options = TuneOptions(
        dataset=args.dataset, method=args.method, trials=args.trials, results_dir=args.results,
        study_dir=args.study_dir, overrides=tuple(args.overrides), limit=args.limit, data_dir=args.data_dir,
        data_variant=args.data_variant, synth_size=args.synth_size, accelerator=args.accelerator,
        devices=int(args.devices) if args.devices.isdigit() else args.devices,
        **{name: value for name, value in given.items() if value is not None})
    _quiet_lightning()
    result = tune(options)
    summary = result.summary
    print(json.dumps({"study": result.study, "storage": result.storage, "trials": result.n_trials,
                      "max_epochs": options.max_epochs, "best_valid_mae": result.best_score, "values": result.values,
                      "config_id": result.config_id, "runs_finished": len(summary.finished),
                      "runs_already_done": len(summary.skipped), "runs_failed": len(summary.failed)}, indent=1))
    print(f"tuned rows beside the defaults: mmbench leaderboard --results {args.results} --dataset {args.dataset}",
          file=sys.stderr)
    return 1 if summary.failed else 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from mmbench.results.exported import open_results
    from mmbench.reports.aggregate import aggregate
    from mmbench.reports.leaderboard import render

    metrics = comma_list(args.metric) or None
    # --compare-published and the page (--out) have their own views; --layout prints the paper tables
    if args.layout == "matrix":  # --eval-rates runs: train rate x test rate
        from mmbench.reports.matrix import render_matrices

        rows = aggregate(open_results(args.results), dataset=args.dataset, protocol=args.protocol,
                         metrics=metrics or ["acc2_non0", "mae"], include_oracle=args.include_oracle)
        print(render_matrices(rows, args.format, metrics))
        return 0
    if getattr(args, "layout", None) and not (getattr(args, "compare_published", False) or getattr(args, "out", None)):
        from mmbench.reports.layouts import layout_tables, render_layout

        tables = layout_tables(open_results(args.results), args.layout, dataset=args.dataset,
                               protocol=args.protocol, metrics=metrics, include_oracle=args.include_oracle,
                               significance=args.significance)
        print(render_layout(tables, args.format))
        return 0
    rows = aggregate(open_results(args.results), dataset=args.dataset, protocol=args.protocol,
                     metrics=None if args.style == "mmsa" else metrics, include_oracle=args.include_oracle)
    if getattr(args, "compare_published", False):
        from mmbench.reports.published import compare, load_published, render_comparison

        table = compare(rows, load_published())
        print(render_comparison(table[table["metric"].isin(metrics)] if metrics else table, args.format))
        return 0
    if getattr(args, "out", None):
        if args.format != "html":
            raise ValueError(f"--out DIR writes the HTML page; add --format html (got --format {args.format})")
        print(_write_leaderboard_page(args, rows))
        return 0
    print(render(rows, args.format, metrics, args.style))
    return 0


def _write_leaderboard_page(args: argparse.Namespace, rows) -> Path:
    """``leaderboard --format html --out DIR``: the figures under DIR/figures, then the page embedding them."""
    from mmbench.results.exported import open_results
    from mmbench.reports.aggregate import counted_runs
    from mmbench.reports.page import store_provenance, write_page
    from mmbench.reports.plots import make_figures

    runs = counted_runs(open_results(args.results).runs())
    figures = make_figures(rows, args.out / "figures") if len(rows) else []
    return write_page(rows, args.out, figures, store_provenance(runs, rows))


def cmd_plot(args: argparse.Namespace) -> int:
    from mmbench.results.exported import open_results
    from mmbench.reports.plots import make_figures

    paths = make_figures(open_results(args.results), args.out, dataset=args.dataset,
                         metrics=comma_list(args.metric) or None)
    for path in paths:
        print(f"{path}\n{path.with_suffix('.pdf')}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from mmbench.results.exported import export_table, open_results

    table = export_table(open_results(args.results))  # the long table, with each run's own columns beside it
    if args.format == "parquet":
        import importlib.util

        if args.out is None:
            raise ValueError("--format parquet needs --out FILE")
        if importlib.util.find_spec("pyarrow") is None:
            raise ValueError('--format parquet needs the optional pyarrow: pip install "mmbench[parquet]" '
                             "(or use --format csv / jsonl)")
        table.to_parquet(args.out, index=False)  # needs the optional pyarrow: pip install "mmbench[parquet]"
    elif args.format == "jsonl":  # a name ending in .gz is compressed
        table.to_json(args.out or sys.stdout, orient="records", lines=True, compression="infer")
    else:
        table.to_csv(args.out or sys.stdout, index=False, compression="infer")
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from mmbench.registry import get_method_class, is_variant, method_names

    status = 0
    contributed = contributed_commands()
    width = max((len(name) for name in [*method_names(), *contributed]), default=0) + 1
    for name in method_names():
        try:
            cls = get_method_class(name)
        except Exception as error:  # one broken entry point must not hide the others
            print(f"{name:{width}s} {describe_error(error)}")
            status = 1
            continue
        settings = ", ".join(cls.supported_train_settings)
        kind = "ablation" if is_variant(name) else "method"
        print(f"{name:{width}s} {kind:8s} train settings: {settings}")
    for name, loaded in contributed.items():
        if isinstance(loaded, Exception):
            print(f"{name:{width}s} command  {describe_error(loaded)}")
            status = 1
        else:
            print(f"{name:{width}s} command  mmbench {name} (from {loaded.__module__})")
    return status


def cmd_data(args: argparse.Namespace) -> int:
    if args.data_command == "fetch":
        from mmbench.data.files import default_data_dir
        from mmbench.data.real import fetch

        root = fetch(args.name, from_dir=args.from_dir, cache_dir=args.data_dir or default_data_dir())
        print(f"{args.name}: source files verified under {root}")
        return 0
    from mmbench.data.inspect import describe_bundle, known_copy_status

    target = Path(args.target)
    if target.suffix == ".pkl" or target.is_file():
        from mmbench.data.formats import read_feature_file

        if not target.is_file():
            raise FileNotFoundError(f"{target}: no such file")
        bundle = read_feature_file(target, name=target.stem)
        print(describe_bundle(bundle))
        from mmbench.data.registry import DATASETS

        for spec in DATASETS.values():
            if any(c.file == target.name for c in spec.known_copies):
                print(known_copy_status(target, spec))
        return 0
    from mmbench.data.loading import load_dataset

    bundle = load_dataset(args.target, data_dir=args.data_dir, variant=args.data_variant,
                          synth_size=args.synth_size)
    print(describe_bundle(bundle))
    return 0


def cmd_masks(args: argparse.Namespace) -> int:
    from mmbench.missing import MaskSet

    if args.masks_command == "inspect":
        for path in args.files:
            mask = MaskSet.load(path)
            per_modality = mask.available.mean(axis=0)
            print(f"{path}: {mask.dataset}/{mask.split} {mask.protocol} {mask.condition} seed {mask.seed}, "
                  f"N = {len(mask.ids)}, available L/V/A = {per_modality.round(3).tolist()}, "
                  f"target rate {mask.target_rate}, achieved {mask.achieved_rate}, sha256 {mask.sha256()}")
        return 0
    from mmbench.data.loading import load_dataset
    from mmbench.masks import saved_mask

    bundle = load_dataset(args.dataset, data_dir=args.data_dir, variant=args.data_variant,
                          synth_size=args.synth_size)
    for split_name, split in bundle.splits.items():
        mask = saved_mask(args.out, args.dataset, split_name, split, args.protocol, args.condition, args.seed)
        print(f"{split_name}: N = {len(mask.ids)}, achieved rate {mask.achieved_rate}, sha256 {mask.sha256()}")
    return 0
