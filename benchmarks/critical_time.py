"""Gaussian-route critical time on a large memory-mapped array against the naive dense route.

Builds a synthetic float32 array (default 50 000 x 3072) with a known covariance
    Sigma = U diag(v) U^T + noise I   (U: ``--rank`` random orthonormal directions, v decaying)
plus a random mean, writes it as .npy in chunks and opens it memory-mapped. Then, in one run:

* ours  -- ``covariance_spectrum`` (streaming block Lanczos) in a subprocess, whose peak resident
  memory is measured (it includes the memory-mapped pages it reads);
* naive -- ``np.linalg.eigvalsh(np.cov(X.T, bias=True))``;

and prints the times, the speed ratio, the relative error on Lambda and on alpha_c^2 =
sqrt(1 + Lambda^2) - Lambda (the Gaussian-approximation critical point, VP SDE), and peak memory
over the array size. Targets: >= 10x faster, <= 1e-4 relative error, peak <= 1.5x the array.

    python benchmarks/critical_time.py                    # the full size
    python benchmarks/critical_time.py --n 5000 --d 1024  # quicker
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap


def alpha_c2(lam_max: float) -> float:
    """alpha_c^2 = sqrt(1 + Lambda^2) - Lambda, written as 1 / (sqrt(1 + Lambda^2) + Lambda)."""
    return 1.0 / (math.sqrt(1.0 + lam_max * lam_max) + lam_max)


def planted_variances(rank: int) -> np.ndarray:
    return 20.0 * 0.7 ** np.arange(rank)


def write_synthetic(path: Path, n: int, d: int, rank: int, noise: float, seed: int) -> float:
    """Write the array in chunks; return the population Lambda = v_0 + noise."""
    rng = np.random.default_rng(seed)
    u = np.linalg.qr(rng.standard_normal((d, rank)))[0].astype(np.float32)
    v = planted_variances(rank)
    mean = rng.uniform(-0.5, 0.5, d).astype(np.float32)
    x = open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    step = 4096
    for start in range(0, n, step):
        m = min(step, n - start)
        z = rng.standard_normal((m, rank), dtype=np.float32) * np.sqrt(v).astype(np.float32)
        x[start:start + m] = mean + z @ u.T + np.float32(math.sqrt(noise)) * rng.standard_normal((m, d), dtype=np.float32)
    x.flush()
    del x
    return float(v[0] + noise)


def run_ours(path: str, k: int) -> dict:
    """The streaming route, as the toolkit runs it: load (finiteness/range check), then the spectrum."""
    from symbreak.analysis.datasets import load_dataset
    from symbreak.analysis.spectrum import covariance_spectrum

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    data = load_dataset(path)
    loaded = time.perf_counter()
    spec = covariance_spectrum(data.x, k=k)
    done = time.perf_counter()
    a2 = alpha_c2(spec.Lambda)
    return {"t_load": loaded - start, "t_spectrum": done - loaded, "Lambda": spec.Lambda, "alpha_c2": a2,
            "passes": spec.passes, "method": spec.method, "memmap": isinstance(data.x, np.memmap),
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "baseline_rss": baseline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50_000, help="samples")
    parser.add_argument("--d", type=int, default=3072, help="dimensions")
    parser.add_argument("--rank", type=int, default=16, help="planted directions")
    parser.add_argument("--noise", type=float, default=0.05, help="isotropic noise variance")
    parser.add_argument("--k", type=int, default=1, help="eigenpairs asked of our route (Lambda needs 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=None, help="where to write x.npy (default: a temporary folder)")
    parser.add_argument("--ours-only", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ours_only:
        print(json.dumps(run_ours(args.ours_only, args.k)))
        return

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "x.npy"
        start = time.perf_counter()
        lam_pop = write_synthetic(path, args.n, args.d, args.rank, args.noise, args.seed)
        size = args.n * args.d * 4
        print(f"array {args.n} x {args.d} float32 = {size / 2**20:.0f} MiB, written in "
              f"{time.perf_counter() - start:.1f} s; population Lambda = {lam_pop:.4f}")

        out = subprocess.run([sys.executable, __file__, "--ours-only", str(path), "--k", str(args.k)],
                             check=True, capture_output=True, text=True)
        ours = json.loads(out.stdout)

        x = np.load(path, mmap_mode="r")
        start = time.perf_counter()
        lam_naive = float(np.linalg.eigvalsh(np.cov(x.T, bias=True))[-1])
        t_naive = time.perf_counter() - start

    err = abs(ours["Lambda"] - lam_naive) / lam_naive
    err_a = abs(ours["alpha_c2"] - alpha_c2(lam_naive)) / alpha_c2(lam_naive)
    print(f"ours  ({ours['method']}, {ours['passes']} passes, memmap={ours['memmap']}): spectrum "
          f"{ours['t_spectrum']:.2f} s (+ {ours['t_load']:.2f} s load check)  Lambda = {ours['Lambda']:.8f}")
    print(f"naive (eigvalsh(np.cov(X.T))): {t_naive:.2f} s  Lambda = {lam_naive:.8f}")
    print(f"speed ratio naive / ours: {t_naive / ours['t_spectrum']:.1f}x spectrum only, "
          f"{t_naive / (ours['t_spectrum'] + ours['t_load']):.1f}x with the load check (target >= 10x)")
    print(f"relative error: Lambda {err:.2e}, alpha_c^2 {err_a:.2e} (target <= 1e-4); "
          f"alpha_c^2 = {ours['alpha_c2']:.8f}")
    print(f"peak memory of ours / array size: {ours['peak_rss'] / size:.2f} (target <= 1.5; it includes the "
          f"mapped pages read and {ours['baseline_rss'] / 2**20:.0f} MiB of interpreter and libraries)")


if __name__ == "__main__":
    main()
