"""``symbreak sample``: draw samples of a dataset with one of the samplers, from a noise, late or
Gaussian late start, with per-sample seeds (:func:`symbreak.experiments.sampling.draw.draw_samples`);
writes FILE.npy and FILE.config.json (and, with ``--trajectory``, FILE.trajectory.npy), all or nothing.
Under ``torchrun`` the seeds are split across processes and the result equals a one-process run.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from symbreak.experiments.cli.args import (
    MOMENTS,
    add_cache_arguments,
    add_data_argument,
    add_device_argument,
    add_model_argument,
    add_out_argument,
    add_quick_argument,
    add_report_arguments,
    add_schedule_argument,
    add_seeds_argument,
    device_of,
    raw_help,
    report,
    show_progress,
)

DEFAULT_SEEDS = "0-63"
STARTS = ("noise", "late", "gls", "teleport")
DESCRIPTION = """\
Sample a dataset with DDPM ancestral, DDIM (eta), PNDM, DPM-Solver++ 2M / 3M (dpm2m, dpm3m), UniPC
(unipc), Euler-Maruyama (sde) or Heun (ode) on the probability-flow ODE. The grid runs from t_start
to 0 in --steps steps: uniform in t on continuous schedules; on the discrete ddpm schedule the
uniform skip from a start step (the noise start begins at step (n-1)*(N//n), e.g. 900 of 1000 for 10
steps, as in DDIM). Sample k always uses seed k's noise,
whatever the batch size.

examples:
  symbreak sample --data two-deltas --sampler ddpm --steps 100 --seeds 0-399 --out x.npy
  symbreak sample --data digits --sampler ddim --steps 5 --start gls --t-start tc --out x.npy
  symbreak sample --data gmm-2d --schedule ddpm --sampler unipc --steps 5 --start teleport --t-start tc --out x.npy
  symbreak sample --data digits --schedule ddpm --sampler pndm --steps 10 --start late --t-start step:600 --out x.npy
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = raw_help(subparsers, "sample", "draw samples with a sampler and a noise / late / GLS / teleport start",
                 DESCRIPTION)
    add_data_argument(p, "built-in name (two-deltas, gmm-2d, digits, ...), .npy/.npz file or image folder")
    p.add_argument("--sampler", required=True,
                   help="ddpm | ddim | pndm | dpm2m | dpm3m | unipc | sde | ode "
                        "(symbreak.experiments.sampling.samplers.SAMPLERS)")
    p.add_argument("--steps", type=int, required=True, help="number of steps from t_start to 0 (>= 1)")
    p.add_argument("--start", default=None, choices=list(STARTS),
                   help="noise (default) | late | gls | teleport (the noise start carried to t_start by the "
                        "probability-flow ODE of the data's Gaussian, Wang & Vastola 2024)")
    p.add_argument("--t-start", default=None,
                   help="start time for late/gls/teleport: a number in (0, T], step:K (discrete schedule) or tc "
                        "(the data's critical time, Gaussian approximation)")
    add_seeds_argument(p, DEFAULT_SEEDS)
    add_out_argument(p, "output FILE.npy (samples, shape (N, *sample shape))", required=True)
    p.add_argument("--init", default=None, help="start from the states in this .npy file (one row per seed)")
    add_schedule_argument(p)
    p.add_argument("--denoiser", default=None, choices=["exact", "network"],
                   help="exact (the data model's posterior mean, or the finite-data one) | network; "
                        "default exact when the data have an exact model, else network")
    add_model_argument(p)
    add_device_argument(p)
    p.add_argument("--trajectory", action="store_true", help="also save the states at every grid time")
    p.add_argument("--eta", type=float, default=None, help="ddim only: 0 deterministic (default) ... 1 (DDPM)")
    p.add_argument("--variance", default=None, choices=["posterior", "beta"],
                   help="ddpm only: posterior (default) | beta")
    p.add_argument("--moments", default=None, choices=list(MOMENTS),
                   help="gls only: analytic (default) | empirical")
    p.add_argument("--covariance", default=None, choices=["lowrank", "diagonal"],
                   help="gls only: lowrank (default; the full covariance for d <= 1024, else the top eigenpairs plus "
                        "an isotropic rest) | diagonal (per-pixel variances only)")
    p.add_argument("--batch-size", type=int, default=512,
                   help="samples per sampler call: sample k keeps its own noise whatever the batch size; results "
                        "agree across batch sizes to float round-off (about 1e-6 for networks), not bit for bit")
    add_cache_arguments(p)
    add_quick_argument(p, "network only: the small network of Settings.quick()")
    add_report_arguments(p)
    p.set_defaults(run=run)


def _output_names(out: Path) -> tuple[str, str, str]:
    """FILE.npy, FILE.config.json, FILE.trajectory.npy."""
    from symbreak.analysis.io import sidecar_path

    return out.name, sidecar_path(out).name, out.stem + ".trajectory.npy"


def _check_args(args: argparse.Namespace) -> None:
    """The checks that need no data or model, so bad flags fail before any work."""
    from symbreak.experiments.output import check_outputs
    from symbreak.experiments.sampling.draw import check_steps

    if args.steps < 1:
        raise ValueError(f"--steps: must be >= 1, got {args.steps}")
    check_steps(args.steps)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size: must be >= 1, got {args.batch_size}")
    if Path(args.out).suffix != ".npy":
        raise ValueError(f"--out: expected a path ending in .npy, got {args.out!r}")
    if Path(args.out).is_dir():
        raise ValueError(f"--out: {args.out} is a folder; give a FILE.npy path")
    check_outputs(Path(args.out).absolute().parent, _output_names(Path(args.out)))
    if args.moments is not None and args.start != "gls":
        raise ValueError("--moments: chooses the Gaussian of the gls start; use it with --start gls")
    if args.covariance is not None and args.start != "gls":
        raise ValueError("--covariance: chooses the Gaussian of the gls start; use it with --start gls")
    if args.retrain and args.denoiser == "exact":
        raise ValueError("--retrain: the exact denoiser is not trained; drop --retrain or use --denoiser network")
    if args.init is not None and args.start is not None:
        raise ValueError("--init: gives the start states itself; drop --start (use --t-start for their time)")
    if args.start == "noise" and args.t_start is not None:
        raise ValueError("--t-start: the noise start begins at T; use --start late or gls to start later")
    if args.start in ("late", "gls", "teleport") and args.t_start is None:
        raise ValueError(f"--t-start: the {args.start} start needs a start time (a number, step:K or tc)")


def _denoiser(args: argparse.Namespace, dataset, schedule):
    """(kind, denoiser, model provenance or None): the exact posterior mean, or the cached network (trained
    when missing) with its cache key and weights hash."""
    from symbreak.experiments.models.denoisers import ExactDenoiser

    kind = args.denoiser or ("exact" if dataset.model is not None else "network")
    if kind == "exact":
        if args.retrain:
            raise ValueError("--retrain: the exact denoiser is not trained; drop --retrain or use --denoiser network")
        model = dataset.model if dataset.model is not None else dataset.empirical()
        return kind, ExactDenoiser(model, schedule, dataset.shape), None
    from symbreak.experiments.cli.args import network_recipe
    from symbreak.experiments.models import training

    extra = {k: v for k, v in (("cache_dir", args.cache_dir), ("progress", show_progress(args))) if v}
    config = network_recipe(dataset, quick=True) if args.quick else None
    denoiser = training.load_or_train(dataset, schedule, config, device=device_of(args), retrain=args.retrain,
                                      **extra)
    return kind, denoiser, training.cached_provenance(dataset, schedule, config, cache_dir=args.cache_dir)


def _user_model(args: argparse.Namespace, device):
    """The ``--model`` (None without it), its network calls chunked at ``--batch-size``."""
    if args.model is None:
        return None
    if args.denoiser is not None or args.retrain:
        raise ValueError("--model: brings its own denoiser; drop --denoiser and --retrain")
    from symbreak.experiments.models.user import open_model

    return open_model(args.model, device=device, max_batch=args.batch_size)


def _critical_time(dataset, schedule):
    """t_c of the data's Gaussian approximation (:func:`symbreak.experiments.paper.setup.gaussian_tc` on
    the whole data set), computed only when ``--t-start tc`` asks for it."""
    def compute() -> float:
        from types import SimpleNamespace

        from symbreak.experiments.paper.setup import gaussian_tc

        times = gaussian_tc(SimpleNamespace(train=dataset, schedule=schedule))  # it reads only these two
        if times.t_c is None:
            raise ValueError(f"--t-start: 'tc': {times.absent.get('critical', 'no critical time on this schedule')}")
        return float(times.t_c)
    return compute


def _init_states(path: str, seeds: list[int], shape: tuple[int, ...]):
    import numpy as np

    from symbreak.analysis.inputs import check_exists, read_npy

    if check_exists(path, "--init").suffix.lower() != ".npy":
        raise ValueError(f"--init: {path}: expected a .npy file of start states")
    init = read_npy(path)
    if init.shape != (len(seeds), *shape):
        raise ValueError(f"--init: {path} has shape {init.shape}, expected {(len(seeds), *shape)} "
                         f"(one state per seed, sample shape {shape})")
    if not np.isfinite(init).all():
        raise ValueError(f"--init: {path} contains NaN or infinite values")
    return {s: row for s, row in zip(seeds, init.astype(np.float64))}


def run(args: argparse.Namespace) -> int:
    from symbreak.analysis.datasets import load_dataset
    from symbreak.analysis.io import provenance
    from symbreak.experiments.models.training import check_cache_dir
    from symbreak.experiments.runtime.distributed import init_distributed, map_seeds, resolve_device
    from symbreak.experiments.sampling.grids import default_grid
    from symbreak.experiments.sampling.samplers import get_sampler
    from symbreak.experiments.sampling.seeds import parse_seeds
    from symbreak.experiments.sampling.starts import parse_t_start
    from symbreak.theory import get_schedule

    _check_args(args)
    if args.denoiser != "exact":
        check_cache_dir(args.cache_dir)
    spec = args.seeds or DEFAULT_SEEDS
    seeds = parse_seeds(spec)
    sampler = get_sampler(args.sampler)
    options = sampler.resolve_options({k: v for k, v in (("eta", args.eta), ("variance", args.variance))
                                       if v is not None})
    ctx = init_distributed(device_of(args))
    if ctx.active and args.trajectory:
        raise ValueError("--trajectory: not supported under torchrun; run it in one process")
    device = resolve_device(device_of(args), ctx)
    user = _user_model(args, device)
    schedule = get_schedule(args.schedule) if user is None else user.denoiser.schedule
    dataset = load_dataset(args.data)
    if user is not None:
        from symbreak.experiments.paper.setup import in_model_range

        dataset = in_model_range(dataset, user)
    t_start = None if args.t_start is None else parse_t_start(
        args.t_start, schedule, critical_time=_critical_time(dataset, schedule))
    grid = default_grid(schedule, args.steps, t_start)
    init = _init_states(args.init, seeds, dataset.shape) if args.init is not None else None
    denoiser_kind, denoiser, model = ("model", user.denoiser, None) if user is not None else _denoiser(
        args, dataset, schedule)
    draw = _Draw(args, dataset, denoiser, sampler, options, grid, t_start, init)
    samples = map_seeds(draw, seeds, ctx)
    if not ctx.is_main:
        return 0
    config = {
        "command": "sample", "data": dataset.config, "schedule": schedule.config(),
        "sampler": sampler.name, "options": options, "steps": args.steps, "nfe_per_batch": draw.nfe,
        "start": draw.start, "t_start": float(grid[0]), "t_grid": grid.tolist(),
        "seeds": {"spec": spec, "count": len(seeds), "list": seeds},
        "denoiser": denoiser_kind, "device": str(device), "world_size": ctx.world_size,
        "batch_size": args.batch_size, "moments": args.moments, "covariance": args.covariance, "init": args.init,
        "model": None if user is None else user.config}
    config = provenance(config, [dataset.config.get("path"), args.init], model)
    config["output"] = _write(Path(args.out), samples, draw.trajectories if args.trajectory else None, config)
    report(args, config, f"wrote {args.out} ({samples.shape[0]} samples, {sampler.name}, {args.steps} steps "
                         f"from t = {float(grid[0]):.6g})")
    return 0


class _Draw:
    """Samples for a list of seeds: :func:`~symbreak.experiments.sampling.draw.draw_samples` for the
    noise, late and GLS starts; the sampler called batch by batch here only for what draw_samples
    does not offer (start states from ``--init``, the ``--trajectory``)."""

    def __init__(self, args, dataset, denoiser, sampler, options: dict, grid, t_start, init) -> None:
        self.args, self.dataset, self.denoiser, self.sampler = args, dataset, denoiser, sampler
        self.options, self.grid, self.t_start, self.init = options, grid, t_start, init
        self.nfe, self.start, self.gaussian, self.trajectories = None, None, None, []

    def __call__(self, local: list[int]):
        import numpy as np

        from symbreak.experiments.sampling.draw import Method, draw_samples

        source = self._source()
        if self.init is not None or self.args.trajectory:
            if source is not None:
                self.gaussian = source.at(float(self.grid[0]), self.denoiser.schedule)
            return np.concatenate([self._batch(local[i:i + self.args.batch_size])
                                   for i in range(0, len(local), self.args.batch_size)])
        method = Method(self.sampler.name, self.sampler.name, self.args.steps, self.options)
        drawn = draw_samples(self.denoiser, method, local, start=self.args.start or "noise", t_start=self.t_start,
                             gls=source, batch_size=self.args.batch_size)
        self.nfe, self.start = drawn.nfe, drawn.config["start"]
        return drawn.x.reshape(len(local), *self.dataset.shape).astype(np.float32)

    def _source(self):
        """The Gaussian of a gls or teleport start (GLSSource / TeleportSource of the data), else None."""
        import numpy as np

        from symbreak.experiments.sampling.draw import GLSSource
        from symbreak.experiments.sampling.starts import TeleportSource

        if self.args.start == "gls":
            return GLSSource(self.dataset.x, self.args.moments or "analytic",
                             covariance=self.args.covariance or "lowrank")
        if self.args.start == "teleport":
            return TeleportSource(np.asarray(self.dataset.x, dtype=np.float64))
        return None

    def _batch(self, chunk: list[int]):
        import numpy as np
        import torch

        from symbreak.experiments.models.oracle import denoiser_device
        from symbreak.experiments.sampling.starts import start_state

        t0, device = float(self.grid[0]), denoiser_device(self.denoiser)
        if self.init is not None:
            x = torch.as_tensor(np.stack([self.init[s] for s in chunk]), device=device)
            self.start = {"kind": "init", "t_start": t0, "path": str(Path(self.args.init).resolve())}
        else:
            state = start_state(self.args.start or "noise", chunk, self.dataset.shape, self.denoiser.schedule, t0,
                                gaussian=self.gaussian, device=device)
            x, self.start = state.x, state.config
        result = self.sampler(self.denoiser, x, self.grid, seeds=chunk, return_trajectory=self.args.trajectory,
                              **self.options)
        self.nfe = result.nfe
        if self.args.trajectory:
            self.trajectories.append(result.trajectory.numpy().astype(np.float32))
        return result.x.cpu().numpy().astype(np.float32)


def _write(out: Path, samples, trajectories: list | None, config: dict) -> dict:
    """FILE.npy, FILE.config.json and (when drawn) FILE.trajectory.npy, all at once (a FILE.trajectory.npy
    of an earlier run is removed in the same commit when none is drawn); returns the output note."""
    import numpy as np

    from symbreak.analysis.io import dumps, sidecar_path, staged_dir

    stale = _output_names(out)[2]
    trajectory_path = None if trajectories is None else out.with_name(stale)
    note = {"path": str(out), "shape": list(samples.shape), "dtype": "float32",
            "trajectory": None if trajectory_path is None else str(trajectory_path)}
    with staged_dir(out.absolute().parent, remove=() if trajectory_path is not None else (stale,)) as tmp:
        np.save(tmp / out.name, samples)
        if trajectory_path is not None:
            np.save(tmp / trajectory_path.name, np.concatenate(trajectories, axis=1))
        (tmp / sidecar_path(out).name).write_text(dumps({**config, "output": note}) + "\n")
    return note
