"""What a run cost: training wall time, inference time per sample, parameter count, peak memory.

Recorded by the runner beside the accuracy metrics (split ``test``, one row per tested condition) so
that the same aggregation and tables show them (``mmbench leaderboard --metric train_s,infer_ms,params``).
They are measurements, not seeded results: two runs of one seed agree on every metric but these.

- ``train_s``: wall seconds of the whole fit, pretraining stages and validation included (0 for a
  method with nothing to train).
- ``infer_ms``: wall milliseconds per test sample spent in one condition's prediction steps
  (:class:`PredictionTimer`; loading the batches is not counted).
- ``params``: parameters of the method's module, frozen ones included (an LLM the method loads
  outside its module, such as OMG-Agent's planner, is not counted).
- ``peak_mem_mb``: peak resident memory of the process during the run (RSS, MiB) on CPU; on CUDA,
  ``torch.cuda.max_memory_allocated`` (MiB).
"""
from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import lightning as L
import torch

COST_METRICS = ("train_s", "infer_ms", "params", "peak_mem_mb")

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def parameter_count(module: torch.nn.Module) -> int:
    """Every parameter of the module, trainable or frozen, counted once even when shared."""
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())


class PeakMemory:
    """Peak memory of the process from :meth:`reset` to :meth:`read_mb`.

    On Linux the resident-set high-water mark can be reset (``/proc/self/clear_refs``), so each run
    of a sweep gets its own peak; elsewhere ``ru_maxrss`` is the peak since the process started,
    which over-reports later runs of one process (noted in docs/metrics.md).
    """

    def __init__(self, device: torch.device | str | None = None):
        self.cuda = torch.device(device).type == "cuda" if device is not None else False

    def reset(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            return
        try:
            _CLEAR_REFS.write_text("5")
        except OSError:
            pass  # not Linux, or not permitted: read_mb falls back to the process-lifetime peak

    def read_mb(self) -> float:
        if self.cuda:
            return torch.cuda.max_memory_allocated() / 2**20
        try:
            for line in _STATUS.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


class PredictionTimer(L.Callback):
    """Wall seconds spent in the prediction steps of each dataloader of one ``trainer.predict`` call.

    Loading a batch is not counted, so the figure is the method's cost, not the loader's. On CUDA the
    clock waits for the device, which runs asynchronously.
    """

    def __init__(self, n_loaders: int):
        self.seconds = [0.0] * n_loaders
        self._started = 0.0

    def _now(self, module) -> float:
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)
        return time.perf_counter()

    def on_predict_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0) -> None:
        self._started = self._now(module)

    def on_predict_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.seconds[dataloader_idx] += self._now(module) - self._started
