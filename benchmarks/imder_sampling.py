"""IMDer's accuracy / fidelity / cost trade-off against the number of sampling steps.

IMDer samples with one Euler-Maruyama step count in training, validation (checkpoint selection)
and test alike (``sampling_steps``, see ``baselines/imder/method.py``): a model selected on samples of one
step count and tested with another is tested on samples unlike the ones it was chosen on. So for
every number of steps in ``--steps`` this trains its own IMDer with ``sampling_steps`` set to it
(the shipped config otherwise), beside one ``fusion`` reference, on ``mosi-synth`` (``--limit``
training samples, ``--epochs`` epochs each, complete training data, validation on the 7 fixed
patterns), and evaluates it on ``--n-test`` test samples, each with one of the 6 incomplete patterns
drawn with a fixed seed. For each it prints the training time, the inference time per sample, its
ratio to fusion's time per sample measured on the same batches in the same run, the test MAE and
ACC2 (Non0), and ``rec_mse`` (input-space MSE over the valid steps of the missing modalities, all
modalities pooled) beside zero imputation's. Times are wall-clock on the current machine and torch
thread count (``--threads``); run it on an otherwise idle machine. Training cost grows with the
steps (every training batch samples), so the full grid takes a while.

Usage::

    python benchmarks/imder_sampling.py [--limit 240] [--epochs 3] [--n-test 150] [--steps 1,5,10,25,50,100]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mosi-synth")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limit", type=int, default=240, help="training samples")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-test", type=int, default=150)
    parser.add_argument("--steps", default="1,5,10,25,50,100")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1111)
    args = parser.parse_args()

    import lightning as L

    from mmbench.augment import MISSING_PATTERNS, random_patterns
    from mmbench.config import load_method_config, resolve_config, split_budget
    from mmbench.constants import MODALITIES, PATTERNS
    from mmbench.data.datamodule import DataInfo, MaskedSplit, MissingModalityDataModule, collate
    from mmbench.data.loading import load_dataset
    from mmbench.data.registry import metric_family
    from mmbench.metrics import regression_metrics
    from mmbench.missing import MaskSet, make_mask_set
    from mmbench.registry import get_method_class

    torch.set_num_threads(args.threads)
    L.seed_everything(args.seed, verbose=False)
    bundle = load_dataset(args.dataset, data_dir=args.data_dir)
    train = bundle.splits["train"]
    bundle.splits["train"] = train.subset(np.arange(min(args.limit, len(train))))
    info = DataInfo.from_bundle(bundle)

    def masks(split: str) -> dict:
        return {p: make_mask_set(args.dataset, split, bundle.splits[split].ids, None, None, "fixed", p, args.seed)
                for p in PATTERNS}

    datamodule = MissingModalityDataModule(bundle, train_mask=None, valid_masks=masks("valid"),
                                           test_masks={}, train_setting="complete", batch_size=32, seed=args.seed)

    def trained(name: str, **overrides):
        cls = get_method_class(name)
        config, _ = split_budget(load_method_config(name))  # the budget here is --epochs
        model = cls(data=info, **resolve_config(cls, {**config, **overrides}))
        trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
        started = time.perf_counter()
        trainer.fit(model, datamodule=datamodule)
        seconds = time.perf_counter() - started
        print(f"trained {name} {overrides or ''}: {args.epochs} epochs on {len(bundle.splits['train'])} samples "
              f"in {seconds:.0f} s")
        return model.eval(), seconds

    test = bundle.splits["test"].subset(np.arange(min(args.n_test, len(bundle.splits["test"]))))
    available = random_patterns(len(test), MISSING_PATTERNS, torch.Generator().manual_seed(args.seed))
    mask = MaskSet(dataset=args.dataset, split="test", protocol="fixed", condition="mixed", seed=args.seed,
                   ids=test.ids, available=available.numpy())
    split = MaskedSplit(test, mask)
    batches = [collate(split.__getitems__(list(range(s, min(s + 50, len(test)))))) for s in range(0, len(test), 50)]
    labels = torch.cat([b["label"] for b in batches])

    def timed(model) -> tuple[float, list[dict]]:
        outputs, started = [], time.perf_counter()
        with torch.no_grad():
            for i, batch in enumerate(batches):
                outputs.append(model.predict_step(batch, i))
        return (time.perf_counter() - started) / len(test), outputs

    fusion_time, fusion_out = timed(trained("fusion")[0])
    fusion_metrics = regression_metrics(torch.cat([o["pred"] for o in fusion_out]), labels, metric_family(args.dataset))
    print(f"fusion: {fusion_time * 1e3:.2f} ms/sample, MAE {fusion_metrics['mae']:.3f}, "
          f"ACC2 Non0 {fusion_metrics['acc2_non0'] * 100:.1f}")

    truth = {m: torch.from_numpy(np.asarray(test.features[m], dtype=np.float32)) for m in MODALITIES}
    valid_steps = {m: torch.arange(truth[m].shape[1])[None, :] < torch.from_numpy(np.asarray(test.lengths[m]))[:, None]
                   for m in MODALITIES}

    def rec_mse(recovered: dict[str, torch.Tensor]) -> float:
        errors = []
        for position, m in enumerate(MODALITIES):
            rows = ~available[:, position]
            steps = valid_steps[m] & rows[:, None]
            errors.append(((recovered[m] - truth[m]) ** 2).mean(-1)[steps])
        return torch.cat(errors).mean().item()

    zero_mse = rec_mse({m: torch.zeros_like(truth[m]) for m in MODALITIES})
    print(f"\nIMDer on {len(test)} test samples, one incomplete pattern each; rec_mse zero-imputation = {zero_mse:.4f}")
    print("| steps (train = valid = test) | train s | ms/sample | x fusion | MAE | ACC2 Non0 | rec_mse |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for steps in (int(s) for s in args.steps.split(",")):
        L.seed_everything(args.seed, verbose=False)  # every step count starts from the same weights and batches
        imder, train_seconds = trained("imder", sampling_steps=steps)
        per_sample, outputs = timed(imder)
        metrics = regression_metrics(torch.cat([o["pred"] for o in outputs]), labels, metric_family(args.dataset))
        recovered = {m: torch.cat([o["recovered"][m] for o in outputs]) for m in MODALITIES}
        print(f"| {steps} | {train_seconds:.0f} | {per_sample * 1e3:.1f} | {per_sample / fusion_time:.0f} | "
              f"{metrics['mae']:.3f} | {metrics['acc2_non0'] * 100:.1f} | {rec_mse(recovered):.4f} |")


if __name__ == "__main__":
    main()
