"""Start states for a sampler at t_start: plain noise at T, the plain late start, and the Gaussian late
start (GLS) of Raya & Ambrogioni (2023).

All three are built from the same per-sample eps (the ``start`` stream of :mod:`.seeds`), so sample k
starts from the same underlying noise under every start kind, sampler and batch size:

* ``noise`` -- N(0, I) at T (the stationary law of a VP process), scaled by sigma(T) for VE schedules;
* ``late``  -- the same draw placed at t_start, scaled by sigma(t_start) for VE (the paper's plain
  late start: the steps above t_start are skipped); ``late`` at T equals ``noise``;
* ``gls``   -- N(alpha mu, alpha^2 Sigma + sigma^2 I) at t_start, the law of x_t when the data are replaced
  by a Gaussian with their mean mu and covariance Sigma (design note section 1); ``analytic`` moments
  from the data's mean and covariance, or ``empirical`` ones from the data noised once
  (x_t = alpha y + sigma eps with a seeded eps), kept low-rank + isotropic for large d
  (:class:`symbreak.analysis.gls.GaussianStart`). Samples are mean + C^{1/2} eps with the symmetric
  square root, so with alpha -> 0 a GLS start tends to the noise start of the same seed.

``t_start`` may be a number, ``step:K`` (discrete schedules) or ``tc`` (a critical time supplied by the
caller, a number or a function computing it).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from symbreak.analysis.datasets import Dataset
from symbreak.analysis.gls import GaussianStart, empirical_gaussian_start, gaussian_start
from symbreak.analysis.spectrum import covariance_spectrum
from symbreak.experiments.sampling.seeds import per_sample_noise
from symbreak.theory import Schedule
from symbreak.theory.schedules import VPSchedule

START_KINDS = ("noise", "late", "gls")
MOMENTS = ("analytic", "empirical")


def parse_t_start(spec: str | float, schedule: Schedule, *,
                  critical_time: float | Callable[[], float] | None = None, name: str = "--t-start") -> float:
    """A start time in (0, T] from a number, ``step:K`` (discrete schedules: t of step K) or ``tc``."""
    text = str(spec).strip()
    if text == "tc":
        if critical_time is None:
            raise ValueError(f"{name}: 'tc' needs the data's critical time, which is not available here")
        value = critical_time() if callable(critical_time) else critical_time
    elif text.startswith("step:"):
        if not schedule.discrete:
            raise ValueError(f"{name}: 'step:K' needs a discrete schedule, got {schedule.name!r}")
        try:
            step = int(text[5:])
        except ValueError:
            raise ValueError(f"{name}: expected step:K with an integer K, got {text!r}") from None
        if not 0 <= step < schedule.n_steps:
            raise ValueError(f"{name}: step must lie in [0, {schedule.n_steps - 1}], got {step}")
        value = float(schedule.t_of_step(step))
    else:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{name}: expected a time in (0, {schedule.T:g}], 'step:K' or 'tc', "
                             f"got {text!r}") from None
    return float(schedule.check_t(value, name))


def prior_std(schedule: Schedule, t: float) -> float:
    """Std of the noise start at t: 1 for VP schedules (their stationary N(0, I)), sigma(t) otherwise."""
    return 1.0 if isinstance(schedule, VPSchedule) else float(schedule.sigma(t))


def gls_gaussian(y: ArrayLike | Dataset, t: float, schedule: Schedule, moments: str = "analytic", seed: int = 0,
                 k: int | None = None) -> GaussianStart:
    """The GLS distribution at t for the data ``y`` (N, d) as a low-rank + isotropic :class:`GaussianStart`
    (exact when k = d, the default for d <= 1024): N(alpha mu, alpha^2 Sigma + sigma^2 I) from the data's
    population mean and covariance (``analytic``), or the moments of the data noised once to t with
    a generator seeded by ``seed`` (``empirical``, the paper's procedure)."""
    if moments not in MOMENTS:
        raise ValueError(f"moments: expected one of {', '.join(MOMENTS)}, got {moments!r}")
    t = float(schedule.check_t(t, "t_start"))
    if moments == "analytic":
        return gaussian_start(covariance_spectrum(y, k=k), t, schedule)
    return empirical_gaussian_start(y, t, schedule, np.random.default_rng(seed), k=k)


@dataclass(frozen=True)
class StartState:
    """Start states x (B, *shape) in float64 at time t_start, and how they were made."""

    x: Tensor
    t_start: float
    kind: str
    config: dict


def start_state(kind: str, seeds: Sequence[int], shape: Sequence[int], schedule: Schedule, t_start: float, *,
                gaussian: GaussianStart | None = None, device: torch.device | str = "cpu") -> StartState:
    """The ``kind`` start (``noise``, ``late`` or ``gls``) of the samples ``seeds`` at ``t_start``.

    ``gls`` needs ``gaussian`` (from :func:`gls_gaussian`) over flattened states of size prod(shape);
    sample k is gaussian.transform(eps_k), the symmetric square root applied to the shared eps. For
    ``noise`` the draw has the scale of T and ``t_start`` is where the sampler's grid begins (T, or a
    discrete schedule's uniform-skip start).
    """
    if kind not in START_KINDS:
        raise ValueError(f"--start: expected one of {', '.join(START_KINDS)}, got {kind!r}")
    t_start = float(schedule.check_t(t_start, "t_start"))
    eps = per_sample_noise(seeds, shape, device=device)
    config = {"kind": kind, "t_start": t_start, "stream": "start"}
    if kind == "gls":
        if gaussian is None:
            raise ValueError("gaussian: the gls start needs the Gaussian at t_start (see gls_gaussian)")
        x = gaussian.transform(eps.reshape(eps.shape[0], -1).cpu().numpy())
        x = torch.as_tensor(x, dtype=torch.float64, device=device).reshape(eps.shape)
        return StartState(x, t_start, kind, {**config, "gaussian": gaussian.config})
    scale = prior_std(schedule, schedule.T if kind == "noise" else t_start)
    return StartState(scale * eps, t_start, kind, {**config, "scale": scale})
