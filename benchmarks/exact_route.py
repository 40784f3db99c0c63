"""Exact-route critical time at image scale: the matrix-free engine on float32 arrays against the dense route.

Builds a synthetic float32 array (N x d, default 5000 x 3072): two clusters +-m e_1 (coin flips) plus a
decaying planted covariance and isotropic noise, writes it as .npy and opens it memory-mapped. Then, in
one run:

* ours  -- ``dataset_critical_times(..., method="exact")`` on all N points (matrix-free for d > 256), in a
  subprocess whose peak resident memory is measured;
* dense -- the dense route (d x d Jacobian and full eigh per Newton step) on a size it can finish
  (``--dense-n`` x ``--dense-d``), timed against the matrix-free route on the same array;

and prints times, the ratio, the machine's load average, and memory over the array size: the peak
resident set (which counts the interpreter, the libraries and the memory-mapped pages read), the
interpreter and libraries' share before the run, and the growth during the run beyond the array's own
pages (the working memory). Targets: <= 60 s for 5000 x 3072 and <= 10 min for 50 000 x 3072 on
2 cores; peak <= 1.5x the array.

    python benchmarks/exact_route.py                       # 5000 x 3072
    python benchmarks/exact_route.py --n 50000             # the large case
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap


def write_synthetic(path: Path, n: int, d: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    u = np.linalg.qr(rng.standard_normal((d, 8)))[0].astype(np.float32)
    v = (0.5 * 0.7 ** np.arange(8)).astype(np.float32)
    x = open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    for start in range(0, n, 2048):
        m = min(2048, n - start)
        sign = np.where(rng.random(m) < 0.5, 1.0, -1.0).astype(np.float32)
        block = 0.05 * rng.standard_normal((m, d), dtype=np.float32) + (rng.standard_normal((m, 8), dtype=np.float32) * np.sqrt(v)) @ u.T
        block[:, 0] += 2.0 * sign
        x[start:start + m] = block
    x.flush()


def peak_rss() -> int:
    """This process's peak resident set in bytes: VmHWM (Linux; reset by exec, so the parent that wrote
    the array does not count), else ru_maxrss (which Linux carries across exec)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_ours(path: str, method: str) -> dict:
    from symbreak.analysis.critical import dataset_critical_times
    from symbreak.analysis.datasets import load_dataset

    base_rss = peak_rss()
    start = time.perf_counter()
    data = load_dataset(path, scale="none")
    r = dataset_critical_times(data, method=method)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "t_c": r.t_c, "kind": r.kind, "margin_c": r.margin_c,
            "events": len(r.events), "branch_points": int(len(r.exact.branch.t)), "status": r.exact.branch.status,
            "peak_rss": peak_rss(), "base_rss": base_rss}


def run_dense(path: str) -> dict:
    from symbreak.theory import EmpiricalData, VPLinear, critical_times

    x = np.load(path)
    start = time.perf_counter()
    ct = critical_times(EmpiricalData(x), VPLinear(), matrix_free=False, n=x.shape[0])
    return {"seconds": time.perf_counter() - start, "t_c": ct.t_c, "kind": ct.kind,
            "branch_points": int(len(ct.branch.t))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--d", type=int, default=3072)
    parser.add_argument("--dense-n", type=int, default=200, help="points of the dense-route comparison")
    parser.add_argument("--dense-d", type=int, default=768, help="dimension of the dense-route comparison")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path = args.child
        print(json.dumps(run_ours(path, "exact") if kind == "ours" else run_dense(path)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / "x.npy", Path(tmp) / "small.npy"
        write_synthetic(big, args.n, args.d, args.seed)
        write_synthetic(small, args.dense_n, args.dense_d, args.seed)
        child = [sys.executable, __file__, "--child"]
        ours = json.loads(subprocess.run(child + ["ours", str(big)], check=True, capture_output=True, text=True).stdout)
        mf_small = json.loads(subprocess.run(child + ["ours", str(small)], check=True, capture_output=True,
                                             text=True).stdout)
        dense = json.loads(subprocess.run(child + ["dense", str(small)], check=True, capture_output=True,
                                          text=True).stdout)
    size = args.n * args.d * 4
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())} on "
          f"{os.cpu_count()} CPUs")
    print(f"array {args.n} x {args.d} float32 = {size / 2**20:.0f} MiB")
    print(f"ours (matrix-free, all points): {ours['seconds']:.1f} s, t_c = {ours['t_c']} ({ours['kind']}, margin "
          f"{ours['margin_c']}), {ours['branch_points']} branch points, {ours['status']}")
    growth = (ours["peak_rss"] - ours["base_rss"]) / size
    print(f"memory / array: peak RSS {ours['peak_rss'] / size:.2f} (interpreter and libraries: "
          f"{ours['base_rss'] / size:.2f} before the run), growth {growth:.2f} (the array's pages 1.00, working "
          f"memory {growth - 1:.2f})")
    print(f"{args.dense_n} x {args.dense_d}: matrix-free {mf_small['seconds']:.2f} s (t_c {mf_small['t_c']}, "
          f"{mf_small['kind']}), dense {dense['seconds']:.2f} s (t_c {dense['t_c']}, {dense['kind']}): "
          f"dense / matrix-free = {dense['seconds'] / mf_small['seconds']:.2f}")


if __name__ == "__main__":
    main()
