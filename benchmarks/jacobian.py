"""The learned drift's derivatives (experiments.measure) against the obvious alternatives, in one run.

- Dense J of B points: ``vmap(jacrev(b))`` (what ``LearnedDrift.jacobian`` does) against the loop of
  d reverse passes over the batch (row i of every J = gradient of sum_b b_i).
- Matrix-free J v at a point: the vjp of the pullback u -> J^T u, set up once per point (what
  ``LearnedDrift.linearise`` does), against forward mode ``torch.func.jvp``, which repeats the forward
  pass for every product (Lanczos and GMRES need tens of products per point).

Networks: the digits-sized MLP (d = 64, EDM-preconditioned) and a small U-Net on 3 x 16 x 16 images,
randomly initialised (timings do not depend on training), one CPU thread unless ``--threads``.

    python benchmarks/jacobian.py
"""
from __future__ import annotations

import argparse

import torch
from posterior import best_times

from symbreak.experiments.measure.drift import LearnedDrift
from symbreak.experiments.models.denoisers import NetworkDenoiser
from symbreak.experiments.models.networks import EDMPreconditioned, MLPConfig, UNetConfig, build_network
from symbreak.theory import VPLinear

SCHEDULE = VPLinear()


def random_drift(config, sigma_data: float, seed: int) -> LearnedDrift:
    """The drift at t = 0.4 of a network with every parameter drawn at random (output layer too)."""
    torch.manual_seed(seed)
    net = EDMPreconditioned(build_network(config), SCHEDULE, sigma_data)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(std=0.05)
    shape = (config.dim,) if isinstance(config, MLPConfig) else config.image_shape
    return LearnedDrift(NetworkDenoiser(net.eval().requires_grad_(False), SCHEDULE, shape), 0.4)


def rowwise_jacobian(drift_t: LearnedDrift, x: torch.Tensor) -> torch.Tensor:
    """The baseline: d reverse passes through the whole batch."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        b = drift_t(x)
        rows = [torch.autograd.grad(b[:, i].sum(), x, retain_graph=True)[0] for i in range(drift_t.dim)]
    return torch.stack(rows, dim=1)


def forward_mode_jvp(drift_t: LearnedDrift, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.func.jvp(drift_t.point, (x,), (v,))[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--B", type=int, default=32, help="points per dense Jacobian batch")
    parser.add_argument("--products", type=int, default=40, help="J v products per point (one Lanczos run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    cases = {"mlp d=64": (MLPConfig(dim=64, width=256, depth=2), True),
             "unet 3x16x16": (UNetConfig((3, 16, 16), base_channels=32, channel_mult=(1, 2)), False)}
    for name, (config, dense) in cases.items():
        drift_t = random_drift(config, 0.85, args.seed)
        x = torch.randn(args.B, drift_t.dim, dtype=torch.float64, generator=gen)
        if dense:
            ours, base = drift_t.jacobian(x), rowwise_jacobian(drift_t, x)
            t_ours, t_base = best_times([lambda: drift_t.jacobian(x), lambda: rowwise_jacobian(drift_t, x)],
                                        args.repeats)
            print(f"{name}: dense J of {args.B} points  vmap(jacrev) {t_ours * 1e3:8.1f} ms   row loop "
                  f"{t_base * 1e3:8.1f} ms   speed-up {t_base / t_ours:5.2f}x   max |diff| "
                  f"{float((ours - base).abs().max()):.1e}")
        vs = torch.randn(args.products, drift_t.dim, dtype=torch.float64, generator=gen)
        point = x[0]

        def pullback_products() -> list[torch.Tensor]:
            lin = drift_t.linearise(point)
            return [lin.jvp(v) for v in vs]

        def forward_products() -> list[torch.Tensor]:
            return [forward_mode_jvp(drift_t, point, v) for v in vs]
        diff = max(float((a - b).abs().max()) for a, b in zip(pullback_products(), forward_products()))
        t_ours, t_base = best_times([pullback_products, forward_products], args.repeats)
        print(f"{name}: {args.products} J v products  pullback {t_ours * 1e3:8.1f} ms   forward mode "
              f"{t_base * 1e3:8.1f} ms   speed-up {t_base / t_ours:5.2f}x   max |diff| {diff:.1e}")


if __name__ == "__main__":
    main()
