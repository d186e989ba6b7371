"""Load speed of a MOSEI-sized MMSA pickle: the first load (unpickle + convert) against the cached load.

Writes a synthetic ``aligned_50.pkl`` with CMU-MOSEI's real split sizes (16,326 / 1,871 / 4,659) and
MMSA's MOSEI dims (text 768, vision 35, audio 74; seq 50) filled with random numbers (only the shapes and
dtypes matter for speed), to a temporary folder. Each load then runs in a fresh child process, so the
peak RSS printed is that load's own and the generator's memory does not count:

1. first load: restricted unpickling, parsing, and conversion to the memory-mappable ``.npy`` cache;
2. cached load: the same call again, which opens the cache with ``np.load(mmap_mode="r")``;
3. one pass over every cached feature array (what the first epoch pays to page the data in).

The pickle was just written, so it is in the page cache: the first load's time is a lower bound on a
cold disk. At ``--scale 1`` the file is 3.8 GiB and the writer (not the loads) briefly needs about 8 GB
of memory, since protocol 4 copies each array while pickling; ``--scale 0.1`` gives a quick try. On 2
cores the default run took 45 s: first load 12.5 s (peak RSS 4.0 GB, one copy of the data), cached
load 0.06 s (41 MB).

Usage::

    python benchmarks/load_speed.py [--scale 0.1] [--protocol 4] [--keep]
"""
from __future__ import annotations

import argparse
import gc
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MOSEI_SPLITS = {"train": 16326, "valid": 1871, "test": 4659}
MOSEI_DIMS = {"L": 768, "V": 35, "A": 74}
SEQ_LEN = 50


def _peak_rss_mib() -> float:
    """This process's peak resident memory. Linux's VmHWM, unlike ru_maxrss, is not inherited across exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale / 1024


def make_bundle(scale: float, seed: int = 0):
    """A random MOSEI-shaped bundle (labels in [-3, 3] in steps of 1/3, like MOSEI's)."""
    from mmbench.constants import MODALITIES
    from mmbench.data.types import DatasetBundle, SplitData

    rng = np.random.default_rng(seed)
    splits = {}
    for split, full_size in MOSEI_SPLITS.items():
        n = max(2, int(round(full_size * scale)))
        splits[split] = SplitData(
            ids=np.array([f"{split}{i:05d}$_${i % 7}" for i in range(n)]),
            features={m: rng.random((n, SEQ_LEN, MOSEI_DIMS[m]), dtype=np.float32) for m in MODALITIES},
            lengths={m: rng.integers(1, SEQ_LEN + 1, n) for m in MODALITIES},
            labels=(rng.integers(-9, 10, n) / 3).astype(np.float32),
            raw_text=[f"utterance {i}" for i in range(n)],
        )
    return DatasetBundle("mosei-bench", splits, "synthetic", "", "load_speed benchmark", (-3.0, 3.0))


def child_load(path: Path, cache_dir: Path, touch: bool) -> dict:
    """Run in a fresh process: one cached-loader call (and optionally a pass over every feature array)."""
    from mmbench.constants import MODALITIES
    from mmbench.data.cache import load_feature_file_cached

    start = time.perf_counter()
    bundle = load_feature_file_cached(path, cache_dir=cache_dir)
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, "n_train": len(bundle.splits["train"]), "peak_rss_mib": _peak_rss_mib()}
    if touch:
        start = time.perf_counter()
        total = sum(float(np.sum(split.features[m], dtype=np.float64))
                    for split in bundle.splits.values() for m in MODALITIES)
        result.update(touch_seconds=time.perf_counter() - start, checksum=total, touched_rss_mib=_peak_rss_mib())
    return result


def _run_child(path: Path, cache_dir: Path, touch: bool) -> dict:
    command = [sys.executable, __file__, "--child", str(path), str(cache_dir)] + (["--touch"] if touch else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child load failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="example: python benchmarks/load_speed.py --scale 0.1")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of MOSEI's split sizes (default 1)")
    parser.add_argument("--protocol", type=int, default=4, help="pickle protocol of the written file (default 4)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    parser.add_argument("--child", nargs=2, metavar=("PKL", "CACHE_DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--touch", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_load(Path(args.child[0]), Path(args.child[1]), args.touch)))
        return 0

    from mmbench.data.writers import write_mmsa_pickle

    workdir = Path(tempfile.mkdtemp(prefix="mmbench-load-speed-"))
    try:
        path, cache_dir = workdir / "aligned_50.pkl", workdir / "cache"
        start = time.perf_counter()
        bundle = make_bundle(args.scale)
        sizes = {s: len(d) for s, d in bundle.splits.items()}
        write_mmsa_pickle(bundle, path, protocol=args.protocol)
        del bundle
        gc.collect()
        print(f"wrote {path.name}: splits {sizes}, dims {MOSEI_DIMS}, seq {SEQ_LEN}, protocol {args.protocol}, "
              f"{path.stat().st_size / 2**30:.2f} GiB in {time.perf_counter() - start:.1f} s")
        first = _run_child(path, cache_dir, touch=False)
        cached = _run_child(path, cache_dir, touch=True)
        ratio = first["seconds"] / max(cached["seconds"], 1e-9)
        print(f"first load (unpickle + convert to cache): {first['seconds']:8.2f} s   "
              f"peak RSS {first['peak_rss_mib']:8.0f} MiB")
        print(f"cached load (np.load mmap_mode='r'):      {cached['seconds']:8.2f} s   "
              f"peak RSS {cached['peak_rss_mib']:8.0f} MiB")
        print(f"one pass over all cached features:        {cached['touch_seconds']:8.2f} s   "
              f"peak RSS {cached['touched_rss_mib']:8.0f} MiB (mapped file pages, shared with the page cache)")
        print(f"ratio first / cached load: {ratio:.0f}x")
        if args.keep:
            print(f"kept {workdir}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
