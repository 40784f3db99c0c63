"""Run the torch paths on a CUDA device and compare them with the CPU; prints one summary table.

    python benchmarks/cuda_check.py                 # on a machine with a GPU
    python benchmarks/cuda_check.py --device cpu --image-size 16   # a quick dry run of the same code

Checks (each prints its wall time and a number that must be small, or "ok"):
1. training: a tiny MLP for a few hundred steps on the device (two deltas), loss finite and falling;
2. samplers: every sampler with the exact two-delta denoiser from the same seeds on the device and
   on the CPU (same per-sample noise: it is drawn on the CPU), max |x_device - x_cpu|; and with the
   trained network on the device, all samples finite;
3. measurement on the exact denoiser (torch port, float64): the central branch of a 2-D mixture
   followed on the device and on the CPU, |t_c difference|;
4. a 64x64x3 U-Net (random weights, float32, EDM-preconditioned as trained U-Nets are) on the device: top-2 eigenvalues of sym(J)/beta by
   matrix-free Lanczos (d = 12288: no dense reference), checked by their residual bound
   |A q - theta q| / max(1, |theta|) < 1e-2, with the peak device memory; and three damped
   Newton-Krylov steps towards the drift's fixed point from a random state (the residual
   max|b|/beta must fall; a random network's drift need not have a fixed point nearby).
5. ``--model``: your own model through ``--model``'s loader: a randomly initialised CIFAR-sized
   diffusers UNet2DModel (the DDPM CIFAR-10 layout, 35.7 M parameters, with attention; built locally,
   saved and loaded back with :func:`symbreak.experiments.models.user.load_model`): sampling throughput of
   symbreak's DDIM against diffusers' own DDIM loop (DDIMScheduler.step on the same UNet, device and
   noise; target overhead <= 5 %), top-2 eigenvalues of sym(J)/beta by Lanczos, and the peak memory.
   ``--small`` swaps in a tiny UNet (CPU-sized, used by the tests).
6. the exact route (``symbreak critical-time --method exact``) of a synthetic float32 array
   (benchmarks/exact_route.py's two clusters with a planted covariance; 5000 x 3072 on a GPU, 400 x 256
   for a CPU dry run): the torch drift on the device against theory's numpy drift on the CPU, both
   times, the speed-up and |t_c difference| (float32 data: both take single-precision Newton solves, and a
   closest approach's time is fixed only to about the square root of the margin's error, so < 1e-6).
   ``--exact`` runs only this check.
Without a CUDA device (and without --device cpu) it prints "no CUDA device" and exits 0.

    python benchmarks/cuda_check.py --model                  # on a GPU: CIFAR-sized UNet, batch 256
    python benchmarks/cuda_check.py --device cpu --model --small
    python benchmarks/cuda_check.py --exact                  # on a GPU: the exact route only, 5000 x 3072
    python benchmarks/cuda_check.py --device cpu --exact     # its CPU dry run, 400 x 256
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from symbreak.analysis.critical import dataset_critical_times
from symbreak.analysis.datasets import load_dataset
from symbreak.experiments.measure.branch import follow_central_branch
from symbreak.experiments.measure.drift import LearnedDrift
from symbreak.experiments.measure.exact_drift import torch_drift
from symbreak.experiments.measure.fixed_points import newton_fixed_point
from symbreak.experiments.measure.spectrum import lanczos
from symbreak.experiments.models.denoisers import ExactDenoiser, NetworkDenoiser
from symbreak.experiments.models.networks import EDMPreconditioned, UNetConfig, build_network
from symbreak.experiments.models.oracle import TorchExactDenoiser
from symbreak.experiments.models.training import default_train_config, load_or_train_model
from symbreak.experiments.sampling.grids import uniform_grid
from symbreak.experiments.sampling.samplers import SAMPLERS
from symbreak.experiments.sampling.seeds import per_sample_noise
from symbreak.theory import GaussianMixture, VPLinear

SCHEDULE = VPLinear()


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def check_training(device: torch.device, steps: int, cache: str) -> tuple[dict, NetworkDenoiser]:
    data = load_dataset("two-deltas")
    config = replace(default_train_config(data), steps=steps)
    trained, seconds = timed(lambda: load_or_train_model(data, SCHEDULE, config, device=str(device), retrain=True,
                                                         cache_dir=cache))
    ok = math.isfinite(trained.final_loss) and trained.final_loss < 1.0
    return {"check": "train MLP (two deltas)", "seconds": seconds, "value": trained.final_loss,
            "what": f"final loss after {steps} steps", "ok": ok}, trained.denoiser


def check_samplers(device: torch.device, network: NetworkDenoiser, n: int = 256, n_steps: int = 50) -> list[dict]:
    exact = ExactDenoiser(load_dataset("two-deltas").model, SCHEDULE)
    seeds = list(range(n))
    grid = uniform_grid(SCHEDULE, SCHEDULE.T, n_steps)
    rows = []
    for name, sampler in SAMPLERS.items():
        opts = {"eta": 1.0} if name == "ddim" else {}
        x0 = per_sample_noise(seeds, (1,))
        (on_dev, seconds) = timed(lambda: sampler(exact, x0.to(device), grid, seeds=seeds, **opts).x)
        on_cpu = sampler(exact, x0, grid, seeds=seeds, **opts).x
        diff = float((on_dev.cpu() - on_cpu).abs().max())
        net = sampler(network, x0.to(device), grid, seeds=seeds, **opts).x
        rows.append({"check": f"sampler {name}", "seconds": seconds, "value": diff,
                     "what": "max |x_device - x_cpu| (exact denoiser)",
                     "ok": diff < 1e-8 and bool(torch.isfinite(net).all())})
    return rows


def check_branch(device: torch.device) -> dict:
    model = GaussianMixture([0.25] * 4, [[1, 0], [0, 1], [-1, 0], [0, -1]], [0.01 * np.eye(2)] * 4)
    kw = {"n_points": 21, "t_range": (0.1, 1.0), "k": 2}
    on_dev, seconds = timed(lambda: follow_central_branch(TorchExactDenoiser(model, SCHEDULE, device=device), **kw))
    on_cpu = follow_central_branch(TorchExactDenoiser(model, SCHEDULE), **kw)
    diff = abs(on_dev.t_c - on_cpu.t_c)
    return {"check": "central branch (exact, torch)", "seconds": seconds, "value": diff,
            "what": "|t_c device - t_c cpu|", "ok": diff < 1e-10}


def check_unet(device: torch.device, size: int, max_iter: int) -> list[dict]:
    torch.manual_seed(0)
    levels = (1, 2, 2, 2) if size >= 32 else (1, 2)
    inner = build_network(UNetConfig((3, size, size), base_channels=32, channel_mult=levels))
    torch.nn.init.normal_(inner.conv_out.weight, std=0.02)
    net = EDMPreconditioned(inner, SCHEDULE, sigma_data=0.5)
    denoiser = NetworkDenoiser(net.to(device).eval().requires_grad_(False), SCHEDULE, (3, size, size))
    drift_t = LearnedDrift(denoiser, 0.3)
    x = torch.randn(drift_t.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    res, seconds = timed(lambda: lanczos(drift_t.sym_matvec(drift_t.linearise(x)), drift_t.dim, k=2,
                                         max_iter=max_iter, tol=1e-6, device=device))
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    rel_res = float(np.max(res.residuals / np.maximum(1.0, np.abs(res.eigenvalues))))
    with torch.no_grad():
        start_res = float(drift_t(x[None]).abs().max()) / drift_t.beta
    sol, newton_seconds = timed(lambda: newton_fixed_point(drift_t, x, method="lanczos", max_iter=3))
    name = f"U-Net {size}x{size}x3 (d = {drift_t.dim})"
    return [{"check": f"{name} Lanczos", "seconds": seconds, "value": rel_res,
             "what": f"residual bound, top-2 = {np.round(res.eigenvalues, 4).tolist()}, {res.n_iter} iters, "
                     f"peak memory {memory:.2f} GiB",
             "ok": bool(np.isfinite(res.eigenvalues).all()) and rel_res < 1e-2},
            {"check": f"{name} Newton-Krylov", "seconds": newton_seconds, "value": sol.residual,
             "what": f"max|b|/beta after {sol.iterations} steps, from {start_res:.3g}",
             "ok": sol.residual < start_res}]


CIFAR_UNET = {"sample_size": 32, "in_channels": 3, "out_channels": 3, "block_out_channels": (128, 256, 256, 256),
              "layers_per_block": 2, "down_block_types": ("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
              "up_block_types": ("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D")}
SMALL_UNET = {"sample_size": 8, "in_channels": 3, "out_channels": 3, "block_out_channels": (8, 16), "layers_per_block": 1,
              "norm_num_groups": 4, "attention_head_dim": 8, "down_block_types": ("DownBlock2D", "AttnDownBlock2D"),
              "up_block_types": ("AttnUpBlock2D", "UpBlock2D")}


def _diffusers_ddim(unet, scheduler_config: dict, x: torch.Tensor, n_steps: int) -> torch.Tensor:
    """diffusers' own DDIM loop (DDIMPipeline's body) on the raw UNet: eps = unet(x, k), scheduler.step."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config(scheduler_config, clip_sample=False, set_alpha_to_one=True)
    scheduler.set_timesteps(n_steps)
    with torch.no_grad():
        for k in scheduler.timesteps:
            x = scheduler.step(unet(x, k).sample, k, x, eta=0.0).prev_sample
    return x


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_model(device: torch.device, small: bool, batch: int, n_steps: int, max_iter: int) -> list[dict]:
    from diffusers import DDPMScheduler, UNet2DModel

    from symbreak.experiments.models.user import load_model
    from symbreak.experiments.sampling.grids import discrete_grid
    from symbreak.experiments.sampling.samplers import get_sampler

    torch.manual_seed(0)
    unet = UNet2DModel(**(SMALL_UNET if small else CIFAR_UNET))
    params = sum(p.numel() for p in unet.parameters()) / 1e6
    with tempfile.TemporaryDirectory() as root:
        unet.save_pretrained(f"{root}/unet")
        scheduler = DDPMScheduler()
        scheduler.save_pretrained(f"{root}/scheduler")
        denoiser = load_model(root, device=device, max_batch=batch)
    unet = denoiser.net.unet
    x = torch.randn(batch, *denoiser.shape, generator=torch.Generator().manual_seed(0)).to(device)
    grid = discrete_grid(denoiser.schedule, n_steps)
    ddim = get_sampler("ddim")
    for _ in range(2):  # warm-up, then the timed runs
        _sync(device), ddim(denoiser, x[:2], grid), _diffusers_ddim(unet, scheduler.config, x[:2], n_steps)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    ours, t_ours = timed(lambda: (ddim(denoiser, x, grid).x, _sync(device))[0])
    theirs, t_theirs = timed(lambda: (_diffusers_ddim(unet, scheduler.config, x, n_steps), _sync(device))[0])
    gap = float((ours.float() - theirs).abs().max())
    drift_t = LearnedDrift(denoiser, float(denoiser.schedule.t_of_step(400)))
    point = torch.randn(drift_t.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).to(device)
    res, t_lanczos = timed(lambda: lanczos(drift_t.sym_matvec(drift_t.linearise(point)), drift_t.dim, k=2,
                                           max_iter=max_iter, tol=1e-6, device=device))
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    overhead = t_ours / t_theirs - 1.0
    name = f"--model UNet2DModel {params:.2f} M, {denoiser.shape}"
    return [{"check": f"{name} DDIM-{n_steps} x{batch}", "seconds": t_ours, "value": overhead,
             "what": f"overhead vs diffusers' DDIM loop ({t_theirs:.3f} s, {batch * n_steps / t_ours:.1f} vs "
                     f"{batch * n_steps / t_theirs:.1f} images*steps/s), max |x - x_diffusers| {gap:.2g}",
             "ok": gap < 1e-3 and (small or overhead <= 0.05)},
            {"check": f"{name} Lanczos top-2", "seconds": t_lanczos, "value": float(res.residuals.max()),
             "what": f"residual, top-2 = {np.round(res.eigenvalues, 4).tolist()}, {res.n_iter} iters, "
                     f"peak memory {memory:.2f} GiB", "ok": bool(np.isfinite(res.eigenvalues).all())}]


def _write_synthetic(path: Path, n: int, d: int, seed: int) -> None:
    """benchmarks/exact_route.py's synthetic float32 array (that script is not a package: loaded by path)."""
    spec = importlib.util.spec_from_file_location("exact_route", Path(__file__).with_name("exact_route.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_synthetic(path, n, d, seed)


def check_exact_route(device: torch.device, n: int, d: int, seed: int = 0) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.npy"
        _write_synthetic(path, n, d, seed)
        data = load_dataset(str(path), scale="none")
        ours, seconds = timed(lambda: dataset_critical_times(data, SCHEDULE, "exact", drift=torch_drift(device)))
        ref, cpu_seconds = timed(lambda: dataset_critical_times(data, SCHEDULE, "exact"))
    diff = abs(ours.t_c - ref.t_c) if None not in (ours.t_c, ref.t_c) else math.inf
    return {"check": f"exact route {n}x{d} float32, torch drift", "seconds": seconds, "value": diff,
            "what": f"|t_c device - t_c numpy CPU|: t_c {ours.t_c} ({ours.kind}) vs {ref.t_c} ({ref.kind}); "
                    f"numpy on the CPU {cpu_seconds:.2f} s, {cpu_seconds / seconds:.2f}x",
            "ok": diff < 1e-6 and ours.kind == ref.kind}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (a dry run of the same code)")
    parser.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    parser.add_argument("--image-size", type=int, default=64, help="U-Net image size (default 64)")
    parser.add_argument("--lanczos-iter", type=int, default=100, help="Lanczos iterations at most (default 100)")
    parser.add_argument("--model", action="store_true", help="only the --model checks (5.)")
    parser.add_argument("--small", action="store_true", help="--model with a tiny UNet (CPU-sized)")
    parser.add_argument("--batch", type=int, default=256, help="--model: images per sampling batch (default 256)")
    parser.add_argument("--ddim-steps", type=int, default=20, help="--model: DDIM steps (default 20)")
    parser.add_argument("--exact", action="store_true", help="only the exact-route check (6.)")
    parser.add_argument("--exact-size", type=int, nargs=2, metavar=("N", "D"), default=None,
                        help="exact route: the array's size (default 5000 3072 on a GPU, 400 256 on the CPU)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"no CUDA device: torch {torch.__version__} sees no GPU, nothing to check (exit 0)")
        return 0
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {name}, torch {torch.__version__}")
    exact_size = args.exact_size or ((5000, 3072) if device.type == "cuda" else (400, 256))
    if args.model or args.small:
        rows = check_model(device, args.small, args.batch, args.ddim_steps, args.lanczos_iter)
    elif args.exact:
        rows = [check_exact_route(device, *exact_size)]
    else:
        with tempfile.TemporaryDirectory() as cache:
            train_row, network = check_training(device, args.steps, cache)
            rows = [train_row, *check_samplers(device, network), check_branch(device),
                    *check_unet(device, args.image_size, args.lanczos_iter), check_exact_route(device, *exact_size)]
    for r in rows:
        status = "ok  " if r["ok"] else "FAIL"
        print(f"{status} {r['check']:<42} {r['seconds']:8.2f} s  {r['value']:.3g}  ({r['what']})")
    failed = sum(not r["ok"] for r in rows)
    print(f"{len(rows) - failed}/{len(rows)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
