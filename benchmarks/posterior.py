"""Exact empirical posterior mean against one float64 GEMM of the same shape.

The posterior mean of B queries over N points in d dims, E[y | x_t = x] = softmax_j(logits) y, needs
the B x N logits (one B x d @ d x N product) and their weighted sum of the points (a second product
of the same size). The target is at least half the speed of one such GEMM, i.e. our time <= 2x.

    python benchmarks/posterior.py                  # B=256, N=20000, d=3072
    python benchmarks/posterior.py --N 5000 --d 512 # quicker
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from symbreak.theory import EmpiricalData, VPLinear


def best_times(fns: list, repeats: int) -> list[float]:
    """The fastest of ``repeats`` runs of each function, run in turn (so that other work on the
    machine disturbs them alike)."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--B", type=int, default=256, help="queries")
    parser.add_argument("--N", type=int, default=20_000, help="data points")
    parser.add_argument("--d", type=int, default=3072, help="dimensions")
    parser.add_argument("--t", type=float, nargs="+", default=[0.9, 0.5], help="diffusion times (VP linear)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    y = rng.standard_normal((args.N, args.d))
    schedule = VPLinear()
    model = EmpiricalData(y)
    queries = {}
    for t in args.t:  # queries from the noised marginal: x = alpha y_j + sigma eps
        alpha, sigma = float(schedule.alpha(t)), float(schedule.sigma(t))
        queries[t] = alpha * y[rng.choice(args.N, args.B)] + sigma * rng.standard_normal((args.B, args.d))
    x_gemm = rng.standard_normal((args.B, args.d))
    fns = [lambda: np.matmul(x_gemm, y.T), lambda: np.matmul(np.matmul(x_gemm, y.T), y)]
    fns += [lambda t=t: model.posterior_mean(queries[t], t, schedule) for t in args.t]
    gemm, two, *ours = best_times(fns, args.repeats)
    flops = 2.0 * args.B * args.d * args.N
    print(f"B={args.B} N={args.N} d={args.d} float64, best of {args.repeats}: one GEMM (B x d @ d x N) "
          f"{gemm:.3f} s ({flops / gemm / 1e9:.1f} GFLOP/s); the two GEMMs a posterior mean needs "
          f"(logits, then weights @ points) {two:.3f} s")
    for t, ours_t in zip(args.t, ours):
        print(f"t={t:g} (alpha={float(schedule.alpha(t)):.3f}): posterior mean {ours_t:.3f} s = "
              f"{ours_t / gemm:.2f}x one GEMM ({gemm / ours_t:.0%} of GEMM speed, target >= 50%), "
              f"{ours_t / two:.2f}x the two GEMMs")


if __name__ == "__main__":
    main()
