"""Fixed points of the generative drift, their stability, and Newton continuation of a branch.

A fixed point x* of the drift b(x, t) = -f x + c beta grad log p_t(x) (see :mod:`.dynamics`) is stable
when every eigenvalue of the Jacobian J = -f I + c beta hess log p_t is negative. The eigenvalues of
J / beta are the schedule-free stability margins used throughout (design note section 1).

- :func:`fixed_points_1d` finds *every* fixed point of a 1-D model at one time: the drift is bracketed on
  a grid that provably holds all of them and each root is refined with Brent's method.
- :func:`follow_branch` follows one branch in d dimensions from t = T towards t = 0 by natural-parameter
  continuation on the logsnr axis, with a Newton corrector J dx = -b. Newton converges to the branch
  whatever its stability, so it keeps following the centre after it turns unstable; plain fixed-point
  iteration (:func:`fixed_point_iteration`) would slide onto a stable branch instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq

from .checks import finite_array, positive
from .datamodels import DataModel, EmpiricalData, Gaussian, GaussianMixture
from .dynamics import Dynamics, drift, jacobian, score_weight
from .schedules import Schedule

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


@dataclass(frozen=True)
class NewtonResult:
    """A Newton solve of b(x, t) = 0: the point, the eigen-decomposition of J / beta there (eigenvalues
    descending, eigenvectors as columns in the same order) and whether the step size fell below tol."""

    x: Array
    eigenvalues_over_beta: Array
    eigenvectors: Array
    iterations: int
    converged: bool

    @property
    def stable(self) -> bool:
        return bool(self.eigenvalues_over_beta[0] < 0)


def newton_fixed_point(model: DataModel, x0: ArrayLike, t: float, schedule: Schedule,
                       dynamics: Dynamics = "sde", tol: float = 1e-10, max_iter: int = 30) -> NewtonResult:
    """Solve b(x, t) = 0 by Newton's method, x <- x - J^{-1} b, from x0 (d,).

    J is symmetric (b is a gradient flow), so each step uses its eigen-decomposition; the decomposition
    at the returned point is the one whose Newton step was below ``tol * (1 + |x|)``, which is what
    the stability analysis needs. Converges to unstable fixed points as readily as to stable ones.
    """
    x = finite_array("x0", x0, ndim=1).copy()
    t = float(schedule.check_t(t))
    beta = float(schedule.beta(t))
    w = v = None
    for it in range(1, max_iter + 1):
        b, jac = drift_and_jacobian(model, x, t, schedule, dynamics)
        w, v = np.linalg.eigh(jac / beta)
        w, v = w[::-1], v[:, ::-1]
        coef = v.T @ (b / beta)
        dx = -v @ (coef / np.where(w == 0.0, np.inf, w))
        if not np.isfinite(dx).all():
            break
        if np.linalg.norm(dx) <= tol * (1.0 + np.linalg.norm(x)):
            return NewtonResult(x, w, v, it, True)
        x = x + dx
    return NewtonResult(x, w, v, max_iter, False)


def fixed_point_iteration(model: DataModel, x0: ArrayLike, t: float, schedule: Schedule,
                          dynamics: Dynamics = "sde", tol: float = 1e-10, max_iter: int = 5000) -> Array:
    """Iterate the fixed-point map x <- k y_hat(x), k = c beta alpha / (c beta + f sigma^2), whose fixed
    points are those of b (VP SDE: x <- 2 alpha / (1 + alpha^2) y_hat(x), design note section 1).

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
@dataclass(frozen=True)
class BranchPoint:
    """A fixed point on a branch: logsnr, t, x, the eigen-decomposition of J / beta (descending) and
    the top eigenvalue of hess log p_t there (its sign change marks t_h)."""

    logsnr: float
    t: float
    x: Array
    eigenvalues: Array
    eigenvectors: Array
    hessian_top: float
    iterations: int


def _branch_point(model: DataModel, schedule: Schedule, dynamics: Dynamics, logsnr: float,
                  x_guess: Array, max_iter: int = 30) -> BranchPoint | None:
    """Newton from ``x_guess`` at ``logsnr``; None if it does not converge within ``max_iter``."""
    t = float(schedule.t_of_logsnr(logsnr))
    res = newton_fixed_point(model, x_guess, t, schedule, dynamics, max_iter=max_iter)
    if not res.converged:
        return None
    # J / beta = -f / beta I + c hess  =>  top eigenvalue of hess = (top of J / beta + f / beta) / c
    h_top = (res.eigenvalues_over_beta[0] + float(schedule.f(t) / schedule.beta(t))) / score_weight(dynamics)
    return BranchPoint(float(logsnr), t, res.x, res.eigenvalues_over_beta, res.eigenvectors, float(h_top),
                       res.iterations)


@dataclass(frozen=True)
class Branch:
    """A branch of fixed points followed from t = T towards 0, sampled at increasing logsnr.

    ``eigenvalues`` (n, k): the top k eigenvalues of J / beta, descending (column 0 is the margin);
    ``eigenvector`` (n, d): the eigenvector of the top one; ``hessian_top`` (n,): the top eigenvalue of
    hess log p_t; ``segment`` (n,): 0 on the branch through the start, +1 after each fold, where the
    followed branch ended and the continuation restarted on the attractor the flow falls into;
    ``status``: 'complete', or why the continuation stopped before ``t_end``.
    """

    model: DataModel = field(repr=False)
    schedule: Schedule
    dynamics: str
    logsnr: Array
    t: Array
    x: Array = field(repr=False)
    eigenvalues: Array = field(repr=False)
    eigenvector: Array = field(repr=False)
    hessian_top: Array = field(repr=False)
    segment: Array = field(repr=False)
    status: str

    @property
    def margin(self) -> Array:
        """Top eigenvalue of J / beta along the branch: < 0 stable, > 0 unstable."""
        return self.eigenvalues[:, 0]

    @property
    def alpha(self) -> Array:
        return self.schedule.alpha(self.t)

    @property
    def folds(self) -> NDArray[np.int64]:
        """Indices of the last point of every segment that ended in a fold."""
        return np.flatnonzero(np.diff(self.segment) != 0)

    def point_at(self, logsnr: float) -> BranchPoint | None:
        """The branch point at ``logsnr`` between two samples of one segment, by Newton from their
        linear interpolation; None if Newton does not converge."""
        s = self.logsnr
        j = int(np.searchsorted(s, logsnr, side="right")) - 1
        if 0 <= j < len(s) and logsnr == s[j]:
            guess = self.x[j]
        elif 0 <= j < len(s) - 1 and self.segment[j] == self.segment[j + 1]:
            w = (logsnr - s[j]) / (s[j + 1] - s[j])
            guess = (1.0 - w) * self.x[j] + w * self.x[j + 1]
        else:
            raise ValueError(f"logsnr: {logsnr} is not between two samples of one segment of the branch")
        return _branch_point(self.model, self.schedule, self.dynamics, float(logsnr), guess)

    def to_pandas(self):
        """One row per branch point: t, alpha, sigma, tau, logsnr, step (discrete schedules), segment,
        margin, the top eigenvalues lam_1..lam_k of J / beta, hessian_top and |x|."""
        import pandas as pd

        cols = {"t": self.t, "alpha": self.alpha, "sigma": self.schedule.sigma(self.t),
                "tau": self.schedule.tau(self.t), "logsnr": self.logsnr}
        if self.schedule.discrete:
            cols["step"] = self.schedule.step_of_t(self.t)
        cols["segment"] = self.segment
        cols["margin"] = self.margin
        cols.update({f"lam_{i + 1}": self.eigenvalues[:, i] for i in range(self.eigenvalues.shape[1])})
        cols["hessian_top"] = self.hessian_top
        cols["x_norm"] = np.linalg.norm(self.x, axis=1)
        return pd.DataFrame(cols)


def _attractor(model: DataModel, schedule: Schedule, dynamics: Dynamics, logsnr: float,
               x: Array) -> BranchPoint | None:
    """The stable fixed point the drift's flow carries ``x`` to at ``logsnr`` (fixed-point iteration,
    polished by Newton); None if it is not found."""
    t = float(schedule.t_of_logsnr(logsnr))
    p = _branch_point(model, schedule, dynamics, logsnr, fixed_point_iteration(model, x, t, schedule, dynamics))
    return p if p is not None and p.eigenvalues[0] < 0 else None


def follow_branch(model: DataModel, schedule: Schedule, dynamics: Dynamics = "sde", *,
                  x0: ArrayLike | None = None, t_start: float | None = None, t_end: float | None = None,
                  k: int = 5, n_initial: int = 100, max_dmargin: float = 0.05, max_rel: float = 0.5,
                  max_dx: float = 0.05, min_step: float = 1e-7, fold_margin: float = 1e-2) -> Branch:
    """Follow the fixed-point branch through ``x0`` (default alpha(t_start) * mean: the central one)
    from ``t_start`` (default T) to ``t_end`` (default the schedule's t_min).

    Natural-parameter continuation in s = logsnr: the predictor extrapolates the last two points
    linearly in s, Newton corrects. A step is accepted when Newton converges within 12 iterations,
    lands within ``max_dx (1 + |x|)`` of the prediction, and no recorded eigenvalue lam of J / beta
    moved by more than max(``max_dmargin``, ``max_rel`` (|lam| - 1)) (fine near lam = 0 where events
    happen, relative far from it); otherwise it is halved. Easy steps grow by 1.5x up to 1/20 of the range.

    When the step falls below ``min_step`` times the range with the margin within ``fold_margin`` of
    zero, the branch has reached a fold (saddle-node: it ceases to exist beyond it). The continuation
    then restarts, as a new ``segment``, on the stable fixed point that the flow reaches from the fold
    point just past it — where a trajectory sitting on the branch goes. Any other loss of the branch
    stops the continuation and ``status`` says where.
    """
    k = int(positive("k", k))
    t0 = float(schedule.check_t(schedule.T if t_start is None else t_start, "t_start"))
    t1 = float(schedule.check_t(schedule.t_min if t_end is None else t_end, "t_end"))
    if not t1 < t0:
        raise ValueError(f"t_end: must be < t_start = {t0:g}, got {t1:g}")
    s0, s1 = float(schedule.logsnr(t0)), float(schedule.logsnr(t1))
    guess = schedule.alpha(t0) * model.mean if x0 is None else finite_array("x0", x0, ndim=1)
    if guess.shape != (model.dim,):
        raise ValueError(f"x0: expected shape ({model.dim},), got {guess.shape}")
    first = _branch_point(model, schedule, dynamics, s0, guess)
    if first is None:
        raise ValueError(f"x0: Newton did not converge to a fixed point at t_start = {t0:g}")
    pts, segment = [first], [0]
    span = s1 - s0
    ds, ds_max = span / n_initial, span / 20.0
    status = "complete"
    while pts[-1].logsnr < s1:
        prev = pts[-1]
        h = min(ds, s1 - prev.logsnr)
        s_new = s1 if h == s1 - prev.logsnr else prev.logsnr + h
        same = len(pts) > 1 and segment[-2] == segment[-1]
        pred = prev.x + (prev.x - pts[-2].x) * h / (prev.logsnr - pts[-2].logsnr) if same else prev.x
        p = _branch_point(model, schedule, dynamics, s_new, pred, max_iter=12)
        ok = p is not None
        if ok:
            jump = np.linalg.norm(p.x - pred) / (1.0 + np.linalg.norm(prev.x))
            allowed = np.maximum(max_dmargin, max_rel * (np.abs(prev.eigenvalues[:k]) - 1.0))
            dlam = float((np.abs(p.eigenvalues[:k] - prev.eigenvalues[:k]) / allowed).max())
            ok = jump <= max_dx and dlam <= 1.0
        if ok:
            pts.append(p)
            segment.append(segment[-1])
            if p.iterations <= 4 and jump <= max_dx / 4 and dlam <= 0.25:
                ds = min(1.5 * h, ds_max)
            continue
        ds = h / 2.0
        if ds >= min_step * span:
            continue
        restart = None
        if -fold_margin < prev.eigenvalues[0] <= 0:
            restart = _attractor(model, schedule, dynamics, min(prev.logsnr + 1e-4 * span, s1), prev.x)
        if restart is None:
            status = (f"stopped at logsnr = {prev.logsnr:.6g} (t = {prev.t:.6g}): Newton continuation "
                      f"lost the branch (margin {prev.eigenvalues[0]:.3g})")
            break
        pts.append(restart)
        segment.append(segment[-1] + 1)
        ds = span / n_initial
    kk = min(k, model.dim)
    return Branch(model, schedule, dynamics,
                  logsnr=np.array([p.logsnr for p in pts]), t=np.array([p.t for p in pts]),
                  x=np.stack([p.x for p in pts]), eigenvalues=np.stack([p.eigenvalues[:kk] for p in pts]),
                  eigenvector=np.stack([p.eigenvectors[:, 0] for p in pts]),
                  hessian_top=np.array([p.hessian_top for p in pts]), segment=np.array(segment),
                  status=status)
