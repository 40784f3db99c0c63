"""Multistep exponential integrators of the probability-flow ODE in data-prediction (x0) form:
DPM-Solver++ 2M and 3M (Lu et al. 2022, arXiv 2211.01095) and UniPC (Zhao et al. 2023, arXiv 2302.04867).

They run on the common sampler signature of :mod:`.samplers` on any :class:`~symbreak.theory.Schedule`,
reading alpha(t), sigma(t) and logsnr(t) off the grid's :class:`~.grids.Level` s. Everything is written in
the half log-SNR lambda = log(alpha / sigma) = logsnr / 2, with h = lambda_{i+1} - lambda_i > 0 for a step
from grid time t_i to t_{i+1} (generation direction). With D = D(x, t) the denoiser's estimate of the data,
the probability-flow ODE has the exact solution (Lu et al. 2022, eq. 8)

    x_b = (sigma_b / sigma_a) x_a + sigma_b * integral_{lambda_a}^{lambda_b} e^lambda D(x_lambda, lambda) dlambda,

and a step of order p replaces D by a polynomial in lambda through the last p estimates. With the
phi-functions of -h, ``c1 = 1 - e^{-h}``, ``c2 = 1 - c1 / h`` and ``c3 = 1/2 - c2 / h``:

* order 1 (DDIM): x_b = (sigma_b / sigma_a) x_a + alpha_b c1 D_0;
* DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): D_0 -> D_0 + (D_0 - D_{-1}) / (2 r), r = h_{-1} / h;
* DPM-Solver++(3M): + alpha_b (c2 D1 + c3 D2) with the divided differences D1, D2 of the last three
  estimates (Lu et al.'s multistep third-order update, as in their reference code and diffusers).

Lower orders: the first steps use the estimates that exist (order 1, then 2); with ``lower_order_final``
(default, diffusers' behaviour) and fewer than 15 steps the last two steps use at most orders 1 and 2.
A step that ends at t = 0 (sigma = 0, lambda = inf) is always first order: it returns D_0, the same
x_0 = D(x_{n-1}, t_{n-1}) as every other sampler here (diffusers' ``final_sigmas_type="zero"``).

**UniPC** (Zhao et al. 2023) with data prediction (diffusers' ``predict_x0=True``): the predictor UniP-p
x_b = (sigma_b / sigma_a) x_a + alpha_b c1 D_0 - alpha_b B(-h) sum_k rho_k (D_{-k} - D_0) / r_k, with
r_k = (lambda_{-k} - lambda_0) / h, and the corrector UniC-p, which redoes the same step once D at the
predicted state is known (adding the term rho_p (D_new - D_0)) at no extra evaluation: the new estimate
is the one the next step needs anyway. The rho solve the order conditions
sum_k rho_k r_k^(j-1) = j! h phi_{j+1}(h) / B(h), j = 1..m (Zhao et al. eq. 8-9, in -h for data
prediction); a single coefficient is rho = 1/2, the h -> 0 value used by the reference code. The
estimate stored for later steps is D at the *predicted* state (no re-evaluation at the corrected one).
The last step is never corrected (the run ends), and with ``lower_order_final`` step i has order at most
n - i, as diffusers' UniPCMultistepScheduler. ``variant``: ``bh2`` (default), B(h) = e^h - 1, diffusers'
default and the one Zhao et al. recommend beyond 10 steps (and for guided sampling); ``bh1``,
B(h) = h, their choice for unconditional sampling below 10 steps. In data-prediction form both are
evaluated at -h (diffusers' ``hh = -h``). The trajectory of a UniPC run records the predicted states.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from symbreak.experiments.sampling.grids import Level
from symbreak.experiments.sampling.samplers import Sampler, _Run

LOWER_ORDER_FINAL_BELOW = 15  # diffusers: lower_order_final acts only for fewer steps than this
UNIPC_VARIANTS = ("bh1", "bh2")


def half_logsnr(level: Level) -> float:
    """lambda = log(alpha / sigma) = logsnr / 2 (inf at t = 0)."""
    return 0.5 * level.logsnr


@dataclass(frozen=True)
class Estimate:
    """D(x, t) at a grid time and its lambda: one entry of a multistep solver's memory."""

    lam: float
    y_hat: Tensor


def _history(run: _Run) -> list[Estimate]:
    return run.state.setdefault("history", [])


def _remember(run: _Run, level: Level, y_hat: Tensor, keep: int) -> list[Estimate]:
    history = _history(run)
    history.append(Estimate(half_logsnr(level), y_hat))
    del history[:-keep]
    return history


def _order(run: _Run, i: int, order: int, available: int, b: Level, cap_final: bool) -> int:
    """The order of step i: at most the estimates available, n - i near the end when ``cap_final``,
    and 1 for a step to t = 0."""
    if b.sigma == 0.0:
        return 1
    p = min(order, available)
    return min(p, run.n_steps - i) if cap_final else p


def first_order(x: Tensor, y_hat: Tensor, a: Level, b: Level) -> Tensor:
    """x_b = (sigma_b / sigma_a) x_a + alpha_b (1 - e^{-h}) D (the DDIM step in lambda form)."""
    if b.sigma == 0.0:
        return b.alpha * y_hat
    h = half_logsnr(b) - half_logsnr(a)
    return (b.sigma / a.sigma) * x - b.alpha * math.expm1(-h) * y_hat


def dpm_update(x: Tensor, memory: list[Estimate], a: Level, b: Level) -> Tensor:
    """One DPM-Solver++ step of order len(memory) (1, 2 or 3) from a to b; memory ends with D at a."""
    if len(memory) == 1:
        return first_order(x, memory[-1].y_hat, a, b)
    h = half_logsnr(b) - half_logsnr(a)
    c1 = -math.expm1(-h)
    m0, m1 = memory[-1], memory[-2]
    r0 = (m0.lam - m1.lam) / h
    d1_0 = (m0.y_hat - m1.y_hat) / r0
    base = (b.sigma / a.sigma) * x + b.alpha * c1 * m0.y_hat
    if len(memory) == 2:
        return base + 0.5 * b.alpha * c1 * d1_0
    m2 = memory[-3]
    r1 = (m1.lam - m2.lam) / h
    d1_1 = (m1.y_hat - m2.y_hat) / r1
    d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1)
    d2 = (d1_0 - d1_1) / (r0 + r1)
    c2 = 1.0 - c1 / h
    c3 = 0.5 - c2 / h
    return base + b.alpha * (c2 * d1 + c3 * d2)


def _check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{key}: expected True or False, got {value!r}")
    return bool(value)


class DPMSolverPP(Sampler):
    """DPM-Solver++ multistep of order 2 (2M) or 3 (3M), data prediction, one evaluation per step
    (see the module docstring for the update and the lower-order first and final steps)."""

    options = {"lower_order_final": True}
    family = "multistep"  # diffusers' DPMSolverMultistepScheduler

    def __init__(self, order: int):
        self.order, self.name = order, f"dpm{order}m"

    def check_option(self, key: str, value: Any) -> Any:
        return _check_bool(key, value)

    def step(self, run: _Run, i: int, x: Tensor, lower_order_final: bool = True) -> tuple[Tensor, Tensor]:
        a, b = run.pair(i)
        pred = run.predict(x, a)
        history = _remember(run, a, pred.y_hat, self.order)
        cap = lower_order_final and run.n_steps < LOWER_ORDER_FINAL_BELOW
        p = _order(run, i, self.order, len(history), b, cap)
        return dpm_update(x, history[-p:], a, b), pred.y_hat


def uni_b(h: float, m: int, variant: str) -> tuple[float, np.ndarray]:
    """(B(-h), b) with b_j = j! (-h) phi_{j+1}(-h) / B(-h), j = 1..m (Zhao et al. 2023, eq. 8-9 in data-
    prediction form): phi_1(z) = (e^z - 1) / z, phi_{j+1}(z) = (phi_j(z) - 1/j!) / z."""
    z = -h
    big_b = z if variant == "bh1" else math.expm1(z)
    g, factorial, out = math.expm1(z) / z - 1.0, 1.0, []
    for j in range(1, m + 1):
        out.append(g * factorial / big_b)
        factorial *= j + 1
        g = g / z - 1.0 / factorial
    return big_b, np.array(out)


def uni_rhos(rks: list[float], b: np.ndarray) -> np.ndarray:
    """Solve sum_k rho_k r_k^(j-1) = b_j (j = 1..m); a single coefficient is 1/2 (the h -> 0 limit)."""
    if len(rks) == 1:
        return np.array([0.5])
    r = np.array(rks)
    return np.linalg.solve(np.vander(r, increasing=True).T, b[:len(rks)])


def uni_update(x: Tensor, memory: list[Estimate], a: Level, b: Level, variant: str,
               new: Tensor | None = None) -> Tensor:
    """UniP-p (``new`` None, p = len(memory)) or UniC-p (``new`` = D at the predicted state at b) from a
    to b; memory ends with D at a."""
    m0 = memory[-1]
    if b.sigma == 0.0 or (new is None and len(memory) == 1):
        return first_order(x, m0.y_hat, a, b)
    h = half_logsnr(b) - half_logsnr(a)
    rks = [(e.lam - m0.lam) / h for e in reversed(memory[:-1])]
    diffs = [(e.y_hat - m0.y_hat) / r for e, r in zip(reversed(memory[:-1]), rks)]
    if new is not None:
        rks, diffs = rks + [1.0], diffs + [new - m0.y_hat]
    big_b, bs = uni_b(h, len(rks), variant)
    rhos = uni_rhos(rks, bs)
    correction = sum(float(rho) * d for rho, d in zip(rhos, diffs))
    return first_order(x, m0.y_hat, a, b) - b.alpha * big_b * correction


class UniPC(Sampler):
    """UniPC: the UniP-p predictor with the UniC corrector, data prediction, B(h) of ``variant``
    (see the module docstring). ``order`` 1-3; ``disable_corrector``: step indices whose result is not
    corrected (diffusers' list; none by default); ``lower_order_final`` as diffusers'."""

    name = "unipc"
    family = "multistep"  # diffusers' UniPCMultistepScheduler
    options = {"order": 2, "variant": "bh2", "lower_order_final": True, "disable_corrector": ()}

    def check_option(self, key: str, value: Any) -> Any:
        if key == "order":
            if isinstance(value, bool) or value not in (1, 2, 3):
                raise ValueError(f"order: expected 1, 2 or 3, got {value!r}")
            return int(value)
        if key == "variant":
            if value not in UNIPC_VARIANTS:
                raise ValueError(f"variant: expected one of {', '.join(UNIPC_VARIANTS)}, got {value!r}")
            return value
        if key == "disable_corrector":
            steps = tuple(value)
            if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in steps):
                raise ValueError(f"disable_corrector: expected step indices (integers >= 0), got {value!r}")
            return tuple(int(s) for s in steps)
        return _check_bool(key, value)

    def step(self, run: _Run, i: int, x: Tensor, order: int = 2, variant: str = "bh2",
             lower_order_final: bool = True, disable_corrector: tuple[int, ...] = ()) -> tuple[Tensor, Tensor]:
        a, b = run.pair(i)
        pred = run.predict(x, a)
        state = run.state
        if i > 0 and i - 1 not in disable_corrector:
            x = uni_update(state["last_x"], _history(run)[-state["last_order"]:], run.levels[i - 1], a, variant,
                           new=pred.y_hat)
        history = _remember(run, a, pred.y_hat, order)
        p = _order(run, i, order, len(history), b, lower_order_final)
        state["last_x"], state["last_order"] = x, p
        return uni_update(x, history[-p:], a, b, variant), pred.y_hat


dpm2m = DPMSolverPP(2)
dpm3m = DPMSolverPP(3)
unipc = UniPC()

__all__ = ["DPMSolverPP", "Estimate", "UniPC", "dpm2m", "dpm3m", "dpm_update", "first_order", "half_logsnr",
           "uni_b", "uni_rhos", "uni_update", "unipc"]
