"""Start states for a sampler at t_start: plain noise at T, the plain late start, the Gaussian late
start (GLS) of Raya & Ambrogioni (2023) and Gaussian teleportation (Wang & Vastola 2024).

All four are built from the same per-sample eps (the ``start`` stream of :mod:`.seeds`), so sample k
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
  Covariance (:func:`gls_gaussian`): the top-k spectrum plus an isotropic rest, ``k`` = d (the full
  covariance) by default for d <= 1024 -- exact, and d = 64 on digits costs nothing -- and a ``ridge``
  r >= 0 (Sigma + r I; default 0, the paper's Gaussian). A diagonal covariance is not offered: it would
  drop the top eigen-directions that decide t_c;
* ``teleport`` -- the noise start x_T carried from T to t_start by the probability-flow ODE of the data's
  Gaussian approximation N(mu, Sigma), in closed form (:class:`Teleport`). Deterministic: it keeps the
  noise -> sample map of the ODE samplers, and its law at t_start is the pushforward of the prior, not
  the GLS Gaussian itself (they differ by O(alpha_T^2 Lambda)).

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
from symbreak.analysis.gls import (GaussianStart, diagonal_gaussian_start, empirical_gaussian_start, gaussian_start,
                                   noised_data)
from symbreak.analysis.spectrum import CovarianceSpectrum, covariance_spectrum
from symbreak.experiments.sampling.seeds import per_sample_noise
from symbreak.theory import Schedule
from symbreak.theory.schedules import VPSchedule

START_KINDS = ("noise", "late", "gls", "teleport")
MOMENTS = ("analytic", "empirical")
COVARIANCES = ("lowrank", "diagonal")


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
                 k: int | None = None, ridge: float = 0.0, covariance: str = "lowrank") -> GaussianStart:
    """The GLS distribution at t for the data ``y`` (N, d): N(alpha mu, alpha^2 (Sigma + ridge I) + sigma^2 I)
    from the data's population mean and covariance (``analytic``), or the moments of the data noised once
    to t with a generator seeded by ``seed`` (``empirical``, the paper's procedure).

    ``covariance``: ``lowrank`` (the default: the top-k eigenpairs plus an isotropic rest, exact -- the full
    covariance -- when k = d, the default for d <= 1024; the top directions are the ones whose instability
    sets t_c, so they are kept exactly at any d) or ``diagonal`` (per-coordinate variances only)."""
    if moments not in MOMENTS:
        raise ValueError(f"moments: expected one of {', '.join(MOMENTS)}, got {moments!r}")
    if covariance not in COVARIANCES:
        raise ValueError(f"covariance: expected one of {', '.join(COVARIANCES)}, got {covariance!r}")
    ridge = _check_ridge(ridge)
    t = float(schedule.check_t(t, "t_start"))
    if covariance == "diagonal":
        noised = moments == "empirical"
        data = noised_data(y, t, schedule, np.random.default_rng(seed)) if noised else y
        g = diagonal_gaussian_start(data, t, schedule, noised=noised)
    elif moments == "analytic":
        g = gaussian_start(covariance_spectrum(y, k=k), t, schedule)
    else:
        g = empirical_gaussian_start(y, t, schedule, np.random.default_rng(seed), k=k)
    if ridge == 0.0:
        return g
    a2 = float(schedule.alpha(t)) ** 2
    return GaussianStart(g.mean, g.vecs, g.lam + a2 * ridge, g.iso + a2 * ridge, {**g.config, "ridge": ridge})


def _check_ridge(ridge: float) -> float:
    if isinstance(ridge, bool) or not np.isfinite(ridge) or ridge < 0:
        raise ValueError(f"ridge: must be a finite number >= 0, got {ridge!r}")
    return float(ridge)


@dataclass(frozen=True, eq=False)
class Teleport:
    """Gaussian teleportation (Wang & Vastola 2024) of the noise start from t_from (T) to t.

    For data N(mu, Sigma) the marginal is p_t = N(alpha_t mu, C_t), C_t = alpha_t^2 Sigma + sigma_t^2 I, and
    the probability-flow ODE dx/dt = f x - (beta / 2) grad log p_t reads, for z = x - alpha_t mu (using
    d(alpha mu)/dt = f alpha mu), dz/dt = (f + beta C_t^{-1} / 2) z. In the eigenbasis of Sigma (eigenvalue
    lam_k) C_t is diagonal with c_k(t) = alpha_t^2 lam_k + sigma_t^2, and dc_k/dt = 2 f c_k + beta (beta =
    d sigma^2/dt - 2 f sigma^2), so d log sqrt(c_k)/dt = f + beta / (2 c_k) is exactly z_k's rate:

        z_k(t) = z_k(t_from) sqrt(alpha_t^2 lam_k + sigma_t^2) / sqrt(alpha_from^2 lam_k + sigma_from^2),

    for every schedule. With the low-rank + isotropic spectrum (top-k ``lam``, the rest ``iso``) the d - k
    other directions share the scale of ``iso``. ``transform(eps)`` teleports the noise start
    x_from = prior_scale eps (the ``noise`` start of the same seed).
    """

    mean: np.ndarray
    vecs: np.ndarray
    scale: np.ndarray
    scale_iso: float
    alpha_from: float
    alpha_to: float
    prior_scale: float
    config: dict

    def transform(self, eps: ArrayLike) -> np.ndarray:
        z = self.prior_scale * np.asarray(eps, dtype=np.float64) - self.alpha_from * self.mean
        if z.ndim != 2 or z.shape[1] != self.mean.shape[0]:
            raise ValueError(f"eps: expected shape (n, {self.mean.shape[0]}), got {z.shape}")
        rotated = ((z @ self.vecs) * (self.scale - self.scale_iso)) @ self.vecs.T
        return self.alpha_to * self.mean + self.scale_iso * z + rotated

    def marginal(self) -> GaussianStart:
        """The law of the teleported state when eps ~ N(0, I): the pushforward of the prior, exactly."""
        mean = self.transform(np.zeros((1, self.mean.shape[0])))[0]  # the image of the prior's mean
        c2 = self.prior_scale ** 2
        return GaussianStart(mean, self.vecs, c2 * self.scale**2, c2 * self.scale_iso**2,
                             {**self.config, "kind": "teleport-marginal"})


def teleport(spectrum: CovarianceSpectrum, t: float, schedule: Schedule, t_from: float | None = None,
             ridge: float = 0.0) -> Teleport:
    """The :class:`Teleport` map from t_from (T by default) to t for data with the mean and covariance
    spectrum ``spectrum`` (full when k = d, low-rank + isotropic otherwise; ``ridge``: Sigma + ridge I)."""
    ridge = _check_ridge(ridge)
    t = float(schedule.check_t(t, "t_start"))
    t_from = schedule.T if t_from is None else float(schedule.check_t(t_from, "t_from"))
    if not t <= t_from:
        raise ValueError(f"t_start: teleportation runs from t_from = {t_from:.6g} down, got t = {t:.6g}")
    (a0, s0), (a1, s1) = ((float(schedule.alpha(u)), float(schedule.sigma(u))) for u in (t_from, t))

    def scale(lam):
        lam = np.asarray(lam, dtype=np.float64) + ridge
        return np.sqrt(a1 * a1 * lam + s1 * s1) / np.sqrt(a0 * a0 * lam + s0 * s0)

    config = {"kind": "teleport", "t": t, "t_from": t_from, "ridge": ridge, "schedule": schedule.config(),
              "spectrum": spectrum.config()}
    return Teleport(spectrum.mean, spectrum.vecs, scale(spectrum.lam), float(scale(spectrum.residual_variance)),
                    a0, a1, prior_std(schedule, t_from), config)


@dataclass(frozen=True)
class TeleportSource:
    """The data ``y`` (N, d) whose Gaussian approximation teleports the noise start; ``at(t, schedule)``
    gives the map to t (the interface of :class:`symbreak.experiments.sampling.draw.GLSSource`, so it can
    stand in the Gaussian start's slot of a sampler run)."""

    y: np.ndarray
    k: int | None = None
    ridge: float = 0.0

    def at(self, t: float, schedule: Schedule) -> Teleport:
        return teleport(covariance_spectrum(self.y, k=self.k), t, schedule, ridge=self.ridge)

    def config(self) -> dict:
        return {"kind": "teleport", "k": self.k, "ridge": self.ridge, "n_points": int(self.y.shape[0])}


@dataclass(frozen=True)
class StartState:
    """Start states x (B, *shape) in float64 at time t_start, and how they were made."""

    x: Tensor
    t_start: float
    kind: str
    config: dict


def start_state(kind: str, seeds: Sequence[int], shape: Sequence[int], schedule: Schedule, t_start: float, *,
                gaussian: GaussianStart | Teleport | None = None, device: torch.device | str = "cpu") -> StartState:
    """The ``kind`` start (``noise``, ``late``, ``gls`` or ``teleport``) of the samples ``seeds`` at ``t_start``.

    ``gls`` needs ``gaussian`` (from :func:`gls_gaussian`) over flattened states of size prod(shape);
    sample k is gaussian.transform(eps_k), the symmetric square root applied to the shared eps;
    ``teleport`` needs the :class:`Teleport` map (from :func:`teleport`) in ``gaussian``. For
    ``noise`` the draw has the scale of T and ``t_start`` is where the sampler's grid begins (T, or a
    discrete schedule's uniform-skip start).
    """
    if kind not in START_KINDS:
        raise ValueError(f"--start: expected one of {', '.join(START_KINDS)}, got {kind!r}")
    t_start = float(schedule.check_t(t_start, "t_start"))
    eps = per_sample_noise(seeds, shape, device=device)
    config = {"kind": kind, "t_start": t_start, "stream": "start"}
    if kind in ("gls", "teleport"):
        if gaussian is None:
            raise ValueError(f"gaussian: the {kind} start needs its map at t_start (see gls_gaussian, teleport)")
        x = gaussian.transform(eps.reshape(eps.shape[0], -1).cpu().numpy())
        x = torch.as_tensor(x, dtype=torch.float64, device=device).reshape(eps.shape)
        return StartState(x, t_start, kind, {**config, "gaussian": gaussian.config})
    scale = prior_std(schedule, schedule.T if kind == "noise" else t_start)
    return StartState(scale * eps, t_start, kind, {**config, "scale": scale})
