"""Drawing samples in batches: one sampler with its options and number of steps, started from
N(0, I) at T (the paper's "vanilla" uniform skip), from N(0, I) at t_start (plain late start) or from
the Gaussian late start at t_start, with per-sample seeds. Nothing is written to disk unless
``save_to`` asks for it.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from symbreak.analysis.gls import GaussianStart
from symbreak.analysis.io import check_output_dir, dumps, sidecar_path, staged_dir
from symbreak.experiments.models.denoisers import Denoiser
from symbreak.experiments.models.oracle import denoiser_device
from symbreak.experiments.runtime.threads import cpu_threads
from symbreak.experiments.sampling.grids import SPACINGS, default_grid, spaced_grid
from symbreak.experiments.sampling.samplers import get_sampler
from symbreak.experiments.sampling.seeds import parse_seeds
from symbreak.experiments.sampling.starts import gls_gaussian, start_state
from symbreak.theory import Schedule
from symbreak.theory.checks import check_choice, check_int

Array = NDArray[np.float64]
CONTINUOUS_FULL_STEPS = 1000  # "all steps" on a continuous schedule: this many per unit of t / T
MAX_SAMPLING_STEPS = 100_000  # sampler steps per run (the paper's longest runs use 1000)


def step_of(schedule: Schedule, t: float | None) -> int | None:
    """The discrete step holding ``t`` (None for continuous schedules or t = None)."""
    return None if t is None or not schedule.discrete else int(schedule.step_of_t(float(t)))


def full_steps(schedule: Schedule, t_start: float | None) -> int:
    """Every step from t_start (T when None) to 0: step + 1 evaluations on a discrete schedule, else
    ``CONTINUOUS_FULL_STEPS`` per unit of t / T (at least one)."""
    t = schedule.T if t_start is None else float(t_start)
    if schedule.discrete:
        return int(schedule.step_of_t(t)) + 1
    return max(1, math.ceil(CONTINUOUS_FULL_STEPS * t / schedule.T))


def sampling_grid(schedule: Schedule, n_steps: int | None, t_start: float | None,
                  spacing: str | None = None, family: str = "ddim") -> torch.Tensor:
    """The decreasing grid of ``n_steps`` steps (None: every step) from ``t_start`` to 0.

    ``t_start`` None is the vanilla start: T, or on a discrete schedule DDIM's uniform skip from step
    (n - 1) * (N // n) (666 / 800 / 900 of 1000 for n = 3 / 5 / 10, the paper's Table 1). ``spacing``
    (discrete schedules, vanilla start only): diffusers' ``leading``, ``linspace`` or ``trailing`` timesteps
    of the scheduler ``family`` instead (:func:`~symbreak.experiments.sampling.grids.spaced_grid`; trailing
    starts at step N - 1 whatever the family).
    """
    n = full_steps(schedule, t_start) if n_steps is None else check_steps(n_steps)
    if spacing is None:
        return default_grid(schedule, n, t_start)
    if t_start is not None or not schedule.discrete:
        raise ValueError(f"spacing: {spacing!r} applies to the vanilla start of a discrete schedule only")
    return spaced_grid(schedule, n, spacing, family=family)


def check_steps(n_steps: int, name: str = "--steps") -> int:
    """A number of sampler steps in 1 .. :data:`MAX_SAMPLING_STEPS`."""
    return check_int(name, n_steps, 1, MAX_SAMPLING_STEPS)


@dataclass(frozen=True)
class Method:
    """A sampler with its options and number of steps (``None``: every step from the start); ``spacing``:
    None (the paper's grids) or diffusers' timestep spacing of the vanilla start (:func:`sampling_grid`)."""

    label: str
    sampler: str
    n_steps: int | None
    options: dict = field(default_factory=dict)
    spacing: str | None = None

    def __post_init__(self) -> None:
        get_sampler(self.sampler).resolve_options(dict(self.options))
        if self.n_steps is not None:
            check_steps(self.n_steps)
        if self.spacing is not None:
            check_choice("spacing", self.spacing, SPACINGS)

    @property
    def family(self) -> str:
        """The diffusers scheduler family of the sampler: multistep solvers or DDIM-like."""
        return get_sampler(self.sampler).family


@dataclass(frozen=True)
class GLSSource:
    """Where the Gaussian late start takes its Gaussian from: the training samples ``y`` (N, d), with
    ``analytic`` moments (their mean and covariance) or ``empirical`` ones (the samples noised once to
    t_start with a generator seeded by ``seed``, the paper's procedure); ``covariance``: ``lowrank`` (exact
    at d <= 1024) or ``diagonal`` (:func:`~symbreak.experiments.sampling.starts.gls_gaussian`)."""

    y: Array
    moments: str = "analytic"
    seed: int = 0
    covariance: str = "lowrank"

    def at(self, t: float, schedule: Schedule) -> GaussianStart:
        return gls_gaussian(self.y, t, schedule, self.moments, self.seed, covariance=self.covariance)

    def config(self) -> dict:
        covariance = {} if self.covariance == "lowrank" else {"covariance": self.covariance}
        return {"moments": self.moments, "seed": self.seed, "n_points": int(self.y.shape[0]), **covariance}


@dataclass(frozen=True)
class Samples:
    """Generated samples (N, d) flattened, float64, in the order of ``seeds``, and how they were made."""

    x: Array
    seeds: tuple[int, ...]
    t_grid: Array
    nfe: int
    config: dict


def draw_samples(denoiser: Denoiser, method: Method, seeds: Sequence[int] | str, *, start: str = "noise",
                 t_start: float | None = None, gls: GLSSource | None = None, batch_size: int = 4096,
                 threads: int = 1, save_to: str | os.PathLike | None = None) -> Samples:
    """Samples of ``method`` for the per-sample ``seeds`` (sample k uses seed k's start and step noise).

    ``start``: ``noise`` (N(0, I) at T, or at the discrete schedule's uniform-skip start; ``t_start``
    must be None), ``late`` (N(0, I) at ``t_start``), ``gls`` (the Gaussian of ``gls`` at ``t_start``) or
    ``teleport`` (the noise start carried to ``t_start`` by the probability-flow ODE of the Gaussian of
    ``gls``, a :class:`~symbreak.experiments.sampling.starts.TeleportSource`). ``save_to``: an optional
    ``.npy`` path; the samples and a ``.config.json`` sidecar are
    written there atomically. Nothing is written otherwise.
    """
    seeds = parse_seeds(seeds, "seeds")
    schedule = denoiser.schedule
    if start == "noise" and t_start is not None:
        raise ValueError("t_start: the noise start begins at T (the vanilla grid); use start='late' or 'gls'")
    if start in ("late", "gls", "teleport") and t_start is None:
        raise ValueError(f"t_start: the {start} start needs a start time")
    if start in ("gls", "teleport") and gls is None:
        raise ValueError(f"gls: the {start} start needs the data source of its Gaussian "
                         "(GLSSource or TeleportSource)")
    grid = sampling_grid(schedule, method.n_steps, t_start, method.spacing, method.family)
    t0 = float(grid[0])
    gaussian = gls.at(t0, schedule) if start in ("gls", "teleport") else None
    sampler = get_sampler(method.sampler)
    options = sampler.resolve_options(dict(method.options))
    chunks, nfe, start_config = [], 0, None
    device = denoiser_device(denoiser)
    with cpu_threads(threads), torch.no_grad():
        for i in range(0, len(seeds), check_int("batch_size", batch_size, 1)):
            chunk = seeds[i:i + batch_size]
            state = start_state(start, chunk, denoiser.shape, schedule, t0, gaussian=gaussian, device=device)
            result = sampler(denoiser, state.x, grid, seeds=chunk, **options)
            chunks.append(result.x.reshape(len(chunk), -1).cpu().numpy().astype(np.float64))
            nfe, start_config = result.nfe, state.config
    x = np.concatenate(chunks)
    if not np.isfinite(x).all():
        raise FloatingPointError(f"{method.label}: the sampler produced NaN or infinite values from t = {t0:.6g}")
    config = {"method": asdict(method), "options": options, "start": start_config, "t_start": t0,
              "step_start": step_of(schedule, t0), "nfe": nfe, "n_samples": len(seeds),
              "gls": None if gls is None or start not in ("gls", "teleport") else gls.config(), "t_grid": grid.tolist()}
    samples = Samples(x, tuple(seeds), grid.numpy(), nfe, config)
    if save_to is not None:
        _save_samples(Path(save_to), samples)
    return samples


def _save_samples(path: Path, samples: Samples) -> None:
    if path.suffix != ".npy":
        raise ValueError(f"save_to: expected a path ending in .npy, got {str(path)!r}")
    check_output_dir(path.parent, (path.name, sidecar_path(path).name), flag="save_to")
    with staged_dir(path.parent) as tmp:
        np.save(tmp / path.name, samples.x.astype(np.float32))
        (tmp / sidecar_path(path).name).write_text(dumps({**samples.config, "seeds": list(samples.seeds)}) + "\n")
