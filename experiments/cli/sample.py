"""``symbreak sample``: draw samples of a dataset with one of the samplers, from a noise, late or
Gaussian late start, with per-sample seeds; writes FILE.npy and FILE.config.json (and, with
``--trajectory``, FILE.trajectory.npy), all or nothing. Under ``torchrun`` the seeds are split across
processes and the result equals a one-process run.
"""
from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """\
Sample a dataset with DDPM ancestral, DDIM (eta), PNDM, Euler-Maruyama (sde) or Heun (ode) on the
probability-flow ODE. The grid runs from t_start to 0 in --steps steps: uniform in t on continuous
schedules; on the discrete ddpm schedule the uniform skip from a start step (the noise start begins
at step (n-1)*(N//n), e.g. 900 of 1000 for 10 steps, as in DDIM). Sample k always uses seed k's noise,
whatever the batch size.

examples:
  symbreak sample --data two-deltas --sampler ddpm --steps 100 --seeds 0-399 --out x.npy
  symbreak sample --data digits --sampler ddim --steps 5 --start gls --t-start tc --out x.npy
  symbreak sample --data digits --schedule ddpm --sampler pndm --steps 10 --start late --t-start step:600 --out x.npy
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sample", help="draw samples with a sampler and a noise / late / GLS start",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True,
                   help="built-in name (two-deltas, gmm-2d, digits, ...), .npy/.npz file or image folder")
    p.add_argument("--sampler", required=True, help="ddpm | ddim | pndm | sde | ode")
    p.add_argument("--steps", type=int, required=True, help="number of steps from t_start to 0 (>= 1)")
    p.add_argument("--start", default=None, help="noise (default) | late | gls")
    p.add_argument("--t-start", default=None,
                   help="start time for late/gls: a number in (0, T], step:K (discrete schedule) or tc "
                        "(the data's critical time)")
    p.add_argument("--seeds", default="0-63", help="per-sample seeds, e.g. 0-999 or 1,5,7-9 (default 0-63)")
    p.add_argument("--out", required=True, help="output FILE.npy (samples, shape (N, *sample shape))")
    p.add_argument("--init", default=None, help="start from the states in this .npy file (one row per seed)")
    p.add_argument("--schedule", default="vp-linear", help="vp-linear (default) | vp-cosine | ddpm | ve")
    p.add_argument("--denoiser", default=None,
                   help="exact (the data model's posterior mean, or the finite-data one) | network; "
                        "default exact when the data have an exact model, else network")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--trajectory", action="store_true", help="also save the states at every grid time")
    p.add_argument("--eta", type=float, default=None, help="ddim only: 0 deterministic (default) ... 1 (DDPM)")
    p.add_argument("--variance", default=None, help="ddpm only: posterior (default) | beta")
    p.add_argument("--moments", default="analytic", help="gls only: analytic (default) | empirical")
    p.add_argument("--batch-size", type=int, default=512, help="samples per sampler call (does not change results)")
    p.add_argument("--retrain", action="store_true", help="network only: ignore the training cache")
    p.set_defaults(run=run)


def _check_args(args: argparse.Namespace) -> None:
    """The checks that need no data or model, so bad flags fail before any work."""
    if args.steps < 1:
        raise ValueError(f"--steps: must be >= 1, got {args.steps}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size: must be >= 1, got {args.batch_size}")
    if Path(args.out).suffix != ".npy":
        raise ValueError(f"--out: expected a path ending in .npy, got {args.out!r}")
    if args.denoiser not in (None, "exact", "network"):
        raise ValueError(f"--denoiser: expected exact or network, got {args.denoiser!r}")
    if args.init is not None and args.start is not None:
        raise ValueError("--init: gives the start states itself; drop --start (use --t-start for their time)")
    if args.start == "noise" and args.t_start is not None:
        raise ValueError("--t-start: the noise start begins at T; use --start late or gls to start later")
    if args.start in ("late", "gls") and args.t_start is None:
        raise ValueError(f"--t-start: the {args.start} start needs a start time (a number, step:K or tc)")


def _sampler_options(args: argparse.Namespace) -> dict:
    return {k: v for k, v in (("eta", args.eta), ("variance", args.variance)) if v is not None}


def _denoiser(args: argparse.Namespace, dataset, schedule):
    from symbreak.experiments.models.denoisers import ExactDenoiser

    kind = args.denoiser or ("exact" if dataset.model is not None else "network")
    if kind == "exact":
        model = dataset.model if dataset.model is not None else dataset.empirical()
        return kind, ExactDenoiser(model, schedule, dataset.shape)
    from symbreak.experiments.models.training import load_or_train

    return kind, load_or_train(dataset, schedule, device=args.device, retrain=args.retrain)


def _critical_time(dataset, schedule):
    """t_c of the data's Gaussian approximation (the centre loses stability along the top eigenvector),
    from the exact model's covariance when the data have one, else from the data's spectrum. Computed
    only when ``--t-start tc`` asks for it."""
    def compute() -> float:
        import numpy as np

        from symbreak.analysis.spectrum import covariance_spectrum
        from symbreak.theory.critical import gaussian_critical_times

        lam = (np.linalg.eigvalsh(dataset.model.cov) if dataset.model is not None
               else covariance_spectrum(dataset).lam)
        times = gaussian_critical_times(lam, schedule)
        if times.t_c is None:
            reason = times.absent.get("critical", "no critical time on this schedule")
            raise ValueError(f"--t-start: 'tc': {reason}")
        return float(times.t_c)
    return compute


def _init_states(path: str, seeds: list[int], shape: tuple[int, ...]):
    import numpy as np

    init = np.load(path, allow_pickle=False)
    if init.shape != (len(seeds), *shape):
        raise ValueError(f"--init: {path} has shape {init.shape}, expected {(len(seeds), *shape)} "
                         f"(one state per seed, sample shape {shape})")
    if not np.isfinite(init).all():
        raise ValueError(f"--init: {path} contains NaN or infinite values")
    return {s: row for s, row in zip(seeds, init.astype(np.float64))}


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from symbreak.analysis.datasets import load_dataset
    from symbreak.analysis.io import dumps, sidecar_path, staged_dir
    from symbreak.experiments.runtime.distributed import init_distributed, map_seeds, resolve_device
    from symbreak.experiments.sampling.grids import default_grid
    from symbreak.experiments.sampling.samplers import get_sampler
    from symbreak.experiments.sampling.seeds import parse_seeds
    from symbreak.experiments.sampling.starts import gls_gaussian, parse_t_start, start_state
    from symbreak.theory import get_schedule

    _check_args(args)
    seeds = parse_seeds(args.seeds)
    sampler = get_sampler(args.sampler)
    options = sampler.resolve_options(_sampler_options(args))
    kind = "init" if args.init is not None else (args.start or "noise")
    if kind not in ("init", "noise", "late", "gls"):
        raise ValueError(f"--start: expected noise, late or gls, got {kind!r}")
    if args.moments not in ("analytic", "empirical"):
        raise ValueError(f"--moments: expected analytic or empirical, got {args.moments!r}")
    ctx = init_distributed(args.device)
    if ctx.active and args.trajectory:
        raise ValueError("--trajectory: not supported under torchrun; run it in one process")
    schedule = get_schedule(args.schedule)
    device = resolve_device(args.device, ctx)
    dataset = load_dataset(args.data)
    t_start = None if args.t_start is None else parse_t_start(
        args.t_start, schedule, critical_time=_critical_time(dataset, schedule))
    grid = default_grid(schedule, args.steps, t_start)
    t0 = float(grid[0])
    init = _init_states(args.init, seeds, dataset.shape) if args.init is not None else None
    gaussian = gls_gaussian(dataset.x, t0, schedule, args.moments) if kind == "gls" else None

    denoiser_kind, denoiser = _denoiser(args, dataset, schedule)
    info: dict = {}
    trajectories: list = []

    def sample(local: list[int]):
        xs = []
        for i in range(0, len(local), args.batch_size):
            chunk = local[i:i + args.batch_size]
            if init is not None:
                x = torch.as_tensor(np.stack([init[s] for s in chunk]), device=device)
                info["start"] = {"kind": "init", "t_start": t0, "path": str(Path(args.init).resolve())}
            else:
                start = start_state(kind, chunk, dataset.shape, schedule, t0, gaussian=gaussian, device=device)
                x, info["start"] = start.x, start.config
            result = sampler(denoiser, x, grid, seeds=chunk, return_trajectory=args.trajectory, **options)
            info["nfe"] = result.nfe
            xs.append(result.x.cpu().numpy().astype(np.float32))
            if args.trajectory:
                trajectories.append(result.trajectory.numpy().astype(np.float32))
        return np.concatenate(xs, axis=0)

    samples = map_seeds(sample, seeds, ctx)
    if not ctx.is_main:
        return 0
    out = Path(args.out)
    trajectory_path = out.with_name(out.stem + ".trajectory.npy") if args.trajectory else None
    config = {
        "command": "sample", "data": dataset.config, "schedule": schedule.config(),
        "sampler": sampler.name, "options": options, "steps": args.steps, "nfe_per_batch": info.get("nfe"),
        "start": info.get("start"), "t_start": t0, "t_grid": grid.tolist(),
        "seeds": {"spec": args.seeds, "count": len(seeds), "list": seeds},
        "denoiser": denoiser_kind, "device": str(device), "world_size": ctx.world_size,
        "output": {"path": str(out), "shape": list(samples.shape), "dtype": "float32",
                   "trajectory": None if trajectory_path is None else str(trajectory_path)},
    }
    with staged_dir(out.parent) as tmp:
        np.save(tmp / out.name, samples)
        if trajectory_path is not None:
            np.save(tmp / trajectory_path.name, np.concatenate(trajectories, axis=1))
        (tmp / sidecar_path(out).name).write_text(dumps(config) + "\n")
    print(f"wrote {out} ({samples.shape[0]} samples, {sampler.name}, {args.steps} steps from t = {t0:.6g})")
    return 0
