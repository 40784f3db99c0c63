"""Fixed points of the generative drift, their stability, and Newton continuation of a branch.

A fixed point x* of the drift b(x, t) = -f x + c beta grad log p_t(x) (see :mod:`.dynamics`) is stable
when every eigenvalue of the Jacobian J = -f I + c beta hess log p_t is negative. The eigenvalues of
J / beta are the schedule-free stability margins used throughout (Raya & Ambrogioni 2023).

- :func:`fixed_points_1d` finds *every* fixed point of a 1-D model at one time: the drift is bracketed on
  a grid that provably holds all of them and each root is refined with Brent's method.
- :func:`follow_branch` follows one branch in d dimensions from t = T towards t = 0 by natural-parameter
  continuation on the logsnr axis, with a Newton corrector J dx = -b. Newton converges to the branch
  whatever its stability, so it keeps following the centre after it turns unstable; plain fixed-point
  iteration (:func:`fixed_point_iteration`) would slide onto a stable branch instead.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq

from .checks import check_positive, finite_array
from .continuation import Branch, BranchPoint, NewtonResult, follow, newton, serial_blas
from .datamodels import DataModel, EmpiricalData, Gaussian, GaussianMixture
from .drifts import DenseDrift, Drift, model_drift
from .dynamics import Dynamics, drift, jacobian, score_weight
from .schedules import Schedule

__all__ = ["Branch", "BranchPoint", "FixedPoint", "FixedPoints", "NewtonResult", "drift_and_jacobian",
           "fixed_point_iteration", "fixed_point_window", "fixed_points_1d", "follow_branch", "newton_fixed_point"]

Array = NDArray[np.float64]


# ---------------------------------------------------------------------------------------------
# drift, Jacobian and one Newton solve
# ---------------------------------------------------------------------------------------------
def drift_and_jacobian(model: DataModel, x: ArrayLike, t: float, schedule: Schedule,
                       dynamics: Dynamics = "sde") -> tuple[Array, Array]:
    """b(x, t) and J(x, t) at one point x (d,) from a single posterior pass (Tweedie's formulas):

    score = (alpha y_hat - x) / sigma^2,  hess = -I / sigma^2 + alpha^2 / sigma^4 Cov[y | x_t = x],
    b = -f x + c beta score,  J = -f I + c beta hess.
    """
    c = score_weight(dynamics)
    x = model._x(x)
    t = float(schedule.check_t(t))
    alpha, sigma2 = float(schedule.alpha(t)), float(schedule.sigma2(t))
    f, beta = float(schedule.f(t)), float(schedule.beta(t))
    post = model.posterior(x, t, schedule, want_cov=True)
    score = (alpha * post.mean[0] - x[0]) / sigma2
    hess = alpha * alpha / sigma2 ** 2 * post.cov[0] - np.eye(model.dim) / sigma2
    return -f * x[0] + c * beta * score, -f * np.eye(model.dim) + c * beta * hess


def newton_fixed_point(model: DataModel, x0: ArrayLike, t: float, schedule: Schedule,
                       dynamics: Dynamics = "sde", tol: float = 1e-10, max_iter: int = 30) -> NewtonResult:
    """Solve b(x, t) = 0 by Newton's method, x <- x - J^{-1} b, from x0 (d,) (:func:`.continuation.newton`
    on the dense drift: every eigenpair of J / beta at the returned point, the one whose Newton step
    was below ``tol * (1 + |x|)``). Converges to unstable fixed points as readily as to stable ones."""
    x = finite_array("x0", x0, ndim=1).copy()
    t = float(schedule.check_t(t))
    return newton(DenseDrift(model, schedule, dynamics), model._x(x)[0], float(schedule.logsnr(t)), k=None,
                  tol=tol, max_iter=max_iter)


def fixed_point_iteration(model: DataModel, x0: ArrayLike, t: float, schedule: Schedule,
                          dynamics: Dynamics = "sde", tol: float = 1e-10, max_iter: int = 5000) -> Array:
    """Iterate the fixed-point map x <- k y_hat(x), k = c beta alpha / (c beta + f sigma^2), whose fixed
    points are those of b (VP SDE: x <- 2 alpha / (1 + alpha^2) y_hat(x); Raya & Ambrogioni 2023).

    Its derivative k alpha Cov[y | x] / sigma^2 is < 1 exactly where J < 0 (when c beta + f sigma^2 > 0:
    VP SDE and ODE, VE), so it converges to *stable* fixed points only: from a point on an unstable
    branch it slides to a stable one. Returns the last iterate (after ``max_iter`` at most).
    """
    x = model._x(finite_array("x0", x0, ndim=1))
    t = float(schedule.check_t(t))
    c = score_weight(dynamics)
    alpha, sigma2 = float(schedule.alpha(t)), float(schedule.sigma2(t))
    f, beta = float(schedule.f(t)), float(schedule.beta(t))
    gain = c * beta * alpha / (c * beta + f * sigma2)
    for _ in range(max_iter):
        x_new = gain * model.posterior_mean(x, t, schedule)
        if np.linalg.norm(x_new - x) <= tol * (1.0 + np.linalg.norm(x)):
            return x_new[0]
        x = x_new
    return x[0]


# ---------------------------------------------------------------------------------------------
# every fixed point of a 1-D model
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FixedPoint:
    """A fixed point of a 1-D drift with the Jacobian eigenvalue (J and J / beta) and its stability."""

    x: float
    eigenvalues: tuple[float, ...]
    eigenvalues_over_beta: tuple[float, ...]
    stable: bool

    def to_dict(self) -> dict:
        return {"x": self.x, "eigenvalues": list(self.eigenvalues),
                "eigenvalues_over_beta": list(self.eigenvalues_over_beta), "stable": self.stable}


@dataclass(frozen=True)
class FixedPoints:
    """All fixed points of a 1-D model at time t, in increasing x.

    ``window`` is the interval that was searched; ``window_proven`` says whether it is guaranteed to
    hold every fixed point (see :func:`fixed_point_window`).
    """

    t: float
    alpha: float
    logsnr: float
    dynamics: str
    points: tuple[FixedPoint, ...]
    window: tuple[float, float]
    window_proven: bool

    @property
    def stable(self) -> list[float]:
        return [p.x for p in self.points if p.stable]

    @property
    def x(self) -> list[float]:
        return [p.x for p in self.points]

    def to_dict(self) -> dict:
        return {"t": self.t, "alpha": self.alpha, "logsnr": self.logsnr, "dynamics": self.dynamics,
                "window": list(self.window), "window_proven": self.window_proven,
                "fixed_points": [p.to_dict() for p in self.points]}


def _components_1d(model: DataModel) -> tuple[Array, Array]:
    """(means, variances) of the Gaussian (or delta) components whose mixture is a 1-D model."""
    if model.dim != 1:
        raise ValueError(f"model: fixed points are enumerated for 1-D models only, got dim = {model.dim}")
    if isinstance(model, EmpiricalData):
        return np.asarray(model.y[:, 0], dtype=np.float64), np.zeros(model.n_points)
    if isinstance(model, Gaussian):
        return model.mean.copy(), model.lam.copy()
    if isinstance(model, GaussianMixture):
        return (np.array([c.mean[0] for c in model.components]), np.array([c.lam[0] for c in model.components]))
    raise ValueError(f"model: no fixed-point window is known for {type(model).__name__}")


def fixed_point_window(model: DataModel, t: float, schedule: Schedule,
                       dynamics: Dynamics = "sde") -> tuple[float, float, bool]:
    """An interval holding every fixed point of a 1-D model: (lo, hi, proven).

    Each component k (mean mu_k, variance lam_k; lam_k = 0 for data points) has an affine posterior mean
    m_k(x) = mu_k + g_k (x - alpha mu_k), g_k = alpha lam_k / (alpha^2 lam_k + sigma^2), so the drift
    b(x) = sum_k r_k(x) (a_k x + d_k) is a convex combination (responsibilities r_k) of affine functions
    with roots x_k = -d_k / a_k. If every a_k has one sign, b has that sign outside [min x_k, max x_k],
    so the interval holds every root (VP SDE with data points: |x| <= 2 alpha max|y| / (1 + alpha^2)).
    Otherwise the interval is widened by 10 marginal standard deviations and ``proven`` is False.
    """
    mu, lam = _components_1d(model)
    c = score_weight(dynamics)
    t = float(schedule.check_t(t))
    alpha, sigma2 = float(schedule.alpha(t)), float(schedule.sigma2(t))
    f, beta = float(schedule.f(t)), float(schedule.beta(t))
    g = alpha * lam / (alpha * alpha * lam + sigma2)
    a = -f + c * beta * (alpha * g - 1.0) / sigma2
    d = c * beta * alpha * mu * (1.0 - alpha * g) / sigma2
    roots = -d / np.where(a == 0.0, np.nan, a)
    proven = bool((a > 0).all() or (a < 0).all())
    lo, hi = float(np.nanmin(roots, initial=np.inf)), float(np.nanmax(roots, initial=-np.inf))
    if not np.isfinite([lo, hi]).all():
        lo = hi = float(alpha * mu.mean())
    spread = 10.0 * float(np.sqrt((alpha * alpha * lam + sigma2).max()))
    pad = 1e-3 * (1.0 + hi - lo + abs(lo) + abs(hi)) + (0.0 if proven else spread)
    return lo - pad, hi + pad, proven


def fixed_points_1d(model: DataModel, t: float, schedule: Schedule, dynamics: Dynamics = "sde",
                    n_grid: int = 4001) -> FixedPoints:
    """Every fixed point of a 1-D model at time t, each refined with Brent's method.

    The drift is sampled on ``n_grid`` points of :func:`fixed_point_window`; a root is bracketed by a
    sign change of b, or, for a pair of close roots inside one cell, by an extremum of b (a sign change
    of J = b') where b takes the other sign.
    """
    if int(n_grid) != n_grid or n_grid < 3:
        raise ValueError(f"n_grid: must be an integer >= 3, got {n_grid}")
    t = float(schedule.check_t(t))
    lo, hi, proven = fixed_point_window(model, t, schedule, dynamics)
    grid = np.linspace(lo, hi, int(n_grid))
    b = drift(model, grid[:, None], t, schedule, dynamics)[:, 0]
    slope = jacobian(model, grid[:, None], t, schedule, dynamics)[:, 0, 0]

    def b_at(x: float) -> float:
        return float(drift(model, [[x]], t, schedule, dynamics)[0, 0])

    def slope_at(x: float) -> float:
        return float(jacobian(model, [[x]], t, schedule, dynamics)[0, 0, 0])

    roots = list(grid[b == 0.0])
    for i in range(len(grid) - 1):
        x0, x1, b0, b1 = grid[i], grid[i + 1], b[i], b[i + 1]
        if b0 == 0.0 or b1 == 0.0:
            continue
        if b0 * b1 < 0:
            roots.append(brentq(b_at, x0, x1, xtol=1e-15, rtol=4 * np.finfo(float).eps))
        elif slope[i] * slope[i + 1] < 0:
            xe = brentq(slope_at, x0, x1, xtol=1e-15)
            be = b_at(xe)
            if be == 0.0:
                roots.append(xe)
            elif be * b0 < 0:
                roots += [brentq(b_at, x0, xe, xtol=1e-15), brentq(b_at, xe, x1, xtol=1e-15)]
    beta = float(schedule.beta(t))
    points = []
    for x in sorted(roots):
        if points and abs(x - points[-1].x) <= 1e-12 * (1.0 + abs(x)):
            continue
        jx = slope_at(x)
        points.append(FixedPoint(float(x), (jx,), (jx / beta,), bool(jx < 0)))
    return FixedPoints(t, float(schedule.alpha(t)), float(schedule.logsnr(t)), dynamics, tuple(points),
                       (lo, hi), proven)


# ---------------------------------------------------------------------------------------------
# Newton continuation of a branch on the logsnr axis
# ---------------------------------------------------------------------------------------------
def follow_branch(model: DataModel, schedule: Schedule, dynamics: Dynamics = "sde", *,
                  x0: ArrayLike | None = None, t_start: float | None = None, t_end: float | None = None,
                  k: int = 5, n_initial: int = 100, max_dmargin: float = 0.05, max_rel: float = 0.5,
                  max_dx: float = 0.05, min_step: float = 1e-7, fold_margin: float = 1e-2,
                  matrix_free: bool | None = None, drift: Callable[..., Drift] | None = None) -> Branch:
    """Follow the fixed-point branch through ``x0`` (default alpha(t_start) * mean: the central one)
    from ``t_start`` (default T) to ``t_end`` (default the schedule's t_min).

    Natural-parameter continuation in s = logsnr: the predictor extrapolates the last two points
    linearly in s, Newton corrects. A step is accepted when Newton converges within 12 iterations,
    lands within ``max_dx (1 + |x|)`` of the prediction, and no recorded eigenvalue lam of J / beta
    moved by more than max(``max_dmargin``, ``max_rel`` (|lam| - 1)) (fine near lam = 0 where events
    happen, relative far from it); otherwise it is halved. Easy steps grow by 1.5x up to 1/20 of the range.

    When the step falls below ``min_step`` times the range with the margin within ``fold_margin`` of
    zero, or with the last two margins extrapolating (m^2 linear in logsnr) to zero within 10 such
    steps, the branch has reached a fold (saddle-node: it ceases to exist beyond it). The continuation
    then restarts, as a new ``segment``, on the stable fixed point that the flow reaches from the fold
    point just past it — where a trajectory sitting on the branch goes. Any other loss of the branch
    stops the continuation and ``status`` says where. ``matrix_free`` (default: finite data with
    d > 256) follows finite data without a d x d matrix (:class:`.drifts.EmpiricalDrift`); the engine
    is :func:`.continuation.follow`. ``drift``: a factory (model, schedule, dynamics) -> :class:`.drifts.Drift`
    in place of :func:`.drifts.model_drift` (which alone reads ``matrix_free``), e.g. the same drift on a GPU.
    """
    k = int(check_positive("k", k))
    t0 = float(schedule.check_t(schedule.T if t_start is None else t_start, "t_start"))
    t1 = float(schedule.check_t(schedule.t_min if t_end is None else t_end, "t_end"))
    if not t1 < t0:
        raise ValueError(f"t_end: must be < t_start = {t0:g}, got {t1:g}")
    guess = schedule.alpha(t0) * model.mean if x0 is None else finite_array("x0", x0, ndim=1)
    if guess.shape != (model.dim,):
        raise ValueError(f"x0: expected shape ({model.dim},), got {guess.shape}")
    drift_ = model_drift(model, schedule, dynamics, matrix_free) if drift is None else drift(model, schedule, dynamics)
    try:
        with serial_blas(drift_):
            return follow(drift_, float(schedule.logsnr(t0)), float(schedule.logsnr(t1)), guess,
                          k=min(k, model.dim), n_initial=n_initial, max_dmargin=max_dmargin, max_rel=max_rel,
                          max_dx=max_dx, min_step=min_step, fold_margin=fold_margin)
    except ValueError as err:
        raise ValueError(f"x0: Newton did not converge to a fixed point at t_start = {t0:g}") from err
