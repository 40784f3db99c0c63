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
