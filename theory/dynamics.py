"""Generative dynamics of a data model under a schedule (Raya & Ambrogioni 2023; README, Notation).

With the forward SDE dx = f x dt + g dW (f = d log alpha/dt, g^2 = beta), the generative direction
(t decreasing) has drift

    b(x, t) = -f x + c beta grad log p_t(x),   c = 1 (reverse SDE), 1/2 (probability-flow ODE),

so for VP schedules the SDE drift is beta (x/2 + grad log p_t). It is the gradient flow b = -grad u of
the potential u(x, t) = f |x|^2 / 2 - c beta log p_t(x) (VP SDE: beta (-|x|^2/4 - log p_t), the paper's
potential), and its Jacobian is J = -f I + c beta hess log p_t. The stability margin of a point is the
top eigenvalue of J / beta: negative means the point attracts, positive means it repels.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .checks import check_choice
from .datamodels import DataModel
from .schedules import Schedule

Array = NDArray[np.float64]
Dynamics = Literal["sde", "ode"]
SCORE_WEIGHT: dict[str, float] = {"sde": 1.0, "ode": 0.5}


def score_weight(dynamics: str) -> float:
    """c in b = -f x + c beta score: 1 for the reverse SDE, 1/2 for the probability-flow ODE."""
    return SCORE_WEIGHT[check_choice("dynamics", dynamics, SCORE_WEIGHT)]


def drift(model: DataModel, x: ArrayLike, t: float, schedule: Schedule, dynamics: Dynamics = "sde") -> Array:
    """b(x, t) = -f x + c beta grad log p_t(x), shape (B, d)."""
    c = score_weight(dynamics)
    x = model._x(x)
    return -schedule.f(t) * x + c * schedule.beta(t) * model.score(x, t, schedule)


def potential(model: DataModel, x: ArrayLike, t: float, schedule: Schedule, dynamics: Dynamics = "sde") -> Array:
    """u(x, t) = f |x|^2 / 2 - c beta log p_t(x), with b = -grad u; shape (B,)."""
    c = score_weight(dynamics)
    x = model._x(x)
    return 0.5 * schedule.f(t) * np.einsum("ij,ij->i", x, x) - c * schedule.beta(t) * model.log_prob(x, t, schedule)


def jacobian(model: DataModel, x: ArrayLike, t: float, schedule: Schedule, dynamics: Dynamics = "sde") -> Array:
    """J = grad b = -f I + c beta hess log p_t(x), shape (B, d, d)."""
    c = score_weight(dynamics)
    return -schedule.f(t) * np.eye(model.dim) + c * schedule.beta(t) * model.hessian(x, t, schedule)


def normalised_jacobian_eigenvalues(model: DataModel, x: ArrayLike, t: float, schedule: Schedule,
                                    dynamics: Dynamics = "sde") -> Array:
    """Eigenvalues of J / beta in ascending order, shape (B, d); J is symmetric (a gradient flow)."""
    return np.linalg.eigvalsh(jacobian(model, x, t, schedule, dynamics) / schedule.beta(t))
