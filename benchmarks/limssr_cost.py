"""What LIMSSR costs: training time per epoch, inference time per sample, peak memory, vs ``fusion``.

Both methods are built on the same dataset (default ``mosi-bclstm``: 1,182 training samples) and timed
in the same process on the same capped sample, so the ratio is meaningful even on a busy machine:

1. training: ``--train-steps`` optimiser steps at the method's batch size (AdamW / Adam, clipping as in
   a fit) on the first training samples, after one untimed warm-up step; the time per epoch is
   EXTRAPOLATED from the mean step time to the full training split (printed as such);
2. inference: ``--eval-samples`` validation samples with every modality, batch 64, no gradient, one
   untimed warm-up batch; on CUDA too when it is present (bf16 autocast, as in a fit);
3. peak memory: the process's max RSS (includes loading the LLM) and, on CUDA, max allocated.

The LLM is the method's real backbone (the config's ``llm``, default SmolLM2-135M-Instruct); the
LLM-load time is reported separately. Pass ``--set llm_layers=2 --set max_positions=4`` to time the
quick profile.

Usage::

    python benchmarks/limssr_cost.py [--dataset mosi-bclstm] [--data-dir /work/mmdata] [--train-steps 4]
        [--eval-samples 64] [--threads 2] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import resource
import time

import torch

from mmbench.config import apply_overrides, load_method_config, resolve_config, split_budget
from mmbench.data.datamodule import DataInfo, MaskedSplit
from mmbench.data.loading import load_dataset
from mmbench.registry import get_method_class


def build(name: str, info: DataInfo, overrides: list[str]):
    cls = get_method_class(name)
    arguments, _ = split_budget(apply_overrides(load_method_config(name), overrides))  # the budget is the runner's
    config = resolve_config(cls, arguments)
    return cls(data=info, **config), config


def batches(split, size: int, count: int):
    dataset = MaskedSplit(split, None)
    return [dataset.__getitems__(list(range(i * size, (i + 1) * size))) for i in range(count)]


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def train_step_seconds(model, train_batches: list[dict], device: torch.device, clip: float | None) -> float:
    model.to(device).train()
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=1e-4)
    times = []
    for index, batch in enumerate(train_batches):
        batch = to_device(batch, device)
        _sync(device)
        start = time.perf_counter()
        losses = model.training_loss(batch)
        loss = losses if isinstance(losses, torch.Tensor) else losses["loss"]
        optimizer.zero_grad()
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(trained, clip)
        optimizer.step()
        _sync(device)
        if index > 0:  # the first step is a warm-up
            times.append(time.perf_counter() - start)
    return sum(times) / len(times)


def inference_seconds_per_sample(model, eval_batches: list[dict], device: torch.device) -> float:
    model.to(device).eval()
    total, samples = 0.0, 0
    with torch.no_grad():
        for index, batch in enumerate(eval_batches):
            batch = to_device(batch, device)
            _sync(device)
            start = time.perf_counter()
            model(batch)
            _sync(device)
            if index > 0 or len(eval_batches) == 1:
                total += time.perf_counter() - start
                samples += len(batch["label"])
    return total / samples


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mosi-bclstm")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--train-steps", type=int, default=4, help="timed steps (+1 warm-up)")
    parser.add_argument("--eval-samples", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="limssr config override")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    bundle = load_dataset(args.dataset, data_dir=args.data_dir)
    info = DataInfo.from_bundle(bundle)
    n_train = len(bundle.splits["train"])
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])

    start = time.perf_counter()
    limssr, config = build("limssr", info, args.overrides)
    load_seconds = time.perf_counter() - start
    fusion, fusion_config = build("fusion", info, [])
    print(f"dataset {args.dataset}: {n_train} training samples; LIMSSR llm={config['llm']} "
          f"layers={config['llm_layers'] or 'all'} max_positions={config['max_positions']} "
          f"batch={config['batch_size']}; LLM load + build {load_seconds:.1f} s; torch threads {args.threads}")

    for device in devices:
        results = {}
        for name, model, cfg, clip in (("limssr", limssr, config, config["gradient_clip"]),
                                       ("fusion", fusion, fusion_config, None)):
            size = int(cfg["batch_size"])
            train = batches(bundle.splits["train"], size, args.train_steps + 1)
            evaluation = batches(bundle.splits["valid"], min(64, args.eval_samples),
                                 max(1, args.eval_samples // 64) + 1)
            step = train_step_seconds(model, train, device, clip)
            per_sample = inference_seconds_per_sample(model, evaluation, device)
            results[name] = (step / size, per_sample)
            epoch = step * (n_train / size)
            print(f"[{device.type}] {name:7s} train {step:7.3f} s/step (batch {size}) -> EXTRAPOLATED epoch of "
                  f"{n_train} samples {epoch:8.1f} s ({args.train_steps} timed steps of {size}); "
                  f"inference {1000 * per_sample:8.2f} ms/sample")
        (lt, li), (ft, fi) = results["limssr"], results["fusion"]
        print(f"[{device.type}] ratio limssr/fusion: training {lt / ft:.0f}x per sample, inference {li / fi:.0f}x")
        if device.type == "cuda":
            print(f"[cuda] max allocated {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (whole process)")


if __name__ == "__main__":
    main()
