"""Noise schedules x_t = alpha(t) y + sigma(t) eps as small analytic objects (score_sde style).

Every schedule gives alpha, sigma, the drift coefficient f = d log alpha/dt, the diffusion rate
beta = g^2 = d sigma^2/dt - 2 f sigma^2 (for VP schedules beta = -2 d log alpha/dt, the paper's beta),
tau = -log alpha (Biroli et al.'s OU time), logsnr = log(alpha^2/sigma^2) and the inverses
t(logsnr), t(alpha). Time runs over (0, T]; t = 0 is the data. Everything is float64 and computed
from log alpha / log sigma^2 so that both ends of the range stay finite.

Near t = 0, sigma^2 is clamped from below at :data:`SIGMA2_FLOOR` = sqrt(smallest normal float64)
(sigma >= 1.2e-77, reached on the VP schedules only for t below about 1e-153): the Hessian of
log p_t divides by sigma^4, which would otherwise underflow to 0. Above the floor nothing changes.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .checks import check_int, check_positive, finite_array

Array = NDArray[np.float64]
SIGMA2_FLOOR = math.sqrt(np.finfo(np.float64).tiny)  # sigma^4 stays a normal float: 1.49e-154
LOG_SIGMA2_FLOOR = math.log(SIGMA2_FLOOR)
MAX_DISCRETE_STEPS = 100_000  # a discrete schedule's number of steps (the paper's is 1000)


def _softplus(z: Array) -> Array:
    """log(1 + e^z) without overflow."""
    return np.logaddexp(0.0, z)


class Schedule(ABC):
    """Interface shared by all schedules; subclasses give log alpha, log sigma^2 and their rates."""

    name: str
    T: float = 1.0
    discrete: bool = False

    # --- what a subclass defines -------------------------------------------------------------
    @abstractmethod
    def _log_alpha(self, t: Array) -> Array: ...

    @abstractmethod
    def _log_sigma2(self, t: Array) -> Array: ...

    @abstractmethod
    def _f(self, t: Array) -> Array:
        """d log alpha / dt."""

    @abstractmethod
    def _beta(self, t: Array) -> Array:
        """g^2 = d sigma^2/dt - 2 f sigma^2."""

    @abstractmethod
    def _t_of_logsnr(self, logsnr: Array) -> Array: ...

    @abstractmethod
    def config(self) -> dict: ...

    # --- public, validated interface ---------------------------------------------------------
    def check_t(self, t: ArrayLike, name: str = "t") -> Array:
        """``t`` as float64, raising if any value lies outside (0, T]."""
        t = finite_array(name, t)
        if (t <= 0).any() or (t > self.T * (1 + 1e-12)).any():
            raise ValueError(f"{name}: must lie in (0, {self.T:g}] for the {self.name} schedule, "
                             f"got values in [{t.min():.6g}, {t.max():.6g}]")
        return t

    def log_alpha(self, t: ArrayLike) -> Array:
        return self._log_alpha(self.check_t(t))

    def alpha(self, t: ArrayLike) -> Array:
        return np.exp(self.log_alpha(t))

    def log_sigma2(self, t: ArrayLike) -> Array:
        """log sigma^2(t), at least :data:`LOG_SIGMA2_FLOOR` (module docstring)."""
        t = self.check_t(t)
        with np.errstate(divide="ignore"):  # sigma^2 that underflows to 0 (t ~ 1e-308) gives log 0 = -inf
            return np.maximum(self._log_sigma2(t), LOG_SIGMA2_FLOOR)

    def sigma2(self, t: ArrayLike) -> Array:
        return np.exp(self.log_sigma2(t))

    def sigma(self, t: ArrayLike) -> Array:
        return np.exp(0.5 * self.log_sigma2(t))

    def f(self, t: ArrayLike) -> Array:
        """Forward drift coefficient f(t) = d log alpha/dt of dx = f x dt + g dW."""
        return self._f(self.check_t(t))

    def beta(self, t: ArrayLike) -> Array:
        """Diffusion rate g(t)^2; for VP schedules the paper's beta(t) = -2 d log alpha/dt."""
        return self._beta(self.check_t(t))

    def tau(self, t: ArrayLike) -> Array:
        """OU time tau = -log alpha (Biroli et al.)."""
        return -self.log_alpha(t)

    def logsnr(self, t: ArrayLike) -> Array:
        """log(alpha^2 / sigma^2) (unclamped: +inf where sigma^2 underflows to 0, t below about 1e-308)."""
        t = self.check_t(t)
        with np.errstate(divide="ignore"):
            return 2.0 * self._log_alpha(t) - self._log_sigma2(t)

    def t_of_logsnr(self, logsnr: ArrayLike) -> Array:
        """Inverse of :meth:`logsnr` (logsnr decreases with t); clipped to (0, T]."""
        return np.clip(self._t_of_logsnr(finite_array("logsnr", logsnr)), 0.0, self.T)

    def t_of_alpha(self, alpha: ArrayLike) -> Array:
        """Inverse of :meth:`alpha` for VP schedules, where alpha^2 = sigmoid(logsnr)."""
        a = finite_array("alpha", alpha)
        if ((a <= 0) | (a >= 1)).any():
            raise ValueError(f"alpha: must lie in (0, 1), got values in [{a.min():.6g}, {a.max():.6g}]")
        return self.t_of_logsnr(2 * np.log(a) - np.log1p(-a * a))

    def logsnr_range(self) -> tuple[float, float]:
        """(logsnr at T, logsnr at the smallest resolvable t): the axis critical times are found on."""
        return float(self.logsnr(self.T)), float(self.logsnr(self.t_min))

    @property
    def t_min(self) -> float:
        return 1e-6 * self.T

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class VPSchedule(Schedule, ABC):
    """Variance preserving: sigma^2 = 1 - alpha^2, beta = -2 f."""

    def _log_sigma2(self, t: Array) -> Array:
        return np.log(-np.expm1(2.0 * self._log_alpha(t)))

    def _beta(self, t: Array) -> Array:
        return -2.0 * self._f(t)

    @abstractmethod
    def _t_of_log_alpha(self, log_alpha: Array) -> Array: ...

    def _t_of_logsnr(self, logsnr: Array) -> Array:
        # alpha^2 = sigmoid(logsnr)  =>  log alpha = -softplus(-logsnr) / 2
        return self._t_of_log_alpha(-0.5 * _softplus(-logsnr))


@dataclass(frozen=True, repr=False)
class VPLinear(VPSchedule):
    """Continuous VP schedule of Song et al. (2021): beta(t) = beta_min + (beta_max - beta_min) t.

    log alpha(t) = -(beta_min t + (beta_max - beta_min) t^2 / 2) / 2; the paper's default
    beta_min = 0.1, beta_max = 20 gives alpha(t) = exp(-19.9 t^2 / 4 - 0.05 t).
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    T: float = 1.0
    name = "vp-linear"

    def __post_init__(self) -> None:
        check_positive("beta_min", self.beta_min)
        check_positive("beta_max", self.beta_max)
        check_positive("T", self.T)
        if not float(self.beta_max) > float(self.beta_min):
            raise ValueError(f"beta_max: must be > beta_min = {self.beta_min}, got {self.beta_max}")

    def _log_alpha(self, t: Array) -> Array:
        return -0.5 * (self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t * t)

    def _f(self, t: Array) -> Array:
        return -0.5 * (self.beta_min + (self.beta_max - self.beta_min) * t)

    def _t_of_log_alpha(self, log_alpha: Array) -> Array:
        # (db/4) t^2 + (b0/2) t + log alpha = 0, positive root
        b0, db = self.beta_min, self.beta_max - self.beta_min
        return (-b0 + np.sqrt(b0 * b0 - 4.0 * db * log_alpha)) / db

    def config(self) -> dict:
        return {"name": self.name, "beta_min": self.beta_min, "beta_max": self.beta_max, "T": self.T}


@dataclass(frozen=True, repr=False)
class VPCosine(VPSchedule):
    """Cosine schedule of Nichol & Dhariwal (2021): alpha^2 = cos^2(pi/2 (t+s)/(1+s)) / cos^2(pi/2 s/(1+s)).

    The default ``T = 0.9946`` keeps beta = -2 d log alpha/dt below 1e3 (alpha^2 -> 0 at t = 1).
    """

    s: float = 0.008
    T: float = 0.9946
    name = "vp-cosine"

    def __post_init__(self) -> None:
        check_positive("s", self.s)
        T = check_positive("T", self.T)
        if T >= 1.0:
            raise ValueError(f"T: must be < 1 for the cosine schedule (alpha vanishes at t = 1), got {T}")

    def _phase(self, t: Array) -> Array:
        return 0.5 * math.pi * (t + self.s) / (1.0 + self.s)

    def _log_alpha(self, t: Array) -> Array:
        return np.log(np.cos(self._phase(t))) - math.log(math.cos(self._phase(0.0)))

    def _f(self, t: Array) -> Array:
        return -np.tan(self._phase(t)) * 0.5 * math.pi / (1.0 + self.s)

    def _t_of_log_alpha(self, log_alpha: Array) -> Array:
        c = np.exp(log_alpha) * math.cos(self._phase(0.0))
        return (1.0 + self.s) * np.arccos(c) / (0.5 * math.pi) - self.s

    def config(self) -> dict:
        return {"name": self.name, "s": self.s, "T": self.T}


@dataclass(frozen=True, repr=False)
class DiscreteDDPM(VPSchedule):
    """Discrete DDPM schedule (Ho et al. 2020): betas = linspace(beta_start, beta_end, n_steps),
    alpha_bar = cumprod(1 - betas), alpha = sqrt(alpha_bar).

    Step k (0-based) sits at t_k = (k + 1) / n_steps; between steps log alpha_bar is linear in t, so
    beta(t) = -n_steps log(1 - beta_k) on (k/N, (k+1)/N]. A time t maps to the step ceil(t N) - 1:
    the first step whose noise level has reached t.

    Any other beta sequence (a diffusers scheduler's scaled_linear, squaredcos_cap_v2 or trained betas)
    comes through :meth:`from_betas`: ``trained_betas`` then holds the n_steps betas, beta_start and
    beta_end are its first and last values, and ``config()`` lists them (it is unchanged otherwise).
    """

    n_steps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    trained_betas: tuple[float, ...] | None = None
    name = "ddpm"
    discrete = True

    def __post_init__(self) -> None:
        check_int("n_steps", self.n_steps, 2, MAX_DISCRETE_STEPS)
        if self.trained_betas is not None:
            betas = finite_array("trained_betas", self.trained_betas, ndim=1)
            if betas.size != self.n_steps or not ((betas > 0) & (betas < 1)).all():
                raise ValueError(f"trained_betas: expected {self.n_steps} values in (0, 1), got {betas.size} "
                                 f"in [{betas.min():.3g}, {betas.max():.3g}]")
            object.__setattr__(self, "trained_betas", tuple(float(b) for b in betas))
            return
        check_positive("beta_start", self.beta_start)
        if not 0 < float(self.beta_start) < float(self.beta_end) < 1:
            raise ValueError(f"beta_end: must satisfy beta_start < beta_end < 1, got {self.beta_end}")

    @classmethod
    def from_betas(cls, betas: ArrayLike) -> DiscreteDDPM:
        """The discrete schedule of an arbitrary beta sequence (each beta in (0, 1))."""
        b = finite_array("trained_betas", betas, ndim=1)
        return cls(n_steps=int(b.size), beta_start=float(b[0]), beta_end=float(b[-1]), trained_betas=tuple(b))

    @property
    def betas(self) -> Array:
        if self.trained_betas is not None:
            return np.asarray(self.trained_betas, dtype=np.float64)
        return np.linspace(self.beta_start, self.beta_end, self.n_steps)

    @property
    def log_alpha_bar(self) -> Array:
        return np.cumsum(np.log1p(-self.betas))

    @property
    def _grid(self) -> tuple[Array, Array]:
        return np.arange(self.n_steps + 1) / self.n_steps, np.concatenate([[0.0], 0.5 * self.log_alpha_bar])

    @property
    def t_min(self) -> float:
        return 1.0 / self.n_steps

    def _log_alpha(self, t: Array) -> Array:
        return np.interp(t, *self._grid)

    def _f(self, t: Array) -> Array:
        return 0.5 * self.n_steps * np.log1p(-self.betas[self.step_of_t(t)])

    def _t_of_log_alpha(self, log_alpha: Array) -> Array:
        ts, la = self._grid
        return np.interp(-log_alpha, -la, ts)

    def step_of_t(self, t: ArrayLike) -> NDArray[np.int64]:
        """The step index ceil(t N) - 1 in [0, N - 1]."""
        k = np.ceil(np.asarray(t, dtype=np.float64) * self.n_steps - 1e-9).astype(np.int64) - 1
        return np.clip(k, 0, self.n_steps - 1)

    def t_of_step(self, step: ArrayLike) -> Array:
        k = np.asarray(step)
        if (k < 0).any() or (k >= self.n_steps).any():
            raise ValueError(f"step: must lie in [0, {self.n_steps - 1}], got {k}")
        return (k + 1.0) / self.n_steps

    def config(self) -> dict:
        config = {"name": self.name, "n_steps": self.n_steps, "beta_start": self.beta_start, "beta_end": self.beta_end}
        return config if self.trained_betas is None else {**config, "trained_betas": list(self.trained_betas)}


@dataclass(frozen=True, repr=False)
class VE(Schedule):
    """Variance exploding (Song et al. 2021): alpha = 1, sigma(t) = sigma_min (sigma_max/sigma_min)^t.

    beta = g^2 = d sigma^2/dt = 2 sigma^2 log(sigma_max/sigma_min); tau = 0 throughout.
    """

    sigma_min: float = 0.01
    sigma_max: float = 50.0
    T: float = 1.0
    name = "ve"

    def __post_init__(self) -> None:
        check_positive("sigma_min", self.sigma_min)
        check_positive("sigma_max", self.sigma_max)
        check_positive("T", self.T)
        if not float(self.sigma_max) > float(self.sigma_min):
            raise ValueError(f"sigma_max: must be > sigma_min = {self.sigma_min}, got {self.sigma_max}")

    @property
    def _log_ratio(self) -> float:
        return math.log(self.sigma_max / self.sigma_min)

    def _log_alpha(self, t: Array) -> Array:
        return np.zeros_like(t)

    def _log_sigma2(self, t: Array) -> Array:
        return 2.0 * (math.log(self.sigma_min) + t * self._log_ratio)

    def _f(self, t: Array) -> Array:
        return np.zeros_like(t)

    def _beta(self, t: Array) -> Array:
        return 2.0 * self._log_ratio * np.exp(self._log_sigma2(t))

    def _t_of_logsnr(self, logsnr: Array) -> Array:
        return (-0.5 * logsnr - math.log(self.sigma_min)) / self._log_ratio

    def t_of_alpha(self, alpha: ArrayLike) -> Array:
        raise ValueError("alpha: the VE schedule keeps alpha = 1; use t_of_logsnr instead")

    def config(self) -> dict:
        return {"name": self.name, "sigma_min": self.sigma_min, "sigma_max": self.sigma_max, "T": self.T}


SCHEDULES: dict[str, type[Schedule]] = {"vp-linear": VPLinear, "vp-cosine": VPCosine, "ddpm": DiscreteDDPM, "ve": VE}


def get_schedule(name: str, **params: float) -> Schedule:
    """Build a schedule by its command-line name (``vp-linear``, ``vp-cosine``, ``ddpm``, ``ve``)."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule: unknown name {name!r}; accepted: {', '.join(SCHEDULES)}")
    return SCHEDULES[name](**params)


def schedule_from_config(config: dict) -> Schedule:
    """Inverse of ``Schedule.config()``."""
    params = dict(config)
    return get_schedule(params.pop("name"), **params)
