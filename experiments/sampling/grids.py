"""Noise levels and decreasing time grids for the samplers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from symbreak.theory.checks import finite_array
from symbreak.theory.schedules import Schedule


@dataclass(frozen=True)
class Level:
    """The noise level at diffusion time t; t = 0 is the data (alpha = 1, sigma = 0, logsnr = inf)."""

    t: float
    alpha: float
    sigma: float
    logsnr: float

    @classmethod
    def at(cls, schedule: Schedule, t: float) -> Level:
        return cls.on_grid(schedule, np.array([t]))[0]

    @classmethod
    def on_grid(cls, schedule: Schedule, t: np.ndarray) -> list[Level]:
        """The levels at every time of ``t`` (float64, times in [0, T])."""
        data = t > 0
        alpha, sigma, logsnr = np.ones_like(t), np.zeros_like(t), np.full_like(t, math.inf)
        alpha[data], sigma[data] = schedule.alpha(t[data]), schedule.sigma(t[data])
        logsnr[data] = schedule.logsnr(t[data])
        return [cls(*map(float, v)) for v in zip(t, alpha, sigma, logsnr)]


def check_grid(schedule: Schedule, t_grid: ArrayLike | Tensor, name: str = "t_grid") -> np.ndarray:
    """``t_grid`` as float64 numpy: 1-D, at least two points, strictly decreasing, within [0, T]."""
    if isinstance(t_grid, Tensor):
        t_grid = t_grid.detach().cpu().numpy()
    t = finite_array(name, t_grid, ndim=1)
    if t.shape[0] < 2:
        raise ValueError(f"{name}: needs at least 2 times (start and end), got {t.shape[0]}")
    if not (np.diff(t) < 0).all():
        raise ValueError(f"{name}: must be strictly decreasing (generation runs from t_start down to 0)")
    if t[-1] < 0:
        raise ValueError(f"{name}: must end at t >= 0, got {t[-1]:.6g}")
    schedule.check_t(t[t > 0], name)
    return t


def _check_steps(n_steps: int, name: str = "n_steps") -> int:
    if isinstance(n_steps, bool) or int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"{name}: must be an integer >= 1, got {n_steps!r}")
    return int(n_steps)


def uniform_grid(schedule: Schedule, t_start: float, n_steps: int, t_end: float = 0.0) -> Tensor:
    """n_steps + 1 equally spaced times from t_start down to t_end (0 by default), float64."""
    n = _check_steps(n_steps)
    return torch.as_tensor(check_grid(schedule, np.linspace(float(t_start), float(t_end), n + 1)))


def paper_start_step(schedule: Schedule, n_steps: int) -> int:
    """DDIM's uniform skip for a discrete schedule of N steps: start at (n - 1) * (N // n).

    For N = 1000 this is step 666 / 800 / 900 for n = 3 / 5 / 10, the vanilla setup of the paper's Table 1.
    """
    return (_check_steps(n_steps) - 1) * (_discrete_steps(schedule) // n_steps)


def _discrete_steps(schedule: Schedule) -> int:
    if not schedule.discrete:
        raise ValueError(f"schedule: a step grid needs a discrete schedule, got {schedule.name!r}")
    return int(schedule.n_steps)


def discrete_grid(schedule: Schedule, n_steps: int, start_step: int | None = None) -> Tensor:
    """The uniform-skip grid of a discrete schedule: steps round(linspace(start_step, 0, n_steps)) as times,
    then t = 0 (alpha = 1, as DDIM's final step to alpha_bar = 1). n_steps network evaluations for the
    first-order samplers. ``start_step`` defaults to :func:`paper_start_step`.
    """
    n = _check_steps(n_steps)
    start = paper_start_step(schedule, n) if start_step is None else start_step
    if isinstance(start, bool) or int(start) != start or not n - 1 <= start < _discrete_steps(schedule):
        raise ValueError(f"start_step: must be an integer in [{n - 1}, {schedule.n_steps - 1}] for "
                         f"{n} steps, got {start!r}")
    steps = np.rint(np.linspace(int(start), 0, n)).astype(np.int64)
    return torch.as_tensor(np.concatenate([schedule.t_of_step(steps), [0.0]]))


def default_grid(schedule: Schedule, n_steps: int, t_start: float | None = None) -> Tensor:
    """The grid a sampler runs on from ``t_start`` (T or, for discrete schedules, the paper's uniform-skip
    start when None) to 0: :func:`discrete_grid` from the step holding t_start for discrete schedules,
    :func:`uniform_grid` otherwise."""
    if not schedule.discrete:
        return uniform_grid(schedule, schedule.T if t_start is None else t_start, n_steps)
    start = None if t_start is None else int(schedule.step_of_t(float(schedule.check_t(t_start, "t_start"))))
    return discrete_grid(schedule, n_steps, start)


# ---------------------------------------------------------------------------------------------
# diffusers' timestep spacings (discrete schedules) and the grids of the fast ODE solvers
# ---------------------------------------------------------------------------------------------
SPACINGS = ("leading", "linspace", "trailing")
FAMILIES = ("multistep", "ddim")
DEFAULT_T_END = 1e-3  # the smallest time of the continuous grids, times T (DPM-Solver's eps for VP models)
KARRAS_RHO = 7.0


def diffusers_steps(n_steps: int, spacing: str = "linspace", *, n_train: int = 1000, steps_offset: int = 0,
                    family: str = "multistep") -> np.ndarray:
    """The training steps diffusers' ``set_timesteps(n_steps)`` picks (Lin et al. 2024, Table 2), decreasing.

    ``family="multistep"``: DPMSolverMultistepScheduler and UniPCMultistepScheduler (their default spacing
    is ``linspace``), which place n + 1 points and drop step 0 (the solver's last step goes to sigma = 0):
    linspace: round(linspace(0, N - 1, n + 1))[1:]; leading: k * (N // (n + 1)) + steps_offset, k = 1..n.
    ``family="ddim"``: DDIMScheduler (default ``leading``): linspace: round(linspace(0, N - 1, n));
    leading: k * (N // n) + steps_offset, k = 0..n - 1 (the paper's uniform skip for offset 0).
    trailing (both): round(arange(N, 0, -N / n)) - 1, which always starts at N - 1.
    ``steps_offset`` (diffusers' default 0, followed here; Stable Diffusion configs use 1) shifts the
    leading spacing only, as in diffusers.
    """
    n, n_train = _check_steps(n_steps), _check_steps(n_train, "n_train")
    if spacing not in SPACINGS:
        raise ValueError(f"spacing: expected one of {', '.join(SPACINGS)}, got {spacing!r}")
    if family not in FAMILIES:
        raise ValueError(f"family: expected one of {', '.join(FAMILIES)}, got {family!r}")
    if isinstance(steps_offset, bool) or int(steps_offset) != steps_offset or steps_offset < 0:
        raise ValueError(f"steps_offset: must be an integer >= 0, got {steps_offset!r}")
    points = n + 1 if family == "multistep" else n
    if spacing == "trailing":
        steps = np.round(np.arange(n_train, 0, -n_train / n)) - 1
    elif spacing == "linspace":
        steps = np.round(np.linspace(0, n_train - 1, points))[::-1][:n]
    else:
        steps = (np.arange(points) * (n_train // points))[::-1][:n] + int(steps_offset)
    steps = steps.astype(np.int64)
    if steps.size != n or (np.diff(steps) >= 0).any() or steps.min() < 0 or steps.max() >= n_train:
        raise ValueError(f"n_steps: {n} {spacing} steps do not fit {n_train} training steps "
                         f"(they must be distinct and within [0, {n_train - 1}])")
    return steps


def spaced_grid(schedule: Schedule, n_steps: int, spacing: str = "linspace", *, steps_offset: int = 0,
                family: str = "multistep") -> Tensor:
    """The times of :func:`diffusers_steps` on a discrete schedule, then t = 0: n_steps steps, the last
    one to the data (diffusers' ``final_sigmas_type="zero"``; DDIM's ``set_alpha_to_one=True``)."""
    steps = diffusers_steps(n_steps, spacing, n_train=_discrete_steps(schedule), steps_offset=steps_offset,
                            family=family)
    return torch.as_tensor(np.concatenate([schedule.t_of_step(steps), [0.0]]))


def _span(schedule: Schedule, t_start: float | None, t_end: float | None) -> tuple[float, float]:
    t0 = schedule.T if t_start is None else float(schedule.check_t(t_start, "t_start"))
    t1 = max(DEFAULT_T_END * schedule.T, schedule.t_min) if t_end is None else float(schedule.check_t(t_end, "t_end"))
    if not t1 < t0:
        raise ValueError(f"t_end: must be below t_start = {t0:.6g}, got {t1:.6g}")
    return t0, t1


def _times_of(schedule: Schedule, logsnr: np.ndarray, t0: float, t1: float, n: int, to_data: bool) -> Tensor:
    """Times of decreasing-noise logsnr values with exact end points, then t = 0 when ``to_data``."""
    t = schedule.t_of_logsnr(logsnr)
    t[0] = t0
    if not to_data or n > 1:
        t[-1] = t1
    return torch.as_tensor(check_grid(schedule, np.concatenate([t, [0.0]]) if to_data else t))


def logsnr_grid(schedule: Schedule, n_steps: int, t_start: float | None = None, t_end: float | None = None, *,
                to_data: bool = True) -> Tensor:
    """Times uniform in logsnr (DPM-Solver's ``logSNR`` skip, Lu et al. 2022) from t_start (T) to t_end
    (1e-3 T, or a discrete schedule's first step), then t = 0 when ``to_data``: n_steps steps either way."""
    n = _check_steps(n_steps)
    t0, t1 = _span(schedule, t_start, t_end)
    points = n if to_data else n + 1
    logsnr = np.linspace(float(schedule.logsnr(t0)), float(schedule.logsnr(t1)), points)
    return _times_of(schedule, logsnr, t0, t1, points, to_data)


def karras_grid(schedule: Schedule, n_steps: int, t_start: float | None = None, t_end: float | None = None, *,
                rho: float = KARRAS_RHO, to_data: bool = True) -> Tensor:
    """Karras et al. (2022, eq. 5) noise levels s_i = (s_max^(1/rho) + i/(m - 1) (s_min^(1/rho) - s_max^(1/rho)))^rho
    in the EDM noise s = sigma / alpha = exp(-logsnr / 2), between t_start (T) and t_end (as
    :func:`logsnr_grid`), rho = 7; then t = 0 when ``to_data`` (EDM's and diffusers' last step to s = 0)."""
    n = _check_steps(n_steps)
    rho = float(finite_array("rho", rho, ndim=0))
    if rho <= 0:
        raise ValueError(f"rho: must be > 0, got {rho}")
    t0, t1 = _span(schedule, t_start, t_end)
    points = n if to_data else n + 1
    s_max, s_min = (math.exp(-0.5 * float(schedule.logsnr(t))) for t in (t0, t1))
    ramp = np.linspace(0.0, 1.0, points)
    s = (s_max ** (1 / rho) + ramp * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho
    return _times_of(schedule, -2.0 * np.log(s), t0, t1, points, to_data)
