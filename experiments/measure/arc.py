"""The potential along an arc between two samples (the paper's Fig. 1b method).

On the arc x(a) = cos(a) x1 + sin(a) x2, a in [0, pi/2], with tangent x'(a) = -sin(a) x1 + cos(a) x2,
the SDE drift b = -grad u gives

    u(x(a)) - u(x(0)) = int_0^a <grad u(x(a')), x'(a')> da' = -int_0^a <b(x(a')), x'(a')> da',

computed here from any Denoiser (its learned drift, :func:`symbreak.experiments.measure.drift`) by the
cumulative Simpson (or trapezoid) rule on a uniform grid of angles. With an exact data model the
theory potential u = f |x|^2 / 2 - c beta log p_t (``theory.dynamics.potential``), aligned at a = 0,
goes on the same axes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray
from scipy.integrate import cumulative_simpson, cumulative_trapezoid

from symbreak.experiments.measure.drift import LearnedDrift, flat_points
from symbreak.experiments.models.denoisers import Denoiser
from symbreak.theory import DataModel, Schedule
from symbreak.theory.checks import check_choice, check_int
from symbreak.theory.dynamics import potential

Array = NDArray[np.float64]
RULES = {"simpson": cumulative_simpson, "trapezoid": cumulative_trapezoid}


def arc_angles(n_points: int) -> Array:
    """n_points uniform angles from 0 to pi/2 (both ends included)."""
    return np.linspace(0.0, 0.5 * np.pi, check_int("n_points", n_points, 3))


def arc_points(x1: Array, x2: Array, a: Array) -> Array:
    """x(a) = cos(a) x1 + sin(a) x2 for flat x1, x2 (d,): shape (n, d)."""
    return np.cos(a)[:, None] * x1 + np.sin(a)[:, None] * x2


def arc_tangent(x1: Array, x2: Array, a: Array) -> Array:
    """x'(a) = -sin(a) x1 + cos(a) x2: shape (n, d)."""
    return -np.sin(a)[:, None] * x1 + np.cos(a)[:, None] * x2


@dataclass(frozen=True)
class ArcPotential:
    """u(x(a)) - u(x(0)) along the arc: from the denoiser's drift (``u``) and, when a data model
    was given, from the theory potential (``u_exact``); ``grad_u_tangent`` is the integrand."""

    a: Array
    u: Array
    grad_u_tangent: Array
    u_exact: Array | None
    t: float
    dynamics: str
    rule: str

    def table(self) -> pd.DataFrame:
        cols = {"a": self.a, "u": self.u, "grad_u_tangent": self.grad_u_tangent}
        if self.u_exact is not None:
            cols["u_exact"] = self.u_exact
        return pd.DataFrame(cols)


def exact_arc_potential(model: DataModel, schedule: Schedule, x1: Array, x2: Array, t: float, a: Array,
                        dynamics: str = "sde") -> Array:
    """The theory potential u(x(a), t) - u(x(0), t) (theory.dynamics.potential, includes log p_t)."""
    u = potential(model, arc_points(x1, x2, a), t, schedule, dynamics)
    return u - u[0]


def arc_potential(denoiser: Denoiser, x1: Array | torch.Tensor, x2: Array | torch.Tensor, t: float, *,
                  dynamics: str = "sde", n_points: int = 401, rule: str = "simpson",
                  model: DataModel | None = None, batch_size: int = 256) -> ArcPotential:
    """Integrate <grad u, x'(a)> = -<b(x(a)), x'(a)> along the arc from ``denoiser``'s drift at time t.

    ``rule`` is ``'simpson'`` (scipy's cumulative Simpson) or ``'trapezoid'``; the drift is evaluated
    in batches of ``batch_size`` points. Given ``model`` (the data's exact model), the theory
    potential difference is computed on the same angles.
    """
    check_choice("rule", rule, RULES)
    check_int("batch_size", batch_size, 1)
    ends = [flat_points(denoiser, x).cpu().numpy() for x in (x1, x2)]
    for name, end in zip(("x1", "x2"), ends):
        if end.shape[0] != 1:
            raise ValueError(f"{name}: expected one sample, got {end.shape[0]}")
    p1, p2 = ends[0][0], ends[1][0]
    a = arc_angles(n_points)
    drift_t = LearnedDrift(denoiser, t, dynamics)
    points = flat_points(denoiser, arc_points(p1, p2, a))
    with torch.no_grad():
        b = torch.cat([drift_t(chunk) for chunk in points.split(int(batch_size))]).cpu().numpy()
    integrand = -np.einsum("nd,nd->n", b, arc_tangent(p1, p2, a))
    u = RULES[rule](integrand, x=a, initial=0.0)
    u_exact = None if model is None else exact_arc_potential(model, denoiser.schedule, p1, p2, drift_t.t, a,
                                                               dynamics)
    return ArcPotential(a, u, integrand, u_exact, drift_t.t, dynamics, rule)
