"""What each ``mmbench`` subcommand does; ``cli.py`` only parses arguments."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmbench.constants import DEFAULT_SEEDS, PROTOCOLS


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _quiet_lightning() -> None:
    """Per-run banners (GPU available..., tips) drown the sweep's own progress; keep warnings."""
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")


def cmd_run(args: argparse.Namespace) -> int:
    from mmbench.plan import SweepOptions
    from mmbench.registry import resolve_method_names
    from mmbench.runner import Runner

    protocols = PROTOCOLS if args.protocol == "all" else tuple(_split(args.protocol))
    options = SweepOptions(
        datasets=tuple(_split(args.dataset)), methods=tuple(resolve_method_names(args.method)),
        protocols=protocols, rates=tuple(_split(args.rates)) or None,
        seeds=tuple(int(s) for s in _split(args.seeds)) or DEFAULT_SEEDS, train_setting=args.train_setting,
        selection=args.select, max_epochs=args.max_epochs, early_stop_patience=args.patience, limit=args.limit,
        profile=args.profile, results_dir=args.results, logger=args.logger, accelerator=args.accelerator,
        devices=int(args.devices) if args.devices.isdigit() else args.devices, data_dir=args.data_dir,
        data_variant=args.data_variant, synth_size=args.synth_size, overrides=tuple(args.overrides),
        keep_checkpoints=args.keep_checkpoints)
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


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from mmbench.reports.aggregate import aggregate
    from mmbench.reports.leaderboard import render
    from mmbench.results import ResultStore

    metrics = _split(args.metric) or None
    rows = aggregate(ResultStore(args.results, readonly=True), dataset=args.dataset, protocol=args.protocol,
                     metrics=None if args.style == "mmsa" else metrics, include_oracle=args.include_oracle)
    print(render(rows, args.format, metrics, args.style))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from mmbench.results import ResultStore

    table = ResultStore(args.results, readonly=True).long_table().drop(columns=["synthetic", "n_test", "run_condition"])
    if args.format == "parquet":
        import importlib.util

        if args.out is None:
            raise ValueError("--format parquet needs --out FILE")
        if importlib.util.find_spec("pyarrow") is None:
            raise ValueError('--format parquet needs the optional pyarrow: pip install "mmbench[parquet]" '
                             "(or use --format csv / jsonl)")
        table.to_parquet(args.out, index=False)  # needs the optional pyarrow: pip install "mmbench[parquet]"
    elif args.format == "jsonl":
        text = table.to_json(orient="records", lines=True)
        args.out.write_text(text) if args.out else sys.stdout.write(text)
    else:
        text = table.to_csv(index=False)
        args.out.write_text(text) if args.out else sys.stdout.write(text)
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from mmbench.registry import get_method_class, is_variant, method_names

    status = 0
    width = max((len(name) for name in method_names()), default=0) + 1
    for name in method_names():
        try:
            cls = get_method_class(name)
        except Exception as error:  # one broken entry point must not hide the others
            print(f"{name:{width}s} cannot be imported: {type(error).__name__}: {error}")
            status = 1
            continue
        settings = ", ".join(getattr(cls, "supported_train_settings", ()))
        kind = "ablation" if is_variant(name) else "method"
        print(f"{name:{width}s} {kind:8s} train settings: {settings}")
    return status


def cmd_data(args: argparse.Namespace) -> int:
    if args.data_command == "fetch":
        from mmbench.data.loading import default_data_dir
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


def cmd_plan(args: argparse.Namespace) -> int:
    """OMG-Agent's plan cache: plans are keyed by observation content, so a rerun resumes."""
    import json

    from agents.omg_agent.planner import PlanBook, precompute_plans
    from mmbench.config import load_method_config
    from mmbench.constants import PATTERNS
    from mmbench.data.loading import default_data_dir, load_dataset
    from mmbench.execute import limit_bundle

    config = load_method_config("omg-agent")
    book = PlanBook(args.planner_model or config.get("planner_model", "smollm2"),
                    args.candidates or config.get("n_candidates", 5), config.get("lambda_s", 0.3),
                    config.get("gamma", 0.1), True, default_data_dir(), args.batch_size)
    patterns = PATTERNS if args.patterns == "all" else tuple(_split(args.patterns))
    for dataset in _split(args.dataset):
        bundle = limit_bundle(load_dataset(dataset, data_dir=args.data_dir, variant=args.data_variant,
                                           synth_size=args.synth_size), args.limit)
        print(json.dumps(precompute_plans(bundle, book, _split(args.splits), patterns)))
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
