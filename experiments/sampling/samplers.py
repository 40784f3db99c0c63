"""Samplers for the generative direction (t from t_start down to 0), k-diffusion style.

Every sampler has one signature::

    sampler(denoiser, x_start, t_grid, *, seeds=None, return_trajectory=False, callback=None, **opts)
        -> SampleResult(x, trajectory, t_grid, nfe)

``t_grid`` is an explicit strictly decreasing float64 grid t_0 > t_1 > ... > t_n >= 0 (only the last
point may be 0); ``x_start`` is the state at t_0. The state is integrated in float64 whatever dtype the
network runs in. Stochastic samplers draw their step noise from per-sample generators (``seeds``, one
per sample), so sample k's whole trajectory is the same in every batch.

**The step to t = 0.** t = 0 is the data (alpha = 1, sigma = 0), where the denoiser is never evaluated.
Every sampler steps to alpha = 1 exactly with its own update, using evaluations at t > 0 only: DDIM
(any eta), DDPM and Euler–Maruyama (score_sde's noise-free last step) all end with
x_0 = D(x_{n-1}, t_{n-1}); a multi-stage step (Heun, PNDM's Runge–Kutta warm-up) whose later stages
would sit at t = 0 drops them and takes its first, Euler/DDIM stage, which gives the same x_0 (the Euler
step of the probability-flow ODE in (x/alpha, sigma/alpha) to sigma = 0, as in k-diffusion); PNDM's
linear multistep step applies its four-step eps combination in the same transfer. A grid ending at
t_n > 0 returns the state at t_n (noisy at level sigma(t_n)).

All deterministic updates are built on one transfer (DDIM, Song et al. 2021 eq. 12; the transfer part
phi of PNDM, Liu et al. 2022): x_s = alpha_s y_hat + sigma_s eps, which is the Euler step of the
probability-flow ODE dx~/dsigma~ = eps in x~ = x/alpha, sigma~ = sigma/alpha (Karras et al. 2022 eq. 4).
Heun's method and PNDM's Runge–Kutta warm-up are pseudo Runge–Kutta schemes on that transfer."""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from symbreak.experiments.models.denoisers import Denoiser
from symbreak.experiments.sampling.grids import Level, check_grid
from symbreak.experiments.sampling.seeds import StepNoise, parse_seeds
from symbreak.theory.checks import finite_array


@dataclass(frozen=True)
class SampleResult:
    """Final states x (B, *shape), the states at every grid time (n + 1, B, *shape) on the CPU when
    requested, the grid (float64) and the number of denoiser evaluations (batched calls)."""

    x: Tensor
    trajectory: Tensor | None
    t_grid: Tensor
    nfe: int


@dataclass(frozen=True)
class StepInfo:
    """What a callback sees before step i: the state x at t, and the denoised estimate D(x, t)."""

    i: int
    t: float
    t_next: float
    x: Tensor
    denoised: Tensor


@dataclass(frozen=True)
class Prediction:
    """The denoiser's estimate at (x, t): y_hat and eps = (x - alpha y_hat) / sigma (Tweedie)."""

    y_hat: Tensor
    eps: Tensor

    @classmethod
    def from_eps(cls, x: Tensor, eps: Tensor, level: Level) -> Prediction:
        """The pair consistent with an eps estimate at x: y_hat = (x - sigma eps) / alpha."""
        return cls((x - level.sigma * eps) / level.alpha, eps)


class _Run:
    """One sampler run: the denoiser, the grid's noise levels, the step noise and the multistep memory."""

    def __init__(self, denoiser: Denoiser, t_grid: np.ndarray, noise: StepNoise | None):
        self.denoiser, self.noise = denoiser, noise
        self.levels = Level.on_grid(denoiser.schedule, t_grid)
        self.nfe = 0
        self.memory: list[Tensor] = []
        self.state: dict[str, Any] = {}  # a multistep solver's own memory (see :mod:`.solvers`)

    @property
    def n_steps(self) -> int:
        return len(self.levels) - 1

    def pair(self, i: int) -> tuple[Level, Level]:
        return self.levels[i], self.levels[i + 1]

    def level(self, t: float) -> Level:
        return Level.at(self.denoiser.schedule, t)

    def predict(self, x: Tensor, level: Level) -> Prediction:
        self.nfe += 1
        y_hat = self.denoiser(x, level.t).to(torch.float64)
        return Prediction(y_hat, (x - level.alpha * y_hat) / level.sigma)


def transfer(x: Tensor, pred: Prediction, a: Level, b: Level, eta: float = 0.0, z: Tensor | None = None) -> Tensor:
    """DDIM's update from level a to b (Song et al. 2021 eq. 12), PNDM's transfer part phi (Liu et al. 2022):

    x_b = alpha_b y_hat + sqrt(sigma_b^2 - s^2) eps + s z,  s = eta sigma_b sqrt(1 - e^{logsnr_a - logsnr_b}),

    s being eta times the std of the posterior q(x_b | x_a, y_hat); eta = 0 is deterministic.
    """
    if eta == 0.0 or b.sigma == 0.0:
        return b.alpha * pred.y_hat + b.sigma * pred.eps
    r = -math.expm1(a.logsnr - b.logsnr)
    return b.alpha * pred.y_hat + b.sigma * math.sqrt(1.0 - eta * eta * r) * pred.eps + eta * b.sigma * math.sqrt(r) * z


@dataclass(frozen=True)
class PseudoRK:
    """An explicit pseudo Runge–Kutta scheme (Liu et al. 2022) on :func:`transfer`:
    e_1 = eps(x, t), e_j = eps(phi(x, e_{j-1}, t, t - c_j h), t - c_j h), x' = phi(x, sum_j w_j e_j, t, t - h).

    Stages at t = 0 are never evaluated: a step ending at t = 0 is its first (DDIM) stage.
    """

    nodes: tuple[float, ...]
    weights: tuple[float, ...]

    def step(self, run: _Run, x: Tensor, a: Level, b: Level) -> tuple[Tensor, Prediction]:
        first = run.predict(x, a)
        if b.t == 0.0:
            return transfer(x, first, a, b), first
        stage, eps = first, [first.eps]
        for c in self.nodes[1:]:
            level = b if c == 1.0 else run.level(a.t - c * (a.t - b.t))
            eps.append(run.predict(transfer(x, stage, a, level), level).eps)
            stage = Prediction.from_eps(x, eps[-1], a)
        combined = Prediction.from_eps(x, sum(w * e for w, e in zip(self.weights, eps)), a)
        return transfer(x, combined, a, b), first


HEUN = PseudoRK(nodes=(0.0, 1.0), weights=(0.5, 0.5))
RK4 = PseudoRK(nodes=(0.0, 0.5, 0.5, 1.0), weights=(1 / 6, 1 / 3, 1 / 3, 1 / 6))
PLMS_WEIGHTS = (-9 / 24, 37 / 24, -59 / 24, 55 / 24)  # e_{t-3h}, e_{t-2h}, e_{t-h}, e_t (Liu et al. 2022)
Callback = Callable[[StepInfo], None]


class Sampler(ABC):
    """The driver every sampler shares; a subclass defines one ``step`` and its ``options``. ``family``:
    the diffusers scheduler family whose timestep spacings it follows ('ddim' or 'multistep')."""

    name: str
    options: dict[str, Any] = {}
    family: str = "ddim"

    def __call__(self, denoiser: Denoiser, x_start: Tensor | ArrayLike, t_grid: Tensor | ArrayLike, *,
                 seeds: Sequence[int] | None = None, return_trajectory: bool = False,
                 callback: Callback | None = None, **opts: Any) -> SampleResult:
        opts = self.resolve_options(opts)
        grid = check_grid(denoiser.schedule, t_grid)
        x = check_start(x_start, denoiser.shape)
        run = _Run(denoiser, grid, self._step_noise(seeds, x, opts))
        path = [x.cpu()] if return_trajectory else None
        for i in range(len(grid) - 1):
            x_next, y_hat = self.step(run, i, x, **opts)
            if callback is not None:
                callback(StepInfo(i, float(grid[i]), float(grid[i + 1]), x, y_hat))
            x = x_next
            if path is not None:
                path.append(x.cpu())
        return SampleResult(x, None if path is None else torch.stack(path), torch.as_tensor(grid), run.nfe)

    def stochastic(self, **opts: Any) -> bool:
        """Whether the sampler draws fresh noise (and so needs one seed per sample)."""
        return False

    def check_option(self, key: str, value: Any) -> Any:
        return value

    @abstractmethod
    def step(self, run: _Run, i: int, x: Tensor, **opts: Any) -> tuple[Tensor, Tensor]:
        """(the state at t_{i+1}, the denoised estimate D(x, t_i))."""

    def resolve_options(self, opts: dict[str, Any]) -> dict[str, Any]:
        """``opts`` with defaults filled in; unknown or bad options raise ValueError."""
        unknown = sorted(set(opts) - set(self.options))
        if unknown:
            accepted = ", ".join(self.options) or "none"
            raise ValueError(f"{self.name}: unknown option {unknown[0]!r}; accepted: {accepted}")
        return {k: self.check_option(k, opts.get(k, v)) for k, v in self.options.items()}

    def _step_noise(self, seeds: Sequence[int] | None, x: Tensor, opts: dict[str, Any]) -> StepNoise | None:
        if seeds is None:
            if self.stochastic(**opts):
                raise ValueError(f"seeds: the {self.name} sampler draws fresh noise at every step; "
                                 "pass one seed per sample")
            return None
        noise = StepNoise(parse_seeds(seeds, "seeds"), x.shape[1:], device=x.device)
        if len(noise) != x.shape[0]:
            raise ValueError(f"seeds: expected one seed per sample ({x.shape[0]}), got {len(noise)}")
        return noise


def check_start(x_start: Tensor | ArrayLike, shape: tuple[int, ...], name: str = "x_start") -> Tensor:
    """The start states as a float64 tensor of shape (B, *shape) with finite values."""
    x = torch.as_tensor(x_start).detach()
    if tuple(x.shape[1:]) != tuple(shape) or x.ndim != len(shape) + 1 or x.shape[0] < 1:
        raise ValueError(f"{name}: expected shape (B, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
    x = x.to(torch.float64).clone()
    if not torch.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return x


class DDIM(Sampler):
    """DDIM (Song et al. 2021 eq. 12) with eta in [0, 1]: eta = 0 is deterministic (the Euler step of
    the probability-flow ODE in x/alpha, sigma/alpha); eta = 1 draws from the DDPM posterior
    q(x_s | x_t, y_hat) (the paper's "DDPM")."""

    name = "ddim"
    options = {"eta": 0.0}

    def stochastic(self, eta: float = 0.0) -> bool:
        return eta > 0

    def check_option(self, key: str, value: Any) -> Any:
        eta = float(finite_array("eta", value, ndim=0))
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta: must lie in [0, 1], got {eta}")
        return eta

    def step(self, run: _Run, i: int, x: Tensor, eta: float = 0.0) -> tuple[Tensor, Tensor]:
        a, b = run.pair(i)
        pred = run.predict(x, a)
        z = run.noise() if eta > 0 and b.sigma > 0 else None
        return transfer(x, pred, a, b, eta, z), pred.y_hat


class DDPMAncestral(Sampler):
    """Ancestral sampling (Ho et al. 2020 eq. 6-7, Algorithm 2) on a skipped grid: x_s ~ q(x_s | x_t, y_hat)
    with, in logsnr form (Kingma et al. 2021), r = 1 - e^{logsnr_t - logsnr_s},

    mean = alpha_s (r y_hat + (1 - r) x / alpha_t),  variance = sigma_s^2 r (``posterior``, Ho's beta~)
    or sigma_t^2 r = sigma_{t|s}^2 (``beta``, Ho's sigma_t^2 = beta_t). The step to t = 0 adds no noise.
    """

    name = "ddpm"
    options = {"variance": "posterior"}

    def stochastic(self, variance: str = "posterior") -> bool:
        return True

    def check_option(self, key: str, value: Any) -> Any:
        if value not in ("posterior", "beta"):
            raise ValueError(f"variance: expected 'posterior' or 'beta', got {value!r}")
        return value

    def step(self, run: _Run, i: int, x: Tensor, variance: str = "posterior") -> tuple[Tensor, Tensor]:
        a, b = run.pair(i)
        pred = run.predict(x, a)
        if b.sigma == 0.0:
            return pred.y_hat, pred.y_hat
        keep = math.exp(a.logsnr - b.logsnr)
        r = -math.expm1(a.logsnr - b.logsnr)
        mean = b.alpha * (r * pred.y_hat + keep * x / a.alpha)
        std = (b.sigma if variance == "posterior" else a.sigma) * math.sqrt(r)
        return mean + std * run.noise(), pred.y_hat


class PNDM(Sampler):
    """F-PNDM (Liu et al. 2022): pseudo linear multistep on eps,
    e' = (55 e_t - 59 e_{t-h} + 37 e_{t-2h} - 9 e_{t-3h}) / 24 then x' = phi(x, e', t, t - h), after a warm-up
    of 3 pseudo Runge–Kutta (RK4-weighted, 4 evaluations) steps. The multistep weights assume equal steps.
    """

    name = "pndm"

    def step(self, run: _Run, i: int, x: Tensor) -> tuple[Tensor, Tensor]:
        a, b = run.pair(i)
        if len(run.memory) < 3:
            x_next, first = RK4.step(run, x, a, b)
        else:
            first = run.predict(x, a)
            eps = sum(w * e for w, e in zip(PLMS_WEIGHTS, run.memory[-3:] + [first.eps]))
            x_next = transfer(x, Prediction.from_eps(x, eps, a), a, b)
        run.memory = run.memory[-2:] + [first.eps]
        return x_next, first.y_hat


class EulerMaruyama(Sampler):
    """Euler–Maruyama for the reverse SDE dx = [f x - beta grad log p_t] dt + sqrt(beta) dW (t decreasing):
    x_s = x + h (-f x + beta score) + sqrt(beta h) z, h = t - s, score = (alpha y_hat - x) / sigma^2, with
    f and beta at t (the design note's drift b with c = 1). The last step to t = 0 is the noise-free
    denoising step x_0 = y_hat (score_sde's noise removal).
    """

    name = "sde"

    def stochastic(self) -> bool:
        return True

    def step(self, run: _Run, i: int, x: Tensor) -> tuple[Tensor, Tensor]:
        a, b = run.pair(i)
        pred = run.predict(x, a)
        if b.t == 0.0:
            return pred.y_hat, pred.y_hat
        schedule, h = run.denoiser.schedule, a.t - b.t
        f, beta = float(schedule.f(a.t)), float(schedule.beta(a.t))
        score = (a.alpha * pred.y_hat - x) / a.sigma**2
        return x + h * (-f * x + beta * score) + math.sqrt(beta * h) * run.noise(), pred.y_hat


class ProbabilityFlowHeun(Sampler):
    """Heun's method for the probability-flow ODE in x~ = x/alpha, sigma~ = sigma/alpha
    (Karras et al. 2022 eq. 4 and Algorithm 1): dx~/dsigma~ = (x~ - D)/sigma~ = eps; an Euler predictor
    (the DDIM step) and a trapezoidal corrector; the step to t = 0 is the Euler step (x_0 = D)."""

    name = "ode"

    def step(self, run: _Run, i: int, x: Tensor) -> tuple[Tensor, Tensor]:
        x_next, first = HEUN.step(run, x, *run.pair(i))
        return x_next, first.y_hat


ddim = DDIM()
ddpm = DDPMAncestral()
pndm = PNDM()
euler_maruyama = EulerMaruyama()
heun = ProbabilityFlowHeun()
SAMPLERS: dict[str, Sampler] = {"ddpm": ddpm, "ddim": ddim, "pndm": pndm, "sde": euler_maruyama, "ode": heun}

# The multistep exponential integrators live in .solvers, which builds on the driver above.
from symbreak.experiments.sampling.solvers import dpm2m, dpm3m, unipc  # noqa: E402

SAMPLERS.update({"dpm2m": dpm2m, "dpm3m": dpm3m, "unipc": unipc})


def get_sampler(name: str) -> Sampler:
    """A sampler by its command-line name (``ddpm``, ``ddim``, ``pndm``, ``sde``, ``ode``, ``dpm2m``,
    ``dpm3m``, ``unipc``)."""
    if name not in SAMPLERS:
        raise ValueError(f"sampler: unknown name {name!r}; accepted: {', '.join(SAMPLERS)}")
    return SAMPLERS[name]
